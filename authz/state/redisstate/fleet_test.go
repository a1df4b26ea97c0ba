package redisstate

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
	"gatehouse/authz/state"
	"gatehouse/authz/state/redistest"
)

// sessions is a node's local sessions (what the registry and adapters would list).
type sessions struct {
	mu sync.Mutex
	s  []live.Session
}

func (l *sessions) Sessions() []live.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]live.Session(nil), l.s...)
}

func (l *sessions) set(paths ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = nil
	for _, p := range paths {
		l.s = append(l.s, live.Session{Source: "sfu", ID: "s-" + p, Path: p, Publish: true})
	}
}

type fleetNode struct {
	fleet  *Fleet
	local  *sessions
	engine *authz.Engine
	clock  *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// allowAll allows every request.
type allowAll struct{}

func (allowAll) Authorize(context.Context, *authz.Request) (authz.Decision, error) {
	return authz.Allowing("alice", time.Time{}), nil
}

func newFleetNode(t *testing.T, srv *redistest.Server, id string, ttl time.Duration) *fleetNode {
	t.Helper()
	n := &fleetNode{local: &sessions{}, clock: &clock{t: time.Now()}}
	n.fleet = NewFleet(context.Background(), client(t, srv), "test:", state.Node{ID: id, URL: "http://" + id + ".internal:8089", Version: "test"},
		n.local, NewHealth(time.Millisecond, nil), WithTiming(time.Hour, ttl), WithFleetClock(n.clock.now))
	n.engine = authz.NewEngine(authz.NewChain(authz.Method{Name: "all", Backend: allowAll{}}), nil, authz.WithPathLeases(n.fleet))
	return n
}

func (n *fleetNode) publish(path string) authz.Decision {
	return n.engine.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: path, Source: "sfu"})
}

