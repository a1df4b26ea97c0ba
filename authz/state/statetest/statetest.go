// Package statetest is the contract of the shared state the engine consumes: bans
// (authz.BanStore), failure counters (authz.Counter) and publish leases (authz.PathLeases, with
// the release and heartbeat that keep them). One suite runs against every implementation: the
// in-process one (authz.NewMemoryBans, authz.NewMemoryCounter; it has no leases) and package
// redisstate over miniredis and over a real redis-server. It is imported by tests only.
//
// Time is the suite's clock, passed to every call that takes one; the only real waiting is a
// lease's time to live in Redis (Target.Expire), kept short. Nothing asserts how long
// anything took.
package statetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
)

// Leases is a node's publish leases: authz.PathLeases and what keeps them (*redisstate.Fleet).
type Leases interface {
	authz.PathLeases
	// Release gives up path's lease if no local publisher of it is live.
	Release(ctx context.Context, path string)
	// Beat renews the leases of live local publishers and releases the others.
	Beat(ctx context.Context) error
}

// Node is one replica's view of the state.
type Node struct {
	Bans    authz.BanStore
	Counter authz.Counter
	// Leases is nil when the target has none (one process takes no lease).
	Leases Leases
	// Publishing sets the paths this node's local publishers are live on (nil with no Leases).
	Publishing func(paths ...string)
	// Sync pushes this node's changes and pulls the others' (nil: nothing to sync).
	Sync func(ctx context.Context) error
}

// NodeOptions says how to open a node.
type NodeOptions struct {
	ID       string        // the node's id in the fleet
	LeaseTTL time.Duration // how long a lease lives unrenewed
}

// Target is one implementation under test.
type Target struct {
	// Shared is false when there is only one instance (in-process): the cases across
	// instances are then skipped, as there is no second instance to share with.
	Shared bool
	// Open prepares one fresh backing store and returns the function that opens a node over
	// it, with the clock now. The target closes what it opened in t.Cleanup.
	Open func(t *testing.T, now func() time.Time) func(NodeOptions) Node
	// Expire lets d pass for the backing store's time-to-live (miniredis: FastForward; a real
	// server: a sleep of d). Nil without Leases.
	Expire func(t *testing.T, d time.Duration)
}

// Lease times to live: long where a lease must not lapse during a case, short where a case
// waits for one to lapse.
const (
	longTTL  = time.Minute
	shortTTL = 300 * time.Millisecond
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	t      *testing.T
	ctx    context.Context
	tg     Target
	clock  *clock
	open   func(NodeOptions) Node
	a      Node // the first node, long lease TTL
	opened int
}

// node opens another node over the same backing store.
func (f *fixture) node(ttl time.Duration) Node {
	f.opened++
	return f.open(NodeOptions{ID: "node-" + string(rune('a'+f.opened-1)), LeaseTTL: ttl})
}

func (f *fixture) sync(ns ...Node) {
	f.t.Helper()
	for _, n := range ns {
		if n.Sync != nil {
			if err := n.Sync(f.ctx); err != nil {
				f.t.Fatalf("Sync: %v", err)
			}
		}
	}
}

func (f *fixture) beat(ns ...Node) {
	f.t.Helper()
	for _, n := range ns {
		if err := n.Leases.Beat(f.ctx); err != nil {
			f.t.Fatalf("Beat: %v", err)
		}
	}
}

func (f *fixture) claim(n Node, path string, wantBusy bool) {
	f.t.Helper()
	err := n.Leases.Claim(f.ctx, path)
	switch {
	case wantBusy && !errors.Is(err, authz.ErrPathBusy):
		f.t.Fatalf("Claim(%s): got %v, want ErrPathBusy (another node holds it)", path, err)
	case !wantBusy && err != nil:
		f.t.Fatalf("Claim(%s): got %v, want the lease", path, err)
	}
}

type kind int

const (
	plain  kind = iota
	shared      // needs a second instance over the same data
	leases      // needs Leases
)

type testCase struct {
	name string
	kind kind
	run  func(f *fixture)
}

