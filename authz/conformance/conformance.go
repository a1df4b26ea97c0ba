// Package conformance is the one table of cases that every caller of the engine (each hook
// adapter and the SFU's WHIP/WHEP admission) must answer alike: allow, 401 against 403, a
// malformed or oversized body, a stream key used as the stream name (renamed where the server
// can, refused where it cannot), a key parameter on the exact path, an expired grant, a query
// token over HTTP, a repeated credential parameter, and no secret in any log line.
//
// An adapter's test supplies only an Adapter: how to build its handler, how to encode a case as
// its server's request and how to read its answer. The rules come from the engine, so adding a
// server means writing one Adapter, not re-deriving them. It is imported by tests only.
package conformance

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/logtest"
)

// The secrets of the scripted backend. None may appear in any log line.
const (
	Key            = "AliceSecretStreamKey123" // stream key of live/alice (publish and read)
	Token          = "good-token-3f9a51"       // publish and read anything, identity alice
	ForbiddenToken = "forbidden-token-77c1e0"  // identity known, nothing permitted
	ExpiredToken   = "expired-token-9d2e44"    // publish and read, grant expired an hour ago
	WrongToken     = "wrong-token-5b8c13"      // unknown to the backend
)

// Ask is one client request, independent of the server.
type Ask struct {
	Action authz.Action // ActionPublish or ActionRead
	App    string       // first path segment ("live")
	Stream string       // the stream name (may be Key)
	// Token is sent where the server's clients send one when they can: an Authorization
	// header where the server forwards it, else the query (as a query token would be).
	Token string
	// Query is the raw query the client appended to its URL ("key=…", "token=…").
	Query string
	// HTTP asks for an HTTP protocol (HLS, WebRTC): servers that speak none skip the case.
	// NonHTTP asks for a non-HTTP protocol (RTMP): HTTP-only servers skip the case. Neither:
	// the server's usual protocol.
	HTTP, NonHTTP bool
}

// Path is App/Stream.
func (a Ask) Path() string { return a.App + "/" + a.Stream }

// Verdict is what an answer means for the client.
type Verdict int

// Verdicts. Denied is a denial whose kind the server's answer does not tell (nginx-rtmp, OME).
// Refused is wanted only: any denial, 400 included.
const (
	Allowed Verdict = iota + 1
	Renamed
	Unauthenticated
	Forbidden
	Denied
	BadRequest
	TooLarge
	Refused
)

var verdictNames = map[Verdict]string{Allowed: "allowed", Renamed: "renamed", Unauthenticated: "401",
	Forbidden: "403", Denied: "denied", BadRequest: "400", TooLarge: "413", Refused: "refused"}

func (v Verdict) String() string { return verdictNames[v] }

// Answer is a decoded reply: the verdict and, for Renamed, the public path the server will use.
type Answer struct {
	Verdict Verdict
	Rename  string
}

// Adapter is what one server's test supplies.
type Adapter struct {
	Name string
	// Handler builds the handler under test asking auth and logging to log.
	Handler func(t *testing.T, auth *authz.Engine, log *slog.Logger) http.Handler
	// Encode turns an Ask into the server's request; false when the server cannot express it
	// (forward-auth never publishes, nginx-rtmp never speaks HTTP): the case is skipped.
	Encode func(t *testing.T, a Ask) (*http.Request, bool)
	// Malformed and Oversized return a request whose body is not the server's document, or
	// longer than any bound; nil when the server sends no body.
	Malformed func() *http.Request
	Oversized func() *http.Request
	// Decode reads the answer.
	Decode func(t *testing.T, ask Ask, w *httptest.ResponseRecorder) Answer
	// CanRename says the server can publish or play under another name than the one asked.
	CanRename bool
	// QueryTokensNeedPolicy says the server forwards no header and does not say which protocol a
	// client used (SRS), so the engine counts every query token as HTTP-borne and its clients'
	// tokens work only with auth.query_token_on_http: the suite runs it with that policy on and
	// skips the cases that test the policy itself.
	QueryTokensNeedPolicy bool
}

// Case is one row of the table.
type Case struct {
	Name string
	Ask  Ask
	// Want is the verdict; WantNoRename is the verdict where the adapter cannot rename (0: Want).
	Want, WantNoRename Verdict
	// Policy marks a case that tests the query-token policy (skipped where the adapter runs with
	// the policy on).
	Policy bool
}

// Cases is the table every adapter runs, in order (publishes come before the reads of their
// streams, for servers that refuse a viewer of a stream that is not live).
var Cases = []Case{
	{Name: "allow publish", Ask: Ask{Action: authz.ActionPublish, App: "live", Stream: "cam", Token: Token}, Want: Allowed},
	{Name: "allow", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "cam", Token: Token}, Want: Allowed},
	{Name: "no credentials is 401", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "cam"}, Want: Unauthenticated},
	{Name: "wrong token is 401", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "cam", Token: WrongToken}, Want: Unauthenticated},
	{Name: "not permitted is 403", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "cam", Token: ForbiddenToken}, Want: Forbidden},
	{Name: "expired grant", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "cam", Token: ExpiredToken}, Want: Unauthenticated},
	{Name: "stream key as the name", Ask: Ask{Action: authz.ActionPublish, App: "live", Stream: Key}, Want: Renamed, WantNoRename: Forbidden},
	{Name: "stream key as the name, read", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: Key}, Want: Renamed, WantNoRename: Forbidden},
	{Name: "key parameter on the exact path", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "alice", Query: "key=" + Key}, Want: Allowed},
	{Name: "key parameter on another path", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "bob", Query: "key=" + Key}, Want: Unauthenticated},
	{Name: "query token over http", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "cam", Query: "token=" + Token, HTTP: true}, Want: Unauthenticated, Policy: true},
	{Name: "alias query token over http", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "cam", Query: "access_key=" + Token, HTTP: true}, Want: Unauthenticated, Policy: true},
	{Name: "query token over rtmp", Ask: Ask{Action: authz.ActionPublish, App: "live", Stream: "cam", Query: "token=" + Token, NonHTTP: true}, Want: Allowed},
	{Name: "duplicate token parameter", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "cam", Query: "token=" + Token + "&token=" + WrongToken}, Want: Refused},
	{Name: "duplicate key parameter", Ask: Ask{Action: authz.ActionRead, App: "live", Stream: "alice", Query: "key=" + Key + "&key=" + Key}, Want: Refused},
}

