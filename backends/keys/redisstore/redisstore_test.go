package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz"
	"gatehouse/authz/state"
	"gatehouse/authz/state/redisstate"
	"gatehouse/authz/state/redistest"
	"gatehouse/backends/keys"
)

func digest(secret string) keys.Digest { return sha256.Sum256([]byte(secret)) }

// node is one replica: its own client, store and engine, sharing the Redis of srv.
type node struct {
	rdb    redis.UniversalClient
	store  *Store
	engine *authz.Engine
	revs   chan keys.Revocation
}

func newNode(t *testing.T, srv *redistest.Server, run bool) *node {
	t.Helper()
	return newNodeRetry(t, srv, run, 50*time.Millisecond)
}

// newNodeRetry is newNode whose Health lets one probe through every retry while Redis is down.
func newNodeRetry(t *testing.T, srv *redistest.Server, run bool, retry time.Duration) *node {
	t.Helper()
	rdb, err := redisstate.Open(&state.RedisConfig{Addrs: []string{srv.Addr}, Timeout: 300 * 1e6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	n := &node{rdb: rdb, store: New(ctx, rdb, "test:", WithHealth(redisstate.NewHealth(retry, nil)),
		WithIntervals(100*time.Millisecond, time.Hour)), revs: make(chan keys.Revocation, 16)}
	b, err := keys.New(keys.Config{}, nil, keys.WithStore(n.store))
	if err != nil {
		t.Fatal(err)
	}
	n.engine = authz.NewEngine(authz.NewChain(authz.Method{Name: "keys", Backend: b}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if run {
		n.store.Subscribe(func(rv keys.Revocation) { n.revs <- rv })
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); n.store.Run(rctx, nil) }()
		t.Cleanup(func() { cancel(); wg.Wait(); n.store.Close() })
	}
	return n
}

func (n *node) publish(t *testing.T, secret string) authz.Decision {
	t.Helper()
	return n.engine.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/" + secret,
		Protocol: "rtmp", IP: netip.MustParseAddr("192.0.2.7"), CanRename: true})
}

// A key created on one replica is accepted on another; revoked on one, it is refused by the
// other at the very next request (no cache), and the other's subscribers hear of it.
func TestTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv, true), newNode(t, srv, true)
	ctx := context.Background()
	rec, secret, err := a.store.Create(ctx, keys.Spec{Label: "Alice's OBS", Path: "live/alice", Protocols: []string{"RTMP"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := b.publish(t, secret); !d.Allowed() || d.Rename != "live/alice" || d.KeyID != rec.ID {
		t.Fatalf("B: got %+v, want allowed as live/alice with key id %s", d, rec.ID)
	}
	if _, err := a.store.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if d := b.publish(t, secret); d.Allowed() || d.Reason != keys.ReasonKeyRevoked {
		t.Fatalf("B after revoke on A: got %+v, want denied key_revoked", d)
	}
	select {
	case rv := <-b.revs:
		if rv.KeyID != rec.ID || rv.Path != "live/alice" {
			t.Fatalf("B heard %+v, want the revocation of %s", rv, rec.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B never heard of the revocation")
	}
	got, err := b.store.Get(ctx, rec.ID)
	if err != nil || got.Status(time.Now()) != "revoked" || got.Label != rec.Label {
		t.Fatalf("B Get = %+v, %v", got, err)
	}
}

// Redis unreachable: a managed key is refused at once as undecided (key_store_unavailable),
// without waiting a timeout per request; Redis back: the same key works again without a
// restart, and a revocation written while this replica's subscription was down is delivered
// after it resubscribes (pub/sub lost the announcement).
func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t, redistest.Persistent())
	// B probes a dead Redis once per 3 s: long enough that its second lookup below, right after
	// the first failure, is never the probe, however slow the machine.
	a, b := newNode(t, srv, true), newNodeRetry(t, srv, true, 3*time.Second)
	ctx := context.Background()
	rec, secret, err := a.store.Create(ctx, keys.Spec{Path: "live/alice"})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := a.store.Create(ctx, keys.Spec{Path: "live/bob"})
	if err != nil {
		t.Fatal(err)
	}
	if d := b.publish(t, secret); !d.Allowed() {
		t.Fatalf("before: got %+v", d)
	}
	srv.Stop()
	d := b.publish(t, secret)
	if d.Allowed() || !d.Undecided || d.Reason != keys.ReasonStoreUnavailable {
		t.Fatalf("Redis down: got %+v, want undecided %s", d, keys.ReasonStoreUnavailable)
	}
	// Down is remembered: the next lookups fail at once with ErrUnavailable, no dial.
	if _, err := b.store.Lookup(ctx, digest(secret)); !errors.Is(err, redisstate.ErrUnavailable) {
		t.Fatalf("second lookup: got %v, want ErrUnavailable", err)
	}
	if b.store.Health().Err() == nil {
		t.Fatal("Health().Err() = nil while Redis is down")
	}
	srv.Restart()
	// Another client (the CLI, say) revokes while B may not yet have resubscribed.
	c := newNode(t, srv, false)
	if _, err := c.store.Revoke(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if d := b.publish(t, secret); d.Allowed() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B did not recover after Redis returned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case rv := <-b.revs:
		if rv.KeyID != other.ID {
			t.Fatalf("B heard %+v, want %s", rv, other.ID)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("B never heard of the revocation made while it was reconnecting")
	}
	if b.store.Health().Err() != nil {
		t.Fatalf("Health().Err() = %v after recovery", b.store.Health().Err())
	}
	_ = rec
}
