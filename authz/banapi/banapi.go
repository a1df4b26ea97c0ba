// Package banapi serves the operator's ban list (/api/v1/bans): the operators' bans (kicks with
// ?ban=) and brute-force protection's, listed and lifted. `gatehouse bans` is its client.
package banapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/guard"
)

// ErrBadSubject is returned by ParseSubject for a kind it does not know or an unusable value.
var ErrBadSubject = errors.New("banapi: bad ban subject")

// Bans lists and lifts bans; *authz.Engine implements it.
type Bans interface {
	Bans() []authz.Ban
	Lift(s authz.BanSubject) bool
}

// Authorizer decides API requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// BanJSON is one ban as the API shows it.
type BanJSON struct {
	Kind       string    `json:"kind"`
	Subject    string    `json:"subject"`
	Until      time.Time `json:"until"`
	RetryAfter int64     `json:"retry_after_seconds"`
	Reason     string    `json:"reason"`
	Strike     int       `json:"strike,omitempty"`
}

// ListJSON is GET /api/v1/bans's answer.
type ListJSON struct {
	Bans []BanJSON `json:"bans"`
}

// Handler serves, to callers allowed the api action under a named identity (guard.CheckNamed;
// Source "api"):
//
//	GET    /api/v1/bans                         {"bans": [...]} every ban in force
//	DELETE /api/v1/bans?kind=ip&subject=ADDR    lift it (ip: an address or its /32 or /64;
//	                                            user: the user name, hashed here; key: a key id;
//	                                            identity: an identity)
//
// DELETE answers 204, 404 when nothing was banned, 400 for a bad subject. now may be nil
// (time.Now). It starts no goroutines.
func Handler(b Bans, auth Authorizer, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	h := &handler{b: b, auth: auth, now: now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/bans", h.list)
	mux.HandleFunc("DELETE /api/v1/bans", h.lift)
	return mux
}

type handler struct {
	b    Bans
	auth Authorizer
	now  func() time.Time
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	now := h.now()
	out := ListJSON{Bans: []BanJSON{}}
	for _, b := range h.b.Bans() {
		out.Bans = append(out.Bans, BanJSON{Kind: b.Subject.Kind, Subject: b.Subject.Value, Until: b.Until,
			RetryAfter: int64((b.Until.Sub(now) + time.Second - 1) / time.Second), Reason: b.Reason, Strike: b.Strike})
	}
	guard.JSON(w, http.StatusOK, out)
}

func (h *handler) lift(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	s, err := ParseSubject(r.URL.Query().Get("kind"), r.URL.Query().Get("subject"))
	if err != nil {
		guard.JSON(w, http.StatusBadRequest, errorJSON{err.Error()})
		return
	}
	if !h.b.Lift(s) {
		guard.JSON(w, http.StatusNotFound, errorJSON{"no ban in force for " + s.String()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ParseSubject returns the ban subject an operator names: kind ip with an address or network
// (grouped as brute-force protection groups it: IPv4 /32, IPv6 /64) or authz.UnknownIP, kind user with a user name
// (hashed: authz.UserSubject; a hash as listed is accepted too), kind key with a key id, kind
// identity with an identity.
func ParseSubject(kind, value string) (authz.BanSubject, error) {
	if value == "" {
		return authz.BanSubject{}, fmt.Errorf("%w: subject is empty", ErrBadSubject)
	}
	switch kind {
	case authz.BanIP:
		if value == authz.UnknownIP { // the clients whose address is unknown, banned as a group
			return authz.BanSubject{Kind: authz.BanIP, Value: authz.UnknownIP}, nil
		}
		p, err := clientip.ParsePrefix(value)
		if err != nil {
			return authz.BanSubject{}, fmt.Errorf("%w: %q is not an address or network", ErrBadSubject, value)
		}
		s, _ := authz.IPSubject(p.Addr())
		return s, nil
	case authz.BanUser:
		if isHash(value) {
			return authz.BanSubject{Kind: authz.BanUser, Value: value}, nil
		}
		return authz.UserSubject(value), nil
	case authz.BanKey, authz.BanIdentity:
		return authz.BanSubject{Kind: kind, Value: value}, nil
	}
	return authz.BanSubject{}, fmt.Errorf("%w: kind %q is not one of ip, user, key, identity", ErrBadSubject, kind)
}

// isHash reports whether s looks like a UserSubject value (16 lower-case hex digits).
func isHash(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (h *handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	d, ok := guard.CheckNamed(w, r, h.auth, authz.ActionAPI, "api")
	if !ok {
		guard.JSON(w, d.HTTPStatus(), errorJSON{d.Message})
	}
	return ok
}

type errorJSON struct {
	Error string `json:"error"`
}
