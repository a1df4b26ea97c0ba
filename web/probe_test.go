package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/decisions"
	"gatehouse/authz/live"
	"gatehouse/web"
)

// TestEventsDoNotFlushDenials: every GET /events asks the engine about every live stream on
// the visitor's behalf; those probes must not enter the decisions ring, or an unauthenticated
// client could push a real brute-force denial out of /manage's list with about 100 requests
// (one private stream live), as it could before probes had their own kind.
func TestEventsDoNotFlushDenials(t *testing.T) {
	be := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		if r.Action == authz.ActionRead && strings.HasPrefix(r.Path, "public/") {
			return authz.Allowing("", time.Time{}), nil
		}
		if r.HasCredentials() {
			return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no"), nil
		}
		return authz.Decision{}, nil
	})
	recent := decisions.New(0)
	e := authz.NewEngine(authz.NewChain(authz.Method{Name: "internal", Backend: be}), nil, authz.WithObserver(recent))
	// The attack the operator should see.
	e.Authorize(context.Background(), &authz.Request{Action: authz.ActionAPI, User: "admin", Pass: "guess", IP: netip.MustParseAddr("203.0.113.66"), Source: "api"})

	reg := live.NewRegistry()
	reg.Record(live.Event{Type: live.Published, Path: "private/cam", Source: "sfu", Session: "s1"})
	app := web.New(web.Options{Registry: reg, Auth: e})
	mux := http.NewServeMux()
	for _, p := range app.Paths() {
		mux.Handle(p, app.Handler())
	}
	srv := httptest.NewServer(mux)
	defer func() { app.Close(); srv.Close() }()
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		_, _ = io.ReadAtLeast(res.Body, buf, 20) // the first list has been sent
		cancel()
		res.Body.Close()
	}
	for _, d := range recent.Snapshot().Decisions {
		if d.IP == "203.0.113.66" {
			return
		}
	}
	t.Fatalf("the password guess is no longer in /manage's decisions: 100 anonymous GET /events pushed it out")
}