// backend is the scripted method behind the engine of every run.
func backend(now time.Time) authz.Backend {
	return authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		_, last, _ := strings.Cut(r.Path, "/")
		switch {
		case last == Key:
			d := authz.Allowing("alice", time.Time{})
			d.Rename = "live/alice"
			return d, nil
		case r.Key != "":
			if r.Key == Key && r.Path == "live/alice" {
				return authz.Allowing("alice", time.Time{}), nil
			}
			return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "stream key not accepted"), nil
		case r.Token == Token:
			return authz.Allowing("alice", time.Time{}), nil
		case r.Token == ExpiredToken:
			return authz.Allowing("alice", now.Add(-time.Hour)), nil
		case r.Token == ForbiddenToken:
			d := authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted")
			d.Identity = "alice"
			return d, nil
		case r.Token != "":
			return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "unknown token"), nil
		}
		return authz.Decision{}, nil
	})
}

// Run runs every case against a, with the engine's default policy (no query tokens over HTTP)
// unless a.QueryTokensNeedPolicy, and fails if any log line names a secret.
func Run(t *testing.T, a Adapter) {
	t.Helper()
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	chain := authz.NewChain(authz.Method{Name: "script", Backend: backend(time.Now())})
	if a.QueryTokensNeedPolicy {
		chain = chain.WithPolicy(authz.Policy{QueryTokenOnHTTP: true})
	}
	eng := authz.NewEngine(chain, log)
	h := a.Handler(t, eng, log)
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.Policy && a.QueryTokensNeedPolicy {
				t.Skipf("%s runs with auth.query_token_on_http on", a.Name)
			}
			r, ok := a.Encode(t, c.Ask)
			if !ok {
				t.Skipf("%s cannot express this request", a.Name)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := a.Decode(t, c.Ask, w)
			want := c.Want
			if !a.CanRename && c.WantNoRename != 0 {
				want = c.WantNoRename
			}
			if !matches(got.Verdict, want) {
				t.Errorf("got %v (%d %q), want %v", got.Verdict, w.Code, w.Body.String(), want)
			}
			if got.Verdict == Renamed && got.Rename != "live/alice" {
				t.Errorf("renamed to %q, want live/alice", got.Rename)
			}
			if strings.Contains(w.Body.String(), Key) || strings.Contains(w.Header().Get("Location"), Key) {
				t.Errorf("the answer names the stream key: %q %q", w.Header(), w.Body.String())
			}
		})
	}
	for _, raw := range []struct {
		name string
		make func() *http.Request
		want Verdict
	}{{"malformed body is 400", a.Malformed, BadRequest}, {"oversized body is 413", a.Oversized, TooLarge}} {
		t.Run(raw.name, func(t *testing.T) {
			if raw.make == nil {
				t.Skipf("%s sends no body", a.Name)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, raw.make())
			if w.Code != map[Verdict]int{BadRequest: http.StatusBadRequest, TooLarge: http.StatusRequestEntityTooLarge}[raw.want] {
				t.Errorf("got %d %q, want %v", w.Code, w.Body.String(), raw.want)
			}
		})
	}
	t.Run("no secret in any log line", func(t *testing.T) {
		out := logs.String()
		for _, s := range []string{Key, Token, ForbiddenToken, ExpiredToken, WrongToken} {
			if strings.Contains(out, s) {
				t.Errorf("a log line names the secret %q:\n%s", s, out)
			}
		}
		if !strings.Contains(out, "path=live/alice") {
			t.Errorf("the stream key cases were not logged under the public path:\n%s", out)
		}
	})
}

// matches accepts Denied (a server that cannot tell 401 from 403) for either denial.
func matches(got, want Verdict) bool {
	switch {
	case got == want:
		return true
	case want == Refused:
		return got == Unauthenticated || got == Forbidden || got == Denied || got == BadRequest
	}
	return got == Denied && (want == Unauthenticated || want == Forbidden)
}

// Oversized returns prefix, then more padding than any hook body bound (64 KiB), then `"}`.
func Oversized(prefix string) *bytes.Reader {
	return bytes.NewReader([]byte(prefix + strings.Repeat("a", 65<<10) + `"}`))
}

// Status maps the usual hook statuses to verdicts: 200, 201 and 204 allow, 401, 403, 400, 413.
func Status(code int) Verdict {
	switch code {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return Allowed
	case http.StatusUnauthorized:
		return Unauthenticated
	case http.StatusForbidden:
		return Forbidden
	case http.StatusBadRequest:
		return BadRequest
	case http.StatusRequestEntityTooLarge:
		return TooLarge
	}
	return 0
}
