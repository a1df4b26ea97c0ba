// Package mediamtx answers MediaMTX's external authentication requests (authMethod: http,
// authHTTPAddress: http://127.0.0.1:8090/hooks/mediamtx). It decodes MediaMTX's request JSON into an
// authz.Request, asks the engine once and answers 200 (allow), 401 (missing or invalid credentials:
// MediaMTX then challenges RTSP/HTTP clients) or 403 (authenticated but not permitted).
package mediamtx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"gatehouse/authz"
)

// MaxBody is the largest request body accepted. MediaMTX's requests are well under 1 KiB plus the
// token; 64 KiB leaves room for large JWTs.
const MaxBody = 64 << 10

// Sentinel errors of package mediamtx.
var (
	// ErrMalformed is wrapped by every decoding error: the body is not MediaMTX's request JSON.
	ErrMalformed = errors.New("mediamtx: malformed request")
)

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Handler serves POST /hooks/mediamtx. It starts no goroutines.
type Handler struct {
	auth Authorizer
}

// New returns a Handler asking auth.
func New(auth Authorizer) *Handler { return &Handler{auth: auth} }

// wireRequest is MediaMTX's body (internal/auth/manager.go). Unknown fields are ignored: MediaMTX
// adds fields over time (userAgent in v1.19).
type wireRequest struct {
	IP        string  `json:"ip"`
	User      string  `json:"user"`
	Password  string  `json:"password"`
	Token     string  `json:"token"`
	Action    string  `json:"action"`
	Path      string  `json:"path"`
	Protocol  string  `json:"protocol"`
	ID        *string `json:"id"`
	Query     string  `json:"query"`
	UserAgent string  `json:"userAgent"`
}

// Decode parses a MediaMTX request body into an authz.Request. Every error wraps ErrMalformed and
// never contains a credential.
func Decode(body []byte) (*authz.Request, error) {
	var w wireRequest
	if decodeFast(body, &w) {
		return toRequest(&w)
	}
	if err := json.Unmarshal(body, &w); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%w: invalid JSON at byte %d", ErrMalformed, se.Offset)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%w: field %q must be a %s", ErrMalformed, te.Field, te.Type)
		}
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
	}
	return toRequest(&w)
}

func toRequest(w *wireRequest) (*authz.Request, error) {
	action, err := authz.ParseAction(w.Action)
	if err != nil {
		return nil, fmt.Errorf("%w: unknown action %q", ErrMalformed, truncate(w.Action))
	}
	req := &authz.Request{
		Action:    action,
		Path:      w.Path,
		Protocol:  strings.ToLower(w.Protocol),
		User:      w.User,
		Pass:      w.Password,
		Token:     w.Token,
		Query:     w.Query,
		UserAgent: w.UserAgent,
		Source:    "mediamtx",
	}
	if w.ID != nil {
		req.ID = *w.ID
	}
	if w.IP != "" {
		ip, err := netip.ParseAddr(w.IP)
		if err != nil {
			return nil, fmt.Errorf("%w: ip %q is not an IP address", ErrMalformed, truncate(w.IP))
		}
		req.IP = ip.Unmap()
	}
	return req, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// reply is the small JSON body sent with every answer; MediaMTX logs it on denial.
type reply struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, reply{Reason: "method_not_allowed", Message: "use POST"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, reply{Reason: "body_too_large", Message: fmt.Sprintf("body exceeds %d bytes", MaxBody)})
			return
		}
		writeJSON(w, http.StatusBadRequest, reply{Reason: "read_error", Message: "could not read body"})
		return
	}
	req, err := Decode(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, reply{Reason: "malformed_request", Message: err.Error()})
		return
	}
	d := h.auth.Authorize(r.Context(), req)
	writeJSON(w, d.HTTPStatus(), reply{Allowed: d.Allowed(), Reason: d.Reason, Message: d.Message})
}

func writeJSON(w http.ResponseWriter, status int, v reply) {
	var buf [256]byte
	b := appendReply(buf[:0], v)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
