package redisstate

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/authz/state"
	"gatehouse/authz/state/redistest"
)

// a publisher re-admitted on A while A's previous publisher of the same path has just
// ended loses its lease to A's own release (Release/Beat see "no live publisher" because the new
// one is not in the registry yet), and no heartbeat ever re-claims it: B is then allowed to
// publish the same path while A's publisher is live.
func TestFleetLeaseSurvivesOwnReleaseRace(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, b := newFleetNode(t, srv, "node-a", time.Minute), newFleetNode(t, srv, "node-b", time.Minute)

	if d := a.publish("live/x"); !d.Allowed() {
		t.Fatal(d)
	}
	a.local.set("live/x")
	beat(t, a) // lease seen
	// P1 ends (registry offline) ...
	a.local.set()
	// ... and before A's Run handles that offline Change (or before the next Beat), P1's
	// reconnect P1' is admitted on A (WHIP: engine decided, SDP still being negotiated, not yet
	// recorded as Published in the registry).
	if d := a.publish("live/x"); !d.Allowed() {
		t.Fatalf("P1' on A: %+v", d)
	}
	// A's Run now processes P1's offline change (or a Beat runs).
	a.fleet.Release(ctx, "live/x")
	// P1' is now live on A.
	a.local.set("live/x")
	beat(t, a)
	beat(t, a)
	if got := a.fleet.Leases(); len(got) != 0 {
		t.Logf("A's leases: %v", got)
	} else {
		t.Logf("A has a live publisher of live/x but holds no lease, and heartbeats never re-claim it")
	}
	if d := b.publish("live/x"); d.Allowed() {
		t.Fatalf("B allowed to publish live/x while A's publisher P1' is live (two publishers across the fleet)")
	}
}

// Same root cause without any race: a live local publisher whose path is not in f.leases (here:
// lost to another node during a partition, which then ended) is never re-claimed by Beat,
// contrary to "the next heartbeat re-asserts the leases of the sessions still live".
func TestFleetBeatClaimsLivePublisherWithoutLease(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := newFleetNode(t, srv, "node-a", time.Minute), newFleetNode(t, srv, "node-b", time.Minute), newFleetNode(t, srv, "node-c", time.Minute)
	if d := a.publish("live/x"); !d.Allowed() {
		t.Fatal(d)
	}
	a.local.set("live/x")
	beat(t, a)
	// Partition: A's lease expires in Redis and B takes the path.
	if err := client(t, srv).Del(context.Background(), "test:{n}:lease:live/x").Err(); err != nil {
		t.Fatal(err)
	}
	if d := b.publish("live/x"); !d.Allowed() {
		t.Fatal(d)
	}
	b.local.set("live/x")
	beat(t, a, b) // A learns B holds it and forgets its lease
	// B's publisher ends; A's still runs.
	b.local.set()
	b.fleet.Release(context.Background(), "live/x")
	beat(t, a, a)
	if d := c.publish("live/x"); d.Allowed() {
		t.Fatalf("C allowed to publish live/x while A's publisher is live; A's leases: %v", a.fleet.Leases())
	}
}

// TestFleetCheckUnique: a second process with a live node's id is refused (ErrNodeIDInUse); the
// process itself, a new id, and the id after a clean stop are not.
func TestFleetCheckUnique(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	node := func(id string) *Fleet {
		return NewFleet(ctx, client(t, srv), "test:", state.Node{ID: id, URL: "http://" + id + ".internal:8089", Version: "test"},
			&sessions{}, NewHealth(time.Millisecond, nil), WithTiming(50*time.Millisecond, time.Second))
	}
	a := node("node-a")
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckUnique(ctx); err != nil {
		t.Errorf("the node itself: %v", err)
	}
	if err := node("node-b").CheckUnique(ctx); err != nil {
		t.Errorf("another id: %v", err)
	}
	// node-a is alive: it renews its record every heartbeat.
	live, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for live.Err() == nil {
			_ = a.Beat(live)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := node("node-a").CheckUnique(ctx); !errors.Is(err, ErrNodeIDInUse) {
		t.Errorf("a second process with node-a while it runs: got %v, want ErrNodeIDInUse", err)
	}
	// node-a crashes: its record stays until its TTL, but nobody renews it. A restart goes ahead.
	stop()
	<-done
	if err := node("node-a").CheckUnique(ctx); err != nil {
		t.Errorf("a restart after node-a crashed (record not renewed): %v", err)
	}
	a.leave(ctx)
	if err := node("node-a").CheckUnique(ctx); err != nil {
		t.Errorf("after node-a stopped cleanly: %v", err)
	}
}
