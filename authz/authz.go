// Package authz is gatehouse's policy vocabulary: the Request every adapter builds, the Decision
// every adapter encodes, the one-method Backend contract that every backend implements, and the
// Chain and Engine that evaluate backends in configured order. It imports none of backends,
// protocols, sfu or cmd.
package authz

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Sentinel errors of package authz.
var (
	// ErrUnknownAction is returned by ParseAction for a name that is not one of the six actions.
	ErrUnknownAction = errors.New("authz: unknown action")
	// ErrInvalidPath is returned by ParsePathPattern for an unusable pattern.
	ErrInvalidPath = errors.New("authz: invalid path pattern")

	// errNoBackend fails a Method built without a Backend closed instead of panicking.
	errNoBackend = errors.New("authz: method has no backend")
)

// Action is what a client wants to do. The six values and their spelling are MediaMTX's.
type Action string

// The actions. Publish, Read and Playback carry a stream path; the others ignore it.
const (
	ActionPublish  Action = "publish"
	ActionRead     Action = "read"
	ActionPlayback Action = "playback"
	ActionAPI      Action = "api"
	ActionMetrics  Action = "metrics"
	ActionPprof    Action = "pprof"
)

// Actions lists every action in MediaMTX's order.
var Actions = []Action{ActionPublish, ActionRead, ActionPlayback, ActionAPI, ActionMetrics, ActionPprof}

// ParseAction returns the Action named s (case-sensitive, as MediaMTX) or ErrUnknownAction.
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case ActionPublish, ActionRead, ActionPlayback, ActionAPI, ActionMetrics, ActionPprof:
		return a, nil
	}
	return "", fmt.Errorf("%w %q (want one of publish, read, playback, api, metrics, pprof)", ErrUnknownAction, s)
}

// HasPath reports whether the action is scoped to a stream path (publish, read, playback).
func (a Action) HasPath() bool {
	return a == ActionPublish || a == ActionRead || a == ActionPlayback
}

// Origin says where a credential came from. Credential extraction (package authz/creds) sets it;
// the engine applies the query-token policy by origin, whatever the parameter's name.
type Origin uint8

// Origins. The zero Origin means "not said" and is treated like a header (not a query parameter).
const (
	OriginUnknown  Origin = iota
	OriginHeader          // an HTTP Authorization header (Basic or Bearer)
	OriginUserInfo        // the protocol's own user/password fields (RTSP/RTMP/SRT userinfo, MediaMTX user/password)
	OriginQuery           // a query parameter (Request.TokenParam names it)
	OriginCookie          // a cookie
	OriginPath            // the stream name itself (a stream key used as the name)
)

// Request is one question put to the engine: may this client do Action on Path? Adapters fill
// what their server sends; empty fields mean "not sent". Secrets (Pass, Token, Key) must never be
// logged (see Engine).
//
// The credential fields are the three kinds a backend can verify: a password pair (User, Pass),
// a token (Token: a bearer token or JWT, with where it came from) and a stream key given as a
// parameter (Key; a key used as the stream name is Path itself). Adapters fill them only through
// package authz/creds, the one place that knows parameter names and that classifies a password
// shaped like a JWT as a token. Backends read them by kind and origin and never parse Query for
// parameter names.
type Request struct {
	Action   Action
	Path     string     // stream path without leading or trailing slash; "" for api/metrics/pprof
	Protocol string     // lower-case: rtsp, rtmp, srt, hls, webrtc, moq, dash, ...; "" if unknown
	IP       netip.Addr // client address; the zero Addr if unknown
	User     string
	Pass     string
	Token    string // bearer token or JWT, if any
	// TokenFrom says where Token came from; TokenParam is the query parameter's name when it came
	// from the query (token, jwt, access_key, ...), for messages only.
	TokenFrom  Origin
	TokenParam string
	Key        string // a stream key given as a parameter (?key=), if any
	Query      string // raw query string as the client sent it, without '?' (forwarded, never parsed for credentials)
	ID         string // session or connection id, if any
	UserAgent  string
	Source     string // which adapter asked: "mediamtx", "nginx-rtmp", "sfu", "cli", ...

	// CanRename says the adapter can publish or play under Decision.Rename instead of Path
	// (nginx-rtmp with a 302, OvenMediaEngine with new_url, the SFU). The engine refuses an
	// Allow that needs a rename when it is false, so a stream key is never published as a name.
	CanRename bool
	// CanEndAt says the adapter's server can end the session when the grant expires
	// (nginx-rtmp at on_update, OvenMediaEngine through lifetime, the SFU). When false, a grant
	// with an expiry is logged as not enforced after it starts.
	CanEndAt bool
	// Kind says why the question is asked; the zero value is a client's own attempt.
	Kind RequestKind
}

