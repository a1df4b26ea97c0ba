package recheck

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	tab := New(10, 0, nil, nil)
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
	var logged bytes.Buffer
	tab := New(2, time.Hour, clock, slog.New(slog.NewTextHandler(&logged, nil)))
	allow := func(exp time.Time) authz.Decision { return authz.Allowing("u", exp) }
	tab.Add(live.Session{ID: "short"}, &authz.Request{}, allow(now.Add(time.Minute)))
	tab.Add(live.Session{ID: "forever"}, &authz.Request{}, allow(time.Time{}))
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
	// Entries older than ttl make room, without counting as evictions.
	tab.Add(live.Session{ID: "a"}, &authz.Request{}, allow(time.Time{}))
	tab.Add(live.Session{ID: "b"}, &authz.Request{}, allow(time.Time{}))
	now = now.Add(2 * time.Hour)
	if !tab.Add(live.Session{ID: "c"}, &authz.Request{}, allow(time.Time{})) {
		t.Error("stale entries did not make room")
	}
	if got := ids(tab.Sessions()); !slices.Equal(got, []string{"c"}) {
		t.Errorf("sessions: %v, want [c]", got)
	}
	if got := tab.Evicted(); got != 0 {
		t.Errorf("evicted: %d, want 0 (stale entries are not evictions)", got)
	}
	if logged.Len() != 0 {
		t.Errorf("logged without an eviction: %s", logged.String())
	}
}

// TestFullTableEvictsLeastRecentlySeen: a session admitted while the table is full must be
// remembered (re-checked, ended at its grant's expiry); the session seen longest ago makes room,
// and a burst of evictions is one warning with its count.
func TestFullTableEvictsLeastRecentlySeen(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var logged bytes.Buffer
	tab := New(3, 24*time.Hour, clock, slog.New(slog.NewTextHandler(&logged, nil)))
	allow := func(exp time.Time) authz.Decision { return authz.Allowing("u", exp) }
	for _, id := range []string{"old", "mid", "new"} {
		tab.Add(live.Session{ID: id}, &authz.Request{}, allow(time.Time{}))
		now = now.Add(time.Second)
	}
	tab.Add(live.Session{ID: "old"}, &authz.Request{}, allow(time.Time{})) // news of old: mid is now the least recently seen
	now = now.Add(time.Second)
	if !tab.Add(live.Session{ID: "late"}, &authz.Request{}, allow(now.Add(time.Second))) {
		t.Fatal("a full table refused a new session")
	}
	if got, want := ids(tab.Sessions()), []string{"late", "new", "old"}; !slices.Equal(got, want) {
		t.Fatalf("sessions: %v, want %v (mid, the least recently seen, evicted)", got, want)
	}
	now = now.Add(time.Second)
	if got := ids(tab.Expired()); !slices.Equal(got, []string{"late"}) {
		t.Errorf("expired: %v, want [late] (a session admitted into a full table ends at its expiry)", got)
	}
	for i := range 5 {
		tab.Add(live.Session{ID: fmt.Sprint("burst", i)}, &authz.Request{}, allow(time.Time{}))
	}
	if got, want := tab.Evicted(), uint64(5); got != want { // mid, then 4 of the burst (late had expired)
		t.Errorf("evicted: %d, want %d", got, want)
	}
	if got, want := tab.Len(), 3; got != want {
		t.Errorf("len: %d, want %d", got, want)
	}
	if n := strings.Count(logged.String(), "level=WARN"); n != 1 {
		t.Errorf("warnings: %d, want 1 for one burst:\n%s", n, logged.String())
	}
	now = now.Add(warnEvery)
	tab.Add(live.Session{ID: "after"}, &authz.Request{}, allow(time.Time{}))
	if n := strings.Count(logged.String(), "level=WARN"); n != 2 || !strings.Contains(logged.String(), "evicted=5") {
		t.Errorf("the next burst's warning does not count the evictions logged since (want evicted=5):\n%s", logged.String())
	}
}

// TestReadersEvictedBeforePublishers: MediaMTX puts readers and publishers in one table, and
// reading is often anonymous, so a flood of read sessions used to evict a chosen long-running
// publisher (which then escaped re-checks and its grant's expiry). A full table now evicts its
// least recently seen reader first, and a publisher only when it holds no reader.
func TestReadersEvictedBeforePublishers(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tab := New(100, 24*time.Hour, clock, nil)
	allow := authz.Allowing("u", time.Time{})
	tab.Add(live.Session{ID: "pub", Path: "live/cam", Publish: true}, &authz.Request{}, allow)
	for i := range 1000 { // ten times the table, all newer than the publisher
		now = now.Add(time.Millisecond)
		tab.Add(live.Session{ID: fmt.Sprint("reader", i), Path: "live/cam"}, &authz.Request{}, allow)
	}
	got := ids(tab.Sessions())
	if !slices.Contains(got, "pub") {
		t.Fatalf("1000 read sessions evicted the publisher from a table of 100")
	}
	if len(got) != 100 || !slices.Contains(got, "reader999") || slices.Contains(got, "reader0") {
		t.Errorf("want the publisher and the 99 most recent readers, got %d sessions", len(got))
	}
	// Only publishers left: the least recently seen publisher makes room.
	tab = New(2, 24*time.Hour, clock, nil)
	for _, id := range []string{"p1", "p2", "p3"} {
		now = now.Add(time.Millisecond)
		tab.Add(live.Session{ID: id, Publish: true}, &authz.Request{}, allow)
	}
	if got := ids(tab.Sessions()); !slices.Equal(got, []string{"p2", "p3"}) {
		t.Errorf("a table of publishers: got %v, want [p2 p3]", got)
	}
	// A reader is evicted before any publisher, even one seen longer ago.
	tab = New(2, 24*time.Hour, clock, nil)
	tab.Add(live.Session{ID: "p", Publish: true}, &authz.Request{}, allow)
	now = now.Add(time.Millisecond)
	tab.Add(live.Session{ID: "r"}, &authz.Request{}, allow)
	now = now.Add(time.Millisecond)
	tab.Add(live.Session{ID: "p2", Publish: true}, &authz.Request{}, allow)
	if got := ids(tab.Sessions()); !slices.Equal(got, []string{"p", "p2"}) {
		t.Errorf("got %v, want [p p2] (the reader evicted)", got)
	}
}

// ForgetPath drops the sessions of one path through the path index, which follows every way an
// entry leaves or moves: re-added on another path, forgotten, evicted.
func TestForgetPathFollowsTheIndex(t *testing.T) {
	tab := New(3, 0, nil, nil)
	ok := authz.Allowing("u", time.Time{})
	add := func(id, path string) { tab.Add(live.Session{ID: id, Path: path, Publish: true}, &authz.Request{}, ok) }
	add("a", "p")
	add("b", "p")
	add("a", "q") // a moved to q
	tab.ForgetPath("p", "")
	if got := ids(tab.Sessions()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after ForgetPath(p): %v, want [a] (a moved to q)", got)
	}
	add("c", "q")
	add("d", "r")
	add("e", "r") // full at 3: evicts a, the least recently seen
	tab.ForgetPath("q", "c")
	if got := ids(tab.Sessions()); !slices.Equal(got, []string{"c", "d", "e"}) {
		t.Fatalf("after ForgetPath(q, keep c): %v, want [c d e]", got)
	}
	tab.Forget("d")
	tab.ForgetPath("r", "")
	if got := ids(tab.Sessions()); !slices.Equal(got, []string{"c"}) || len(tab.byPath) != 1 {
		t.Fatalf("after ForgetPath(r): %v, index %v; want [c] and one path", got, tab.byPath)
	}
}