// Run runs every case of the contract as a subtest of t, each over a fresh backing store.
func Run(t *testing.T, tg Target) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.kind != plain && !tg.Shared {
				t.Skip("in-process: one instance only, nothing to share with and no leases (a single process takes none)")
			}
			cl := &clock{t: time.Now().UTC().Truncate(time.Millisecond)}
			f := &fixture{t: t, ctx: context.Background(), tg: tg, clock: cl, open: tg.Open(t, cl.now)}
			f.a = f.node(longTTL)
			if c.kind == leases && f.a.Leases == nil {
				t.Skip("the target has no publish leases")
			}
			c.run(f)
		})
	}
}

// Cases returns the names of the contract's cases.
func Cases() []string {
	var out []string
	for _, c := range cases {
		out = append(out, c.name)
	}
	return out
}

var (
	ipA  = authz.BanSubject{Kind: authz.BanIP, Value: "203.0.113.9/32"}
	ipB  = authz.BanSubject{Kind: authz.BanIP, Value: "2001:db8::/64"}
	user = authz.BanSubject{Kind: authz.BanUser, Value: "0123456789abcdef"}
	key  = authz.BanSubject{Kind: authz.BanKey, Value: "key_aaaaaaaaaa"}
)

func ban(s authz.BanSubject, until time.Time, reason string) authz.Ban {
	return authz.Ban{Subject: s, Until: until, Reason: reason}
}

func (f *fixture) put(n Node, b authz.Ban) {
	f.t.Helper()
	if err := n.Bans.Put(b, f.clock.now()); err != nil {
		f.t.Fatalf("Put(%+v): %v", b, err)
	}
}

func banned(f *fixture, n Node, s authz.BanSubject, want time.Time) {
	f.t.Helper()
	until, ok := n.Bans.Until(s, f.clock.now())
	switch {
	case want.IsZero() && ok:
		f.t.Fatalf("Until(%v) = %v, want not banned", s, until)
	case !want.IsZero() && (!ok || !until.Equal(want)):
		f.t.Fatalf("Until(%v) = %v, %v; want banned until %v", s, until, ok, want)
	}
}

func listed(f *fixture, n Node, at time.Time) []authz.BanSubject {
	var out []authz.BanSubject
	for _, b := range n.Bans.List(at) {
		out = append(out, b.Subject)
	}
	return out
}

// fails records distinct failures of s on n and returns the counts.
func fails(f *fixture, n Node, s authz.BanSubject, fp0 uint64, count int) []int {
	var out []int
	for i := range count {
		out = append(out, n.Counter.Fail(s, fp0+uint64(i), f.clock.now(), time.Minute))
	}
	return out
}

