// Package guard decides requests to gatehouse's own HTTP endpoints (/api/v1/streams,
// /api/v1/keys, /metrics, /debug/pprof) one way everywhere: the credentials of the
// Authorization header (Basic or Bearer, package creds), the client address that the listener's
// clientip handler resolved, and a Basic challenge on 401. Each endpoint keeps only the format
// of its answer.
package guard

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/creds"
)

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Challenge is the WWW-Authenticate value sent with a 401.
const Challenge = `Basic realm="gatehouse"`

// Request returns the request r makes for action as seen by source (the Request's Source): the
// Authorization header's credentials with their origins, the address clientip.Addr resolved
// and the user agent.
func Request(r *http.Request, action authz.Action, source string) *authz.Request {
	req := &authz.Request{Action: action, IP: clientip.Addr(r), UserAgent: r.UserAgent(), Source: source}
	creds.FromAuthorization(r.Header.Get("Authorization")).Apply(req)
	return req
}

// Check decides Request(r, action, source) with auth. On an allow it returns the decision and
// true. Otherwise it sets WWW-Authenticate (Challenge) when the answer is a 401 and returns the
// decision and false (with Retry-After on a ban): the caller answers d.HTTPStatus() (401 or 403) with d.Message, which never
// holds a credential, in its own format.
func Check(w http.ResponseWriter, r *http.Request, auth Authorizer, action authz.Action, source string) (authz.Decision, bool) {
	d := auth.Authorize(r.Context(), Request(r, action, source))
	if d.Allowed() {
		return d, true
	}
	if d.HTTPStatus() == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", Challenge)
	}
	if d.RetryAfter > 0 { // banned: say when to come back
		SetRetryAfter(w.Header(), d.RetryAfter)
	}
	return d, false
}

// SetRetryAfter sets h's Retry-After to d in whole seconds, rounded up (a client that retries
// after the value must not come back early) and at least 1 (0 would invite a retry at once):
// the one formatter of every Retry-After gatehouse sends for a wait it knows (a ban, a lockout,
// a cap).
func SetRetryAfter(h http.Header, d time.Duration) {
	secs := max((d+time.Second-1)/time.Second, 1)
	h.Set("Retry-After", strconv.FormatInt(int64(secs), 10))
}

// ReasonIdentityRequired is the reason CheckNamed gives an anonymous grant.
const ReasonIdentityRequired = "identity_required"

// CheckNamed is Check for endpoints that change or reveal credentials (stream keys): an allow
// must also name who the client is. An anonymous grant (`user: any`, such as the built-in
// defaults' api for loopback clients) is refused with 401 and the Basic challenge, because any
// local process, container or DNS-rebound web page shares the loopback address.
func CheckNamed(w http.ResponseWriter, r *http.Request, auth Authorizer, action authz.Action, source string) (authz.Decision, bool) {
	d, ok := Check(w, r, auth, action, source)
	if !ok || d.Identity != "" {
		return d, ok
	}
	w.Header().Set("WWW-Authenticate", Challenge)
	return authz.Denying(authz.Unauthenticated, ReasonIdentityRequired, "this endpoint needs a named user; an anonymous grant (user: any) is not enough"), false
}

// JSON answers status with v as JSON, uncached and not sniffable: the answer of every JSON
// endpoint of gatehouse's own (/api/v1/...). An encoding error means the client went away.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
