package live

import (
	"context"
	"net/http"

	"gatehouse/authz"
	"gatehouse/authz/guard"
)

// Authorizer decides API requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// APIHandler serves the registry as JSON on the public listener:
//
//	GET /api/v1/streams          {"streams": [Stream...]} sorted by path, without readers
//	GET /api/v1/streams/{path...} one Stream with its readers, or 404
//
// Every request is decided by auth as action "api" (Source "api") with the credentials of the
// Authorization header (Basic, Bearer; see authz/creds) and the client address from
// clientip.Addr (mount it behind the listener's clientip.Proxies.Handler). A
// request that is not allowed gets 401 with WWW-Authenticate: Basic realm="gatehouse" (missing
// or bad credentials) or 403 (forbidden). Responses list each session's id, source and stream key
// id and label (for DELETE /api/v1/sessions/{id}), never a credential.
// Mount it at both "/api/v1/streams" and "/api/v1/streams/". It starts no goroutines.
func APIHandler(reg *Registry, auth Authorizer) http.Handler {
	h := &apiHandler{reg: reg, auth: auth}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/streams", h.list)
	mux.HandleFunc("GET /api/v1/streams/{path...}", h.get)
	return mux
}

type apiHandler struct {
	reg  *Registry
	auth Authorizer
}

func (h *apiHandler) list(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	guard.JSON(w, http.StatusOK, struct {
		Streams []Stream `json:"streams"`
	}{h.reg.List()})
}

func (h *apiHandler) get(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	path := r.PathValue("path")
	if path == "" {
		guard.JSON(w, http.StatusOK, struct {
			Streams []Stream `json:"streams"`
		}{h.reg.List()})
		return
	}
	st, ok := h.reg.Get(path)
	if !ok {
		writeError(w, http.StatusNotFound, "stream not live")
		return
	}
	guard.JSON(w, http.StatusOK, st)
}

func (h *apiHandler) authorize(w http.ResponseWriter, r *http.Request) bool {
	d, ok := guard.Check(w, r, h.auth, authz.ActionAPI, "api")
	if !ok {
		writeError(w, d.HTTPStatus(), d.Message)
	}
	return ok
}

func writeError(w http.ResponseWriter, status int, msg string) {
	if msg == "" {
		msg = http.StatusText(status)
	}
	guard.JSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