func beat(t *testing.T, ns ...*fleetNode) {
	t.Helper()
	for _, n := range ns {
		if err := n.fleet.Beat(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// One publisher per path across two nodes: B is refused path_busy while A's publisher lives and
// may publish once it ended; the lookup says who publishes where; both nodes are listed; a
// claim whose publisher never started is released after the TTL; the same node may publish
// again (a reconnect).
func TestFleetOnePublisherPerPath(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, b := newFleetNode(t, srv, "node-a", time.Minute), newFleetNode(t, srv, "node-b", time.Minute)
	beat(t, a, b)

	if d := a.publish("live/x"); !d.Allowed() {
		t.Fatalf("A publishes live/x: %+v", d)
	}
	a.local.set("live/x")
	if d := b.publish("live/x"); d.Reason != authz.ReasonPathBusy || d.HTTPStatus() != 409 {
		t.Fatalf("B publishes live/x while A does: got %s %d, want path_busy 409", d.Reason, d.HTTPStatus())
	}
	if d := a.publish("live/x"); !d.Allowed() {
		t.Fatalf("A publishes live/x again (a reconnect): %+v", d)
	}
	if d := b.publish("live/y"); !d.Allowed() {
		t.Fatalf("B publishes another path: %+v", d)
	}
	o, ok, err := b.fleet.PublisherOf(ctx, "live/x")
	if err != nil || !ok || o != (state.Owner{NodeID: "node-a", URL: "http://node-a.internal:8089"}) {
		t.Fatalf("PublisherOf(live/x) on B: %+v %v %v, want node-a with its URL", o, ok, err)
	}
	if _, ok, err := a.fleet.PublisherOf(ctx, "live/none"); ok || err != nil {
		t.Fatalf("PublisherOf(nobody's path): %v %v, want false, nil", ok, err)
	}
	nodes, err := a.fleet.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "node-a" || nodes[1].ID != "node-b" || nodes[1].URL != "http://node-b.internal:8089" {
		t.Fatalf("Nodes: %+v %v, want node-a and node-b", nodes, err)
	}

	// A heartbeat keeps A's live lease; its publisher ends: released at once, B may publish.
	beat(t, a)
	if d := b.publish("live/x"); d.Reason != authz.ReasonPathBusy {
		t.Fatalf("B after A's heartbeat: %s, want path_busy", d.Reason)
	}
	a.local.set()
	a.fleet.Release(ctx, "live/x")
	if d := b.publish("live/x"); !d.Allowed() {
		t.Fatalf("B after A's publisher ended: %+v, want allowed", d)
	}
	b.local.set("live/x", "live/y")

	// A claim whose publisher never shows up is kept for one TTL, then released by a heartbeat.
	if d := a.publish("live/z"); !d.Allowed() {
		t.Fatal(d)
	}
	beat(t, a)
	if d := b.publish("live/z"); d.Reason != authz.ReasonPathBusy {
		t.Fatalf("B within the claim's grace: %s, want path_busy", d.Reason)
	}
	a.clock.add(2 * time.Minute)
	beat(t, a)
	if d := b.publish("live/z"); !d.Allowed() {
		t.Fatalf("B after A's unused claim expired: %+v", d)
	}
}

// A node that stops beating loses its leases after the TTL (Redis expires them).
func TestFleetDeadNodeLeaseExpires(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newFleetNode(t, srv, "node-a", 200*time.Millisecond), newFleetNode(t, srv, "node-b", time.Minute)
	if d := a.publish("live/x"); !d.Allowed() {
		t.Fatal(d)
	}
	if d := b.publish("live/x"); d.Reason != authz.ReasonPathBusy {
		t.Fatalf("B while A's lease lives: %s", d.Reason)
	}
	// A stops (no more heartbeats): B gets the path once Redis expired the lease.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if d := b.publish("live/x"); d.Allowed() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A's lease never expired")
		}
	}
}

// Redis down: a new publish is refused state_unavailable at once, fail closed, and running
// sessions are not touched; Redis back (empty: it lost every lease), the next heartbeat
// re-asserts A's lease of its running publisher, so B is refused again without a restart.
func TestFleetRedisDownAndReconcile(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newFleetNode(t, srv, "node-a", time.Minute), newFleetNode(t, srv, "node-b", time.Minute)
	if d := a.publish("live/x"); !d.Allowed() {
		t.Fatal(d)
	}
	a.local.set("live/x")
	beat(t, a, b)
	srv.Stop()
	// The first request finds Redis gone (one timeout); later ones fail at once.
	for range 3 {
		if d := b.publish("live/new"); d.Allowed() || d.Reason != authz.ReasonStateUnavailable || !d.Keep() || d.HTTPStatus() != 503 {
			t.Fatalf("publish with Redis down: %s %d keep=%v, want state_unavailable 503, undecided", d.Reason, d.HTTPStatus(), d.Keep())
		}
	}
	recheck := a.engine.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/x", Kind: authz.KindRecheck})
	if !recheck.Allowed() {
		t.Fatalf("re-check of A's running publisher with Redis down: %+v, want allowed", recheck)
	}
	if err := a.fleet.Beat(context.Background()); err == nil {
		t.Fatal("heartbeat with Redis down: nil error")
	}
	srv.Restart() // not persistent: every lease is gone
	for deadline := time.Now().Add(10 * time.Second); a.fleet.Beat(context.Background()) != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("A's heartbeat never succeeded after Redis returned")
		}
	}
	if d := b.publish("live/x"); d.Reason != authz.ReasonPathBusy {
		t.Fatalf("B after Redis returned: %s, want path_busy (A re-asserted its lease)", d.Reason)
	}
	if got := a.fleet.Leases(); len(got) != 1 || got[0] != "live/x" {
		t.Fatalf("A's leases: %v", got)
	}
}

// An announcement made on A reaches B's subscribers (not A's own), also when B was
// disconnected when it was made (re-read after reconnect).
func TestFleetAnnounce(t *testing.T) {
	srv := redistest.Start(t, redistest.Persistent())
	a, b := newFleetNode(t, srv, "node-a", time.Minute), newFleetNode(t, srv, "node-b", time.Minute)
	got := make(chan string, 8)
	ownGot := make(chan string, 8)
	b.fleet.OnAnnouncement(func(body []byte) { got <- string(body) })
	a.fleet.OnAnnouncement(func(body []byte) { ownGot <- string(body) })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.fleet.Run(ctx, nil) }()
	go func() { defer wg.Done(); b.fleet.Run(ctx, nil) }()
	defer func() { cancel(); wg.Wait() }()

	if err := a.fleet.Announce(ctx, json.RawMessage(`{"session":"s1"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-got:
		if body != `{"session":"s1"}` {
			t.Fatalf("B got %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B never got A's announcement")
	}
	select {
	case body := <-ownGot:
		t.Fatalf("A got its own announcement %s", body)
	default:
	}
	// Missed while B's subscription is away: a record written directly (as by a node whose
	// announcement B's pub/sub missed) is delivered by B's next poll.
	c := client(t, srv)
	raw, _ := json.Marshal(kickMsg{Node: "node-c", Body: json.RawMessage(`{"session":"s2"}`)})
	if err := b.fleet.kicks.Append(ctx, c, string(raw)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.fleet.kicks.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-got:
		if body != `{"session":"s2"}` {
			t.Fatalf("B got %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B never got the second record")
	}
}