// RequestKind says why a Request is asked. Only a client's own attempt (KindAccess, the zero
// value) counts toward brute-force protection and is logged at WARN when refused.
type RequestKind uint8

// Request kinds.
const (
	// KindAccess is a client's own attempt to publish, read or use an endpoint.
	KindAccess RequestKind = iota
	// KindRecheck re-decides a running session (after a reload, at a server's keep-alive): a
	// denial ends the session, but it is not a new guess and does not count as a failure.
	KindRecheck
	// KindProbe asks on a client's behalf to filter what it is shown (the grid's list of
	// streams): logged at debug only, not recorded as a recent decision, not counted.
	KindProbe
)

// HasCredentials reports whether the client presented any user, password, token or stream key.
func (r *Request) HasCredentials() bool {
	return r.User != "" || r.Pass != "" || r.Token != "" || r.Key != ""
}

// HasPassword reports whether the request carries a password pair to verify: a password that is
// not the request's token or stream key, or a user name alone (no password, token or key). A JWT
// or a ghk_ key sent as the password (package creds sets it as Pass and as Token or Key) is not a
// pair: a method that hashes passwords abstains, so a token or key sent as the password never
// costs a password hash, whatever the user name (timing reveals no names).
func (r *Request) HasPassword() bool {
	if r.Pass != "" {
		return r.Pass != r.Token && r.Pass != r.Key
	}
	return r.User != "" && r.Token == "" && r.Key == ""
}

// HTTPBorne reports whether the request may have come over HTTP, where query strings end up in
// access logs, proxies and browser history. It fails closed: only the streaming protocols whose
// URLs never travel as HTTP requests (rtmp, rtmps, rtsp, rtsps, srt) are not; every other name,
// an unknown one ("thumbnail", "flv", a forward-auth rule's free-form label) and an empty one
// (SRS, which does not say) counts as HTTP.
func (r *Request) HTTPBorne() bool {
	switch normProtocol(r.Protocol) {
	case "rtmp", "rtmps", "rtmpt", "rtmpe", "rtsp", "rtsps", "srt":
		return false
	}
	return true
}

// Outcome is a backend's or the engine's answer.
type Outcome uint8

// Outcomes. Abstain is a backend's "no opinion" (no credentials of a kind it understands, or an
// action it does not handle) and lets the chain move on; the engine never returns it.
const (
	Abstain         Outcome = iota
	Allow                   // permitted
	Unauthenticated         // denied: missing, invalid or expired credentials (HTTP 401)
	Forbidden               // denied: identity established but not permitted (HTTP 403)
)

func (o Outcome) String() string {
	switch o {
	case Allow:
		return "allow"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	}
	return "abstain"
}

// Machine-readable reasons used by the engine and the built-in backends. Backends may add their own
// (short, lower_snake_case, never containing a credential).
const (
	ReasonAllowed        = "allowed"
	ReasonNoCredentials  = "no_credentials"
	ReasonBadCredentials = "bad_credentials"
	ReasonNotPermitted   = "not_permitted"
	ReasonNoMethod       = "no_method"     // no configured method handles the action
	ReasonBackendError   = "backend_error" // a backend could not decide; the chain fails closed
	ReasonUpstream       = "upstream_unavailable"
	ReasonCanceled       = "canceled"
	ReasonInvalidPath    = "invalid_path" // the engine refused a path that fails CheckPath
	// ReasonQueryToken: a token came from a query parameter over HTTP and Policy.QueryTokenOnHTTP is off.
	ReasonQueryToken = "query_token_not_allowed"
	// ReasonGrantExpired: a method allowed with an Expires already past.
	ReasonGrantExpired = "grant_expired"
	// ReasonRenameUnsupported: the allow needs a rename (a stream key was the name) and the
	// adapter cannot rename (Request.CanRename is false).
	ReasonRenameUnsupported = "rename_unsupported"
	ReasonPathIsKey         = "path_is_key" // an allow on a path holding a key nothing resolved
	// ReasonTimeout: the chain did not decide within Policy.DecisionTimeout.
	ReasonTimeout = "decision_timeout"
)

