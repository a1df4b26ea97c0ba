package redisstate

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz/live"
	"gatehouse/authz/state"
	"gatehouse/authz/state/redistest"
)

// streamNode is one node of a fleet with a real registry sharing its streams.
type streamNode struct {
	reg     *live.Registry
	fleet   *Fleet
	streams *Streams
	clock   *clock
}

func newStreamNode(t *testing.T, srv *redistest.Server, id string, ttl time.Duration) *streamNode {
	t.Helper()
	n := &streamNode{reg: live.NewRegistry(), clock: &clock{t: time.Now()}}
	// A heartbeat of an hour: in these tests only the announcements (and explicit calls) move
	// the lists.
	n.fleet = NewFleet(context.Background(), client(t, srv), "test:", state.Node{ID: id, Version: "test"},
		n.reg, NewHealth(time.Millisecond, nil), WithTiming(time.Hour, ttl), WithFleetClock(n.clock.now))
	n.streams = n.fleet.Streams(n.reg, n.reg)
	if err := n.fleet.Beat(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// run runs the node's stream sharing until the test ends.
func (n *streamNode) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	changes, unsub := n.reg.Subscribe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.streams.Run(ctx, changes) }()
	t.Cleanup(func() { cancel(); wg.Wait(); unsub() })
}

// next waits (bounded, not timed) for the next change on c.
func next(t *testing.T, c <-chan live.Change) live.Change {
	t.Helper()
	select {
	case ch := <-c:
		return ch
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10s")
	}
	return live.Change{}
}

// TestStreamsAcrossNodes: a stream published on A shows on B (List, a live change for B's
// event streams) through the announcement alone, with A's node id and without its session or
// address; its end takes it off B's list.
func TestStreamsAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newStreamNode(t, srv, "node-a", 10*time.Second), newStreamNode(t, srv, "node-b", 10*time.Second)
	all, cancel := b.reg.SubscribeAll()
	defer cancel()
	a.run(t)
	b.run(t)

	a.reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "sfu", Session: "secret-session", Identity: "alice",
		Protocol: "webrtc", Remote: "192.0.2.7:5000", KeyID: "k1", KeyLabel: "studio"})
	c := next(t, all)
	if !c.Live || c.Stream.Path != "live/alice" || c.Stream.Node != "node-a" {
		t.Fatalf("B got %+v, want live/alice live on node-a", c)
	}
	got := b.reg.List()
	if len(got) != 1 {
		t.Fatalf("B's List = %+v", got)
	}
	st := got[0]
	if st.Node != "node-a" || st.Identity != "alice" || st.Source != "sfu" || st.Protocol != "webrtc" || st.KeyLabel != "studio" {
		t.Fatalf("B's stream = %+v", st)
	}
	if st.Session != "" || st.Remote != "" {
		t.Fatalf("B's copy carries A's session or client address: %+v", st)
	}
	if len(b.reg.Sessions()) != 0 {
		t.Fatalf("B's Sessions lists A's stream: %+v", b.reg.Sessions())
	}
	if l := a.reg.List(); len(l) != 1 || l[0].Node != "" {
		t.Fatalf("A's List = %+v (its own stream, no remote copy)", l)
	}

	a.reg.Record(live.Event{Type: live.Unpublished, Path: "live/alice", Source: "sfu", Session: "secret-session"})
	if c := next(t, all); c.Live || c.Stream.Path != "live/alice" || c.Stream.Node != "node-a" {
		t.Fatalf("B got %+v, want live/alice offline", c)
	}
	if l := b.reg.List(); len(l) != 0 {
		t.Fatalf("B's List = %+v after the end", l)
	}
}

// TestStreamsNodeDies: a node that stops renewing its list (crash, no heartbeat) leaves the
// others' lists when the list expires.
func TestStreamsNodeDies(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, b := newStreamNode(t, srv, "node-a", 700*time.Millisecond), newStreamNode(t, srv, "node-b", time.Hour)
	a.reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "nginx-rtmp", Session: "1"})
	if err := a.streams.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.streams.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	if l := b.reg.List(); len(l) != 1 || l[0].Node != "node-a" {
		t.Fatalf("B's List = %+v", l)
	}
	// A beats no more: its record and list expire in Redis after its TTL.
	deadline := time.Now().Add(10 * time.Second)
	for len(b.reg.List()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("A's stream still on B's list: %+v", b.reg.List())
		}
		time.Sleep(100 * time.Millisecond)
		b.clock.add(100 * time.Millisecond)
		if err := b.streams.Pull(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamsRedisDown: with Redis away, B keeps what it read for one TTL, then shows only its
// own streams; when Redis is back, the next read shows A's again.
func TestStreamsRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Persistent())
	ctx := context.Background()
	a, b := newStreamNode(t, srv, "node-a", 10*time.Second), newStreamNode(t, srv, "node-b", 10*time.Second)
	a.reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "sfu", Session: "1"})
	b.reg.Record(live.Event{Type: live.Published, Path: "live/bob", Source: "sfu", Session: "2"})
	if err := a.streams.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.streams.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := b.streams.Pull(ctx); err == nil {
		t.Fatal("Pull with Redis down: no error")
	}
	if l := b.reg.List(); len(l) != 2 {
		t.Fatalf("within the TTL B lists %+v, want both", l)
	}
	b.clock.add(10 * time.Second)
	_ = b.streams.Pull(ctx)
	if l := b.reg.List(); len(l) != 1 || l[0].Path != "live/bob" {
		t.Fatalf("after the TTL B lists %+v, want only its own live/bob", l)
	}
}

// TestStreamsVisibility: the event stream of B filters A's streams per visitor exactly like its
// own (the visibility probe runs for each).
func TestStreamsVisibility(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newStreamNode(t, srv, "node-a", 10*time.Second), newStreamNode(t, srv, "node-b", 10*time.Second)
	ev := live.NewEvents(b.reg, func(*http.Request) live.Visible {
		return func(st live.Stream) bool { return strings.HasPrefix(st.Path, "public/") }
	})
	hs := httptest.NewServer(ev)
	defer hs.Close()
	defer ev.Close()
	a.run(t)
	b.run(t)
	res, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	a.reg.Record(live.Event{Type: live.Published, Path: "private/x", Source: "sfu", Session: "1"})
	a.reg.Record(live.Event{Type: live.Published, Path: "public/y", Source: "sfu", Session: "2"})
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("event stream ended")
			}
			if strings.Contains(l, "private/x") {
				t.Fatalf("B's event stream shows a stream its visitor may not read: %s", l)
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, `"public/y"`) {
				if !strings.Contains(l, `"node":"node-a"`) {
					t.Fatalf("no node in %s", l)
				}
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("public/y not announced on B within 10s")
		}
	}
}
