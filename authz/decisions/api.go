package decisions

import (
	"context"
	"encoding/json"
	"net/http"

	"gatehouse/authz"
	"gatehouse/authz/guard"
)

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// APIHandler serves the recent decisions to callers allowed action api under a name
// (guard.CheckNamed: the decisions show identities and addresses, so an anonymous grant is not
// enough):
//
//	GET /api/v1/decisions            {"decisions": [denials newest first, then allows], "minutes": [...]}
//	GET /api/v1/decisions/chart.svg  the per-minute chart (Chart)
func APIHandler(rec *Recent, auth Authorizer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/decisions", func(w http.ResponseWriter, r *http.Request) {
		if !authorize(w, r, auth) {
			return
		}
		header(w, "application/json")
		_ = json.NewEncoder(w).Encode(rec.Snapshot()) // the client went away; nothing to do
	})
	mux.HandleFunc("GET /api/v1/decisions/chart.svg", func(w http.ResponseWriter, r *http.Request) {
		if !authorize(w, r, auth) {
			return
		}
		header(w, "image/svg+xml")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = w.Write(Chart(rec.Snapshot().Minutes))
	})
	return mux
}

func authorize(w http.ResponseWriter, r *http.Request, auth Authorizer) bool {
	d, ok := guard.CheckNamed(w, r, auth, authz.ActionAPI, "api")
	if !ok {
		msg := d.Message
		if msg == "" {
			msg = http.StatusText(d.HTTPStatus())
		}
		header(w, "application/json")
		w.WriteHeader(d.HTTPStatus())
		_ = json.NewEncoder(w).Encode(struct {
			Error string `json:"error"`
		}{msg})
	}
	return ok
}

func header(w http.ResponseWriter, ctype string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}
