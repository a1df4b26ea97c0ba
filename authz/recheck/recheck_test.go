package recheck

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

// passwords is an Authorizer that allows the users listed with their password, reports
// "could not decide" for broken ones and refuses everyone else, counting its calls.
type passwords struct {
	mu     sync.Mutex
	users  map[string]string
	broken bool
	exp    time.Time
	calls  int
}

func (p *passwords) Authorize(_ context.Context, req *authz.Request) authz.Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.broken {
		d := authz.Denying(authz.Unauthenticated, authz.ReasonTimeout, "")
		d.Undecided = true
		return d
	}
	if pw, ok := p.users[req.User]; ok && pw == req.Pass {
		return authz.Allowing(req.User, p.exp)
	}
	return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "")
}

func ids(ss []live.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	slices.Sort(out)
	return out
}

func TestRecheckEndsOnlyRealDenials(t *testing.T) {
	auth := &passwords{users: map[string]string{"alice": "a", "bob": "b"}}
	tab := New(10, 0, nil)
	for _, u := range []string{"alice", "bob"} {
		req := &authz.Request{Action: authz.ActionPublish, Path: "live/" + u, User: u, Pass: auth.users[u]}
		if !tab.Add(live.Session{Source: "srs", ID: u}, req, auth.Authorize(context.Background(), req)) {
			t.Fatal("Add refused")
		}
	}
	if tab.Add(live.Session{ID: "x"}, &authz.Request{}, authz.Denying(authz.Forbidden, "no", "")) {
		t.Error("a denied request was remembered")
	}

	auth.broken = true // a backend that cannot decide ends nothing
	if got := tab.Recheck(context.Background(), auth); len(got) != 0 {
		t.Fatalf("undecided re-check ended %v", ids(got))
	}
	auth.broken = false
	delete(auth.users, "bob") // the reload removed bob
	if got := ids(tab.Recheck(context.Background(), auth)); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("re-check ended %v, want [bob]", got)
	}
	if got := ids(tab.Sessions()); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("remembered after the re-check: %v, want [alice] (bob forgotten with his password)", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	delete(auth.users, "alice")
	if got := tab.Recheck(ctx, auth); len(got) != 0 {
		t.Errorf("a cancelled re-check ended %v", ids(got))
	}
}

func TestExpiredAndBounds(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tab := New(2, time.Hour, clock)
	allow := func(exp time.Time) authz.Decision { return authz.Allowing("u", exp) }
	tab.Add(live.Session{ID: "short"}, &authz.Request{}, allow(now.Add(time.Minute)))
	tab.Add(live.Session{ID: "forever"}, &authz.Request{}, allow(time.Time{}))
	if tab.Add(live.Session{ID: "third"}, &authz.Request{}, allow(time.Time{})) {
		t.Error("a full table took a third session")
	}
	if got := tab.Expired(); len(got) != 0 {
		t.Fatalf("expired before its time: %v", ids(got))
	}
	now = now.Add(time.Minute)
	if got := ids(tab.Expired()); !slices.Equal(got, []string{"short"}) {
		t.Fatalf("expired: %v, want [short]", got)
	}
	if got := tab.Expired(); len(got) != 0 {
		t.Errorf("expired twice: %v", ids(got))
	}
	// A re-check that allows with a new expiry moves the session's end.
	auth := &passwords{users: map[string]string{"": ""}, exp: now.Add(time.Minute)}
	tab.Recheck(context.Background(), auth)
	now = now.Add(time.Minute)
	if got := ids(tab.Expired()); !slices.Equal(got, []string{"forever"}) {
		t.Errorf("after a re-check with an expiry: %v, want [forever]", got)
	}
	// Entries older than ttl make room.
	tab.Add(live.Session{ID: "a"}, &authz.Request{}, allow(time.Time{}))
	tab.Add(live.Session{ID: "b"}, &authz.Request{}, allow(time.Time{}))
	now = now.Add(2 * time.Hour)
	if !tab.Add(live.Session{ID: "c"}, &authz.Request{}, allow(time.Time{})) {
		t.Error("stale entries did not make room")
	}
	if got := ids(tab.Sessions()); !slices.Equal(got, []string{"c"}) {
		t.Errorf("sessions: %v, want [c]", got)
	}
}
