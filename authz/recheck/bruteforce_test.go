package recheck

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

// TestRecheckIsNotAGuess: after a reload that changes one user's password, the re-check of
// that user's running sessions (all behind one address, e.g. an office NAT or a restreaming
// edge) must not count as failed guesses from that address: it used to ban the address and
// lock out a legitimate user there.
func TestRecheckIsNotAGuess(t *testing.T) {
	var bobPass atomic.Value
	bobPass.Store("b")
	be := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		switch {
		case !r.HasCredentials():
			return authz.Decision{}, nil
		case r.User == "alice" && r.Pass == "a", r.User == "bob" && r.Pass == bobPass.Load().(string):
			return authz.Allowing(r.User, time.Time{}), nil
		}
		return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no"), nil
	})
	e := authz.NewEngine(authz.NewChain(authz.Method{Name: "users", Backend: be}).
		WithPolicy(authz.Policy{BruteForce: authz.DefaultBruteForce()}), nil)
	ip := netip.MustParseAddr("198.51.100.7")
	tab := New(100, 0, nil, nil)
	for i := range 10 {
		req := &authz.Request{Action: authz.ActionRead, Path: "live/x", User: "bob", Pass: "b", IP: ip, Source: "mediamtx"}
		if !tab.Add(live.Session{Source: "mediamtx", ID: fmt.Sprint(i)}, req, e.Authorize(context.Background(), req)) {
			t.Fatal("add")
		}
	}
	bobPass.Store("changed") // the operator changes bob's password and reloads
	if n := len(tab.Recheck(context.Background(), e)); n != 10 {
		t.Fatalf("recheck ended %d", n)
	}
	d := e.Authorize(context.Background(), &authz.Request{Action: authz.ActionRead, Path: "live/x", User: "alice", Pass: "a", IP: ip, Source: "mediamtx"})
	if !d.Allowed() {
		t.Fatalf("alice, right password, same address after a reload's re-check: %s %s; bans: %+v", d.Reason, d.Message, e.Bans())
	}
}
