// Package mediamtx answers MediaMTX's external authentication requests (authMethod: http,
// authHTTPAddress: http://127.0.0.1:8090/hooks/mediamtx). It decodes MediaMTX's request JSON into an
// authz.Request, asks the engine once and answers 200 (allow), 401 (missing or invalid credentials:
// MediaMTX then challenges RTSP/HTTP clients) or 403 (authenticated but not permitted).
package mediamtx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"gatehouse/authz"
	"gatehouse/authz/creds"
	"gatehouse/authz/hookio"
	"gatehouse/authz/recheck"
)

// MaxBody is the largest request body accepted (hookio.DefaultMaxBody).
const MaxBody = hookio.DefaultMaxBody

// Sentinel errors of package mediamtx.
var (
	// ErrMalformed is wrapped by every decoding error: the body is not MediaMTX's request JSON.
	ErrMalformed = errors.New("mediamtx: malformed request")
)

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Source is the adapter's name in authz.Request.Source and live.Session.Source.
const Source = "mediamtx"

// Handler serves POST /hooks/mediamtx. It starts no goroutines. It remembers the publish and
// read sessions it allowed (bounded, see Sessions), so that a revoked key's sessions can be
// ended through MediaMTX's API (Kicker).
type Handler struct {
	auth     Authorizer
	sessions *recheck.Table
}

// New returns a Handler asking auth, remembering at most cfg.MaxSessions sessions.
func New(cfg Config, auth Authorizer) *Handler {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	return &Handler{auth: auth, sessions: recheck.New(cfg.MaxSessions, sessionTTL, cfg.Now, cfg.Log)}
}

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
	var w wireRequest // on the stack: decodeSlow has its own, which encoding/json makes escape
	if decodeFast(body, &w) {
		return toRequest(&w)
	}
	return decodeSlow(body)
}

// decodeSlow decodes what decodeFast leaves to encoding/json.
func decodeSlow(body []byte) (*authz.Request, error) {
	var w wireRequest
	if err := hookio.DecodeJSON(body, &w, ErrMalformed); err != nil {
		return nil, err
	}
	return toRequest(&w)
}

func toRequest(w *wireRequest) (*authz.Request, error) {
	action, err := authz.ParseAction(w.Action)
	if err != nil {
		return nil, fmt.Errorf("%w: unknown action %q", ErrMalformed, hookio.Truncate(w.Action))
	}
	// MediaMTX cannot publish under another name than the one asked, nor end a session when its
	// grant expires: CanRename and CanEndAt stay false, and the engine refuses a rename.
	req := &authz.Request{
		Action:    action,
		Path:      w.Path,
		Protocol:  toLower(w.Protocol),
		Query:     w.Query,
		UserAgent: w.UserAgent,
		Source:    Source,
	}
	c, err := credentials(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	c.Apply(req)
	if w.ID != nil {
		req.ID = *w.ID
	}
	if w.IP != "" {
		ip, ok := hookio.ParseIP(w.IP)
		if !ok {
			return nil, fmt.Errorf("%w: ip %q is not an IP address", ErrMalformed, hookio.Truncate(w.IP))
		}
		req.IP = ip
	}
	return req, nil
}

// toLower is strings.ToLower without its call for the usual protocol names, already in lower-case
// ASCII.
func toLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// credentials sorts what MediaMTX forwards: user and password are the protocol's own fields,
// token is the Authorization header's bearer token, and the query (MediaMTX passes it raw) may
// carry a token or a stream key parameter. A token that is also a query parameter's value came
// from the query; a token equal to the password is MediaMTX's fallback (it copies the password
// into token), not a second credential.
func credentials(w *wireRequest) (creds.Credentials, error) {
	c := creds.FromUserInfo(w.User, w.Password, authz.OriginUserInfo)
	if w.Token != "" && w.Token != w.Password { // MediaMTX copies the password into token
		c = c.Or(creds.FromToken(w.Token, authz.OriginHeader))
	}
	if w.Query == "" {
		return c, nil
	}
	_, q, err := creds.ParseQuery(w.Query)
	if err != nil {
		return c, errors.New("query has a malformed or repeated credential parameter")
	}
	if q.Token != "" && q.Token == c.Token {
		c.TokenFrom, c.TokenParam = q.TokenFrom, q.TokenParam
	}
	return c.Or(q), nil
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
	body, refused := hookio.ReadBody(w, r, MaxBody)
	if refused != nil {
		writeJSON(w, refused.Status, reply{Reason: refused.Reason, Message: refused.Message})
		return
	}
	req, err := Decode(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, reply{Reason: "malformed_request", Message: err.Error()})
		return
	}
	d := h.auth.Authorize(r.Context(), req)
	h.add(req, d)
	writeJSON(w, d.HTTPStatus(), reply{Allowed: d.Allowed(), Reason: d.Reason, Message: d.Message})
}

func writeJSON(w http.ResponseWriter, status int, v reply) {
	o := new(replyOut) // one allocation for the body and both header values
	b := appendReply(o.body[:0], v)
	o.vals = [2]string{"application/json", strconv.Itoa(len(b))}
	h := w.Header()
	h["Content-Type"], h["Content-Length"] = o.vals[0:1:1], o.vals[1:2:2]
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// replyOut holds what writeJSON hands to net/http: the header values and the encoded reply (a
// longer one grows into its own slice).
type replyOut struct {
	vals [2]string
	body [224]byte
}
