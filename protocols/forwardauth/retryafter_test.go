package forwardauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gatehouse/authz"
)

// TestBannedRetryAfter: a banned client (here an identity an operator banned) is refused with
// Retry-After, which Traefik and Caddy pass on to the client.
func TestBannedRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	allow := authz.BackendFunc(func(context.Context, *authz.Request) (authz.Decision, error) {
		return authz.Allowing("alice", time.Time{}), nil
	})
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: allow}), nil, authz.WithClock(func() time.Time { return now }))
	h := New(Config{Rules: []Rule{{Prefix: "/hls/", StripSuffix: true}}}, eng, &recorder{}, nil)
	ask := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/hooks/forward-auth", nil)
		r.RemoteAddr = "127.0.0.1:40000" // a proxy on loopback, trusted by default
		r.Header.Set("X-Original-URI", "/hls/live/cam/index.m3u8")
		r.Header.Set("X-Original-Method", "GET")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := ask(); w.Code >= 300 || w.Header().Get("Retry-After") != "" {
		t.Fatalf("before the ban: got %d Retry-After %q (%s), want 2xx and none", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if err := eng.Ban("", "alice", now.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if w := ask(); w.Code != http.StatusForbidden || w.Header().Get("Retry-After") != "90" {
		t.Errorf("banned: got %d Retry-After %q, want 403 and 90", w.Code, w.Header().Get("Retry-After"))
	}
	// A wait that is not whole seconds is rounded up (it was truncated: "0" for half a second,
	// an invitation to retry at once).
	h = New(Config{Rules: []Rule{{Prefix: "/hls/", StripSuffix: true}}}, waitAuth(500*time.Millisecond), &recorder{}, nil)
	if w := ask(); w.Code != http.StatusForbidden || w.Header().Get("Retry-After") != "1" {
		t.Errorf("banned for 0.5s: got %d Retry-After %q, want 403 and 1", w.Code, w.Header().Get("Retry-After"))
	}
}

// waitAuth refuses everything as a ban of its length does.
type waitAuth time.Duration

func (a waitAuth) Authorize(context.Context, *authz.Request) authz.Decision {
	d := authz.Denying(authz.Forbidden, authz.ReasonBanned, "banned")
	d.RetryAfter = time.Duration(a)
	return d
}

func (waitAuth) Generation() uint64 { return 0 }
