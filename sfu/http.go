package sfu

import (
	"encoding/json"
	"mime"
	"net/http"
	"slices"

	"gatehouse/authz/hookio"
	"gatehouse/web"
)

// Content types of the WHIP/WHEP exchange.
const (
	typeSDP     = "application/sdp"
	typeFrag    = "application/trickle-ice-sdpfrag"
	typeProblem = "application/problem+json"
)

// Handler serves the WHIP/WHEP API (and, when Config.Pages, the player and publish pages):
//
//	POST    /whip/{path...}          publish (SDP offer in, 201 + answer + Location out)
//	POST    /whep/{path...}          play
//	PATCH   /whip/session/{id}       trickle ICE or ICE restart (also /whep/session/{id})
//	DELETE  /whip/session/{id}       end the session (only with the creating credential)
//	GET, POST, PATCH /whep/session/{id}/layer   a viewer's simulcast layer; pin or "auto" (layer_api.go)
//	OPTIONS /whip/..., /whep/...     CORS preflight
//	DELETE  /api/v1/sessions/{id}    kick a session (action "api")
//	GET     /watch/{path...}         WHEP player page
//	GET     /publish/{path...}       WHIP camera publish page
//
// The path "session/..." is reserved under /whip/ and /whep/.
func (s *SFU) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip/{path...}", s.handlePublish)
	mux.HandleFunc("POST /whep/{path...}", s.handleView)
	for _, k := range []struct {
		prefix string
		kind   Kind
	}{{"/whip/", KindPublish}, {"/whep/", KindRead}} {
		mux.HandleFunc("PATCH "+k.prefix+"session/{id}", s.handlePatch(k.kind))
		mux.HandleFunc("DELETE "+k.prefix+"session/{id}", s.handleDelete(k.kind))
		mux.HandleFunc("OPTIONS "+k.prefix+"{path...}", s.handleOptions)
	}
	for _, m := range []string{"GET", "POST", "PATCH"} {
		mux.HandleFunc(m+" /whep/session/{id}/layer", s.handleLayer)
	}
	mux.HandleFunc("DELETE /api/v1/sessions/{id}", s.handleKick)
	if s.cfg.Pages {
		mux.Handle("GET /watch/{path...}", web.WatchHandler())
		mux.Handle("GET /publish/{path...}", web.PublishHandler())
	}
	return s.cors(mux)
}

// cors adds the CORS response headers for allowed origins. Auth is a bearer header, never a
// cookie, so credentials mode is not needed.
func (s *SFU) cors(next http.Handler) http.Handler {
	anyOrigin := slices.Contains(s.cfg.AllowedOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			h := w.Header()
			switch {
			case anyOrigin:
				h.Set("Access-Control-Allow-Origin", "*")
			case slices.Contains(s.cfg.AllowedOrigins, origin):
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
			}
			h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Retry-After")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *SFU) handleOptions(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Accept-Post", typeSDP)
	h.Set("Accept-Patch", typeFrag)
	w.WriteHeader(http.StatusNoContent)
}

// problemBody is an RFC 9457 problem detail.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// problem writes an application/problem+json error. detail must never contain a credential.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", typeProblem)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problemBody{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

// readBody checks the content type and reads at most DefaultMaxBody bytes. It writes the
// problem (415, 413, 400) and returns false on failure.
func readBody(w http.ResponseWriter, r *http.Request, want string) (string, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		problem(w, http.StatusUnsupportedMediaType, "Content-Type must be "+want)
		return "", false
	}
	b, refused := hookio.ReadBody(w, r, DefaultMaxBody)
	if refused != nil {
		problem(w, refused.Status, refused.Message)
		return "", false
	}
	if len(b) == 0 {
		problem(w, http.StatusBadRequest, "empty body")
		return "", false
	}
	return string(b), true
}