var cases = []testCase{
	// Bans.
	{"BanHoldsUntilItEnds", plain, func(f *fixture) {
		now := f.clock.now()
		f.put(f.a, ban(ipA, now.Add(2*time.Minute), "bruteforce"))
		f.put(f.a, ban(user, now.Add(time.Minute), "bruteforce"))
		banned(f, f.a, ipA, now.Add(2*time.Minute))
		banned(f, f.a, ipB, time.Time{})
		if got, want := listed(f, f.a, now), []authz.BanSubject{user, ipA}; !slices.Equal(got, want) {
			f.t.Fatalf("List = %v, want %v (soonest to end first)", got, want)
		}
		if got, want := listed(f, f.a, now.Add(90*time.Second)), []authz.BanSubject{ipA}; !slices.Equal(got, want) {
			f.t.Fatalf("List 90 s later = %v, want %v", got, want)
		}
		f.clock.add(2 * time.Minute)
		banned(f, f.a, ipA, time.Time{})
		if got := listed(f, f.a, f.clock.now()); len(got) != 0 {
			f.t.Fatalf("List after every ban ended = %v", got)
		}
	}},
	{"BanReplacesTheSubjectsBan", plain, func(f *fixture) {
		now := f.clock.now()
		f.put(f.a, ban(ipA, now.Add(time.Minute), "bruteforce"))
		f.put(f.a, ban(ipA, now.Add(5*time.Minute), "operator"))
		banned(f, f.a, ipA, now.Add(5*time.Minute))
		if got := f.a.Bans.List(now); len(got) != 1 || got[0].Reason != "operator" {
			f.t.Fatalf("List = %+v, want the one replacing ban", got)
		}
	}},
	{"LiftEndsABan", plain, func(f *fixture) {
		now := f.clock.now()
		f.put(f.a, ban(key, now.Add(time.Minute), "operator"))
		f.put(f.a, ban(ipB, now.Add(time.Second), "bruteforce"))
		if !f.a.Bans.Lift(key, now) {
			f.t.Fatal("Lift of a ban in force = false")
		}
		banned(f, f.a, key, time.Time{})
		if f.a.Bans.Lift(key, now) {
			f.t.Fatal("second Lift = true, want false (no ban)")
		}
		if f.a.Bans.Lift(ipB, now.Add(time.Second)) {
			f.t.Fatal("Lift of a ban that has ended = true, want false")
		}
	}},
	{"BanSeenByAnotherInstance", shared, func(f *fixture) {
		b := f.node(longTTL)
		until := f.clock.now().Add(time.Minute)
		f.put(f.a, ban(key, until, "operator"))
		f.sync(f.a, b)
		banned(f, b, key, until)
		if !b.Bans.Lift(key, f.clock.now()) {
			f.t.Fatal("Lift on the other instance = false")
		}
		f.sync(b, f.a)
		banned(f, f.a, key, time.Time{})
	}},
	{"BansOutliveAnInstance", shared, func(f *fixture) {
		until := f.clock.now().Add(time.Minute)
		f.put(f.a, ban(ipA, until, "bruteforce"))
		f.sync(f.a)
		late := f.node(longTTL) // a replica started (or restarted) afterwards
		f.sync(late)
		banned(f, late, ipA, until)
		if got := listed(f, late, f.clock.now()); !slices.Equal(got, []authz.BanSubject{ipA}) {
			f.t.Fatalf("List on the new instance = %v", got)
		}
	}},
	{"EndedBanIsNotRevived", shared, func(f *fixture) {
		b := f.node(longTTL)
		f.put(f.a, ban(ipA, f.clock.now().Add(time.Minute), "bruteforce"))
		f.sync(f.a)
		f.clock.add(time.Minute)
		f.sync(b, f.a)
		banned(f, b, ipA, time.Time{})
		banned(f, f.a, ipA, time.Time{})
	}},

	// Failure counters.
	{"DistinctFailuresCountEachOnce", plain, func(f *fixture) {
		// The counts rise by one per guess, so a threshold is crossed exactly once.
		if got, want := fails(f, f.a, ipA, 1, 6), []int{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
			f.t.Fatalf("counts = %v, want %v", got, want)
		}
		if got := fails(f, f.a, ipB, 1, 1); !slices.Equal(got, []int{1}) {
			f.t.Fatalf("another subject's first failure counts %v, want [1]", got)
		}
	}},
	{"RepeatedCredentialCountsOnce", plain, func(f *fixture) {
		now := f.clock.now()
		var got []int
		for _, fp := range []uint64{7, 7, 8, 7, 0, 0} {
			got = append(got, f.a.Counter.Fail(ipA, fp, now, time.Minute))
		}
		if want := []int{1, 1, 2, 2, 3, 4}; !slices.Equal(got, want) {
			f.t.Fatalf("counts = %v, want %v (a repeat counts once; no fingerprint always counts)", got, want)
		}
	}},
	{"WindowRestarts", plain, func(f *fixture) {
		fails(f, f.a, ipA, 1, 3)
		f.clock.add(time.Minute)
		if got := fails(f, f.a, ipA, 100, 1); !slices.Equal(got, []int{1}) {
			f.t.Fatalf("first failure of a new window counts %v, want [1]", got)
		}
	}},
	{"StrikesDoubleAndAreForgotten", plain, func(f *fixture) {
		now := f.clock.now()
		fails(f, f.a, ipA, 1, 3)
		if n := f.a.Counter.Strike(ipA, now, time.Hour); n != 1 {
			f.t.Fatalf("first strike = %d", n)
		}
		if got := fails(f, f.a, ipA, 10, 1); !slices.Equal(got, []int{1}) {
			f.t.Fatalf("failures after a strike count %v, want [1] (a strike clears them)", got)
		}
		f.a.Counter.Reset(ipA) // a success keeps the strikes
		if n := f.a.Counter.Strike(ipA, now.Add(time.Minute), time.Hour); n != 2 {
			f.t.Fatalf("second strike within the quiet time = %d, want 2", n)
		}
		if n := f.a.Counter.Strike(ipA, now.Add(time.Minute+time.Hour), time.Hour); n != 1 {
			f.t.Fatalf("strike after a quiet hour = %d, want 1", n)
		}
	}},
	{"ResetForgetsFailures", plain, func(f *fixture) {
		fails(f, f.a, ipA, 1, 4)
		f.a.Counter.Reset(ipA)
		if got := fails(f, f.a, ipA, 1, 1); !slices.Equal(got, []int{1}) {
			f.t.Fatalf("after Reset: %v, want [1]", got)
		}
	}},
	{"FailuresAddUpAcrossInstances", shared, func(f *fixture) {
		b := f.node(longTTL)
		fails(f, f.a, ipA, 1, 5)
		f.sync(f.a, b)
		fails(f, b, ipA, 100, 5)
		f.sync(f.a, b)
		// The fleet's eleventh failure, on b, counts all eleven.
		if got := fails(f, b, ipA, 200, 1); !slices.Equal(got, []int{11}) {
			f.t.Fatalf("the fleet's 11th failure counts %v on b, want [11]", got)
		}
	}},

	// Publish leases.
	{"OneHolderPerPath", leases, func(f *fixture) {
		b := f.node(longTTL)
		f.claim(f.a, "live/x", false)
		f.claim(b, "live/x", true)
		f.claim(f.a, "live/x", false) // the holder claims again (a reconnect)
		f.claim(b, "live/y", false)
		f.claim(f.a, "live/y", true)
	}},
	{"ConcurrentClaimsOneWinner", leases, func(f *fixture) {
		nodes := []Node{f.a, f.node(longTTL), f.node(longTTL), f.node(longTTL)}
		var wg sync.WaitGroup
		errs := make([]error, len(nodes))
		for i, n := range nodes {
			wg.Go(func() { errs[i] = n.Leases.Claim(f.ctx, "live/x") })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, authz.ErrPathBusy):
				f.t.Fatalf("Claim: %v", err)
			}
		}
		if won != 1 {
			f.t.Fatalf("%d nodes won the lease, want 1 (errors %v)", won, errs)
		}
	}},
	{"ReleaseFreesThePath", leases, func(f *fixture) {
		b := f.node(longTTL)
		f.claim(f.a, "live/x", false)
		f.a.Publishing("live/x")
		f.beat(f.a)
		f.a.Publishing()
		f.a.Leases.Release(f.ctx, "live/x")
		f.claim(b, "live/x", false)
	}},
	{"LivePublisherKeepsItsLease", leases, func(f *fixture) {
		b := f.node(longTTL)
		f.claim(f.a, "live/x", false)
		f.a.Publishing("live/x")
		f.beat(f.a)
		f.a.Leases.Release(f.ctx, "live/x") // the publisher is still live: nothing to release
		f.beat(f.a)
		f.claim(b, "live/x", true)
	}},
	{"StaleReleaseKeepsTheNewerClaim", leases, func(f *fixture) {
		b := f.node(longTTL)
		f.claim(f.a, "live/x", false)
		f.a.Publishing("live/x")
		f.beat(f.a)
		f.a.Publishing()              // the publisher ends ...
		f.claim(f.a, "live/x", false) // ... and its reconnect is admitted before the release runs
		f.a.Leases.Release(f.ctx, "live/x")
		f.claim(b, "live/x", true)
		f.a.Publishing("live/x")
		f.beat(f.a)
		f.claim(b, "live/x", true)
	}},
	{"DeadHoldersLeaseExpires", leases, func(f *fixture) {
		dead, b := f.node(shortTTL), f.node(longTTL)
		f.claim(dead, "live/x", false)
		f.tg.Expire(f.t, shortTTL) // dead stops renewing
		f.claim(b, "live/x", false)
		f.claim(f.a, "live/x", true)
	}},
	{"StaleReleaseByAnotherNodeKeepsTheNewerClaim", leases, func(f *fixture) {
		gone, b := f.node(shortTTL), f.node(longTTL)
		f.claim(gone, "live/x", false)
		gone.Publishing("live/x")
		f.beat(gone)
		f.tg.Expire(f.t, shortTTL) // cut off: its lease lapses and b takes the path
		f.claim(b, "live/x", false)
		gone.Publishing() // back, its publisher ended: it releases its (old) claim
		gone.Leases.Release(f.ctx, "live/x")
		f.beat(gone)
		f.claim(f.a, "live/x", true)
	}},
}