// Decision is the answer to a Request. The zero Decision is an Abstain.
type Decision struct {
	Outcome  Outcome
	Reason   string    // machine-readable, e.g. "bad_credentials"
	Message  string    // one human sentence, safe to show to the client and to log
	Backend  string    // the method that decided (the engine fills it from the chain)
	Identity string    // who the client is, if established ("" for anonymous)
	Expires  time.Time // when the grant ends; the zero Time means never
	// Rename is set when Request.Path presented a secret (a stream key used as the stream name):
	// the public path to use instead, set by the method that decided or, when that method did
	// not know the secret, by the engine (see SecretPaths). On an Allow, adapters publish under it; on a denial it only
	// keeps the secret out of the engine's log line, and adapters must not act on it.
	Rename string
	// KeyID and KeyLabel name the stream key that decided (a managed key's id such as
	// "key_3kq7w2mhxa", or "config:N" for the Nth key in YAML) and its label, never its secret,
	// so the registry, events and session kicks can say which key it was. Empty otherwise.
	KeyID, KeyLabel string
	// Undecided is set on a denial when some consulted method could not decide (it returned an
	// error: key set unavailable, upstream down, timeout). Such a method might have allowed, so
	// the denial is not proof that the grant is gone: a new session is refused (fail closed), but
	// a re-check of a running session keeps it (see Keep). Never set on an Allow.
	Undecided bool
	// RetryAfter, on a banned denial (ReasonBanned), is how long until the ban ends, in whole
	// seconds; adapters whose protocol has Retry-After (HTTP: the SFU, forward-auth, the API)
	// send it. Zero otherwise.
	RetryAfter time.Duration
	Steps      []Step // engine only: what each consulted method answered, in order

	hidePath bool   // engine only: nothing resolved the path (a timeout), so it is not logged
	imposed  string // chain only: on an Allow without Rename, a denied method's Rename (the path is a key)
}

// Step records one method's answer inside an engine Decision.
type Step struct {
	Method  string
	Outcome Outcome
	Reason  string
}

// Allowed reports whether the decision permits the request.
func (d Decision) Allowed() bool { return d.Outcome == Allow }

// Keep reports whether a running session that was re-checked (after a reload, at an nginx-rtmp
// on_update, on a timer) may continue: it was allowed, or nothing could decide. A session ends
// only on a real denial, never because an IdP or upstream was down at the moment of the re-check.
// New sessions must use Allowed instead.
func (d Decision) Keep() bool { return d.Outcome == Allow || d.Undecided }

// HTTPStatus maps the outcome to the status most hooks answer with: 200, 401 or 403; 409 for
// ReasonPathBusy and 503 for ReasonStateUnavailable.
func (d Decision) HTTPStatus() int {
	switch {
	case d.Reason == ReasonPathBusy:
		return 409
	case d.Reason == ReasonStateUnavailable:
		return 503
	}
	switch d.Outcome {
	case Allow:
		return 200
	case Forbidden:
		return 403
	}
	return 401
}

// TTL returns how long the grant lasts from now, and false if it never expires.
func (d Decision) TTL(now time.Time) (time.Duration, bool) {
	if d.Expires.IsZero() {
		return 0, false
	}
	return d.Expires.Sub(now), true
}

// Allowing returns an Allow decision for identity, expiring at exp (zero = never).
func Allowing(identity string, exp time.Time) Decision {
	return Decision{Outcome: Allow, Reason: ReasonAllowed, Message: "allowed", Identity: identity, Expires: exp}
}

// Denying returns a denial with the given outcome, reason and human message.
func Denying(o Outcome, reason, message string) Decision {
	return Decision{Outcome: o, Reason: reason, Message: message}
}

// Backend decides requests. Authorize returns a Decision (allow, deny, or Abstain) and a nil
// error; a non-nil error means the backend could not decide (timeout, unreachable JWKS, bad
// upstream reply) and the engine treats it as a denial. Implementations must be safe for
// concurrent use and must not put credentials in errors.
type Backend interface {
	Authorize(ctx context.Context, req *Request) (Decision, error)
}

// BackendFunc adapts a function to the Backend interface.
type BackendFunc func(ctx context.Context, req *Request) (Decision, error)

// Authorize calls f.
func (f BackendFunc) Authorize(ctx context.Context, req *Request) (Decision, error) {
	return f(ctx, req)
}

// normProtocol lower-cases a protocol name for comparisons.
func normProtocol(p string) string { return strings.ToLower(strings.TrimSpace(p)) }
