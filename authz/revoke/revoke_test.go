package revoke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz/live"
)

// flaky is a Kicker that fails its first fails calls, then ends sessions, reporting each on done.
type flaky struct {
	mu    sync.Mutex
	fails int
	calls int
	done  chan live.Session
}

func (f *flaky) Kick(ctx context.Context, s live.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.fails {
		return errors.New("connection refused")
	}
	f.done <- s
	return nil
}

func run(t *testing.T, r *Revoker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
	}
	var zero T
	return zero
}

// TestRevokeKeyEndsItsSessionsWithRetry: revoking a key ends every session it admitted (and only
// those) through their server's Kicker; an unreachable server is retried with backoff, each
// attempt is logged without a secret, and the registry shows the kick's state.
func TestRevokeKeyEndsItsSessionsWithRetry(t *testing.T) {
	reg := live.NewRegistry()
	reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "srs", Session: "c1", KeyID: "key_a"})
	reg.Record(live.Event{Type: live.Joined, Path: "live/alice", Source: "mediamtx", Session: "u2", KeyID: "key_a"})
	reg.Record(live.Event{Type: live.Published, Path: "live/bob", Source: "srs", Session: "c3", KeyID: "key_b"})
	srs := &flaky{fails: 2, done: make(chan live.Session, 4)}
	mtx := &flaky{done: make(chan live.Session, 4)}
	var logs syncBuffer
	r := New(Config{Backoff: time.Millisecond}, map[string]Kicker{"srs": srs, "mediamtx": mtx},
		[]Lister{reg}, reg, slog.New(slog.NewTextHandler(&logs, nil)))
	run(t, r)

	if n := r.Revoke(Match{KeyID: "key_a"}, time.Time{}, "key revoked"); n != 2 {
		t.Fatalf("queued %d kicks, want 2", n)
	}
	got := map[string]bool{}
	got[wait(t, srs.done).ID] = true
	got[wait(t, mtx.done).ID] = true
	if !got["c1"] || !got["u2"] {
		t.Fatalf("kicked %v, want c1 and u2", got)
	}
	select {
	case s := <-srs.done:
		t.Fatalf("kicked %s, which another key admitted", s.ID)
	default:
	}
	if srs.calls != 3 {
		t.Errorf("srs attempts: got %d, want 3 (two failures, then success)", srs.calls)
	}
	// The state is noted after Kick returns: wait until the registry shows it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, _ := reg.Get("live/alice")
		if st.Kick == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry kick state: got %q, want done", st.Kick)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "will retry") || !strings.Contains(logs.String(), "session ended") {
		t.Errorf("log lacks the retry or the end:\n%s", logs.String())
	}
}

// TestRevokeGivesUpAndReports: a server that never answers is tried MaxAttempts times, then the
// failure is logged as an error and shown in the registry.
func TestRevokeGivesUpAndReports(t *testing.T) {
	reg := live.NewRegistry()
	reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "srs", Session: "c1", KeyID: "key_a"})
	down := &flaky{fails: 1 << 30, done: make(chan live.Session)}
	var logs syncBuffer
	r := New(Config{Backoff: time.Millisecond, MaxAttempts: 3}, map[string]Kicker{"srs": down}, []Lister{reg}, reg,
		slog.New(slog.NewTextHandler(&logs, nil)))
	run(t, r)
	r.Revoke(Match{KeyID: "key_a"}, time.Time{}, "key revoked")
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, _ := reg.Get("live/alice")
		if strings.HasPrefix(st.Kick, "failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry kick state: got %q, want failed", st.Kick)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "giving up") {
		t.Errorf("log lacks the failure:\n%s", logs.String())
	}
}

// TestKickWithoutKicker: a session whose server has no API is left to the server's re-check,
// said so in the registry; Kick never blocks, and the queue is bounded.
func TestKickWithoutKickerAndQueueBound(t *testing.T) {
	reg := live.NewRegistry()
	reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "nginx-rtmp", Session: "7@h", KeyID: "key_a"})
	r := New(Config{QueueSize: 1}, map[string]Kicker{"srs": &flaky{done: make(chan live.Session, 1)}}, []Lister{reg}, reg, nil)
	s, err := r.Find("", "7@h")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Kick(s, "test"); !errors.Is(err, ErrNoKicker) {
		t.Fatalf("got %v, want ErrNoKicker", err)
	}
	if st, _ := reg.Get("live/alice"); !strings.Contains(st.Kick, "re-check") {
		t.Errorf("kick state: got %q, want the server's re-check named", st.Kick)
	}
	// Run is not started: the queue fills.
	if err := r.Kick(live.Session{Source: "srs", ID: "a"}, "t"); err != nil {
		t.Fatal(err)
	}
	if err := r.Kick(live.Session{Source: "srs", ID: "b"}, "t"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull", err)
	}
	if _, err := r.Find("", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

// TestRevokeLater: a rotation's grace period: sessions are ended when it ends, not before.
func TestRevokeLater(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	reg := live.NewRegistry()
	reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "srs", Session: "c1", KeyID: "key_a"})
	k := &flaky{done: make(chan live.Session, 1)}
	r := New(Config{}, map[string]Kicker{"srs": k}, []Lister{reg}, reg, nil, WithClock(clock))
	if n := r.Revoke(Match{KeyID: "key_a"}, now.Add(time.Hour), "key rotated"); n != 0 {
		t.Fatalf("queued %d now, want 0 before the grace period ends", n)
	}
	r.step(context.Background())
	select {
	case <-k.done:
		t.Fatal("kicked before the grace period ended")
	default:
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	r.step(context.Background()) // starts the revocation
	r.step(context.Background()) // performs the kick
	if s := wait(t, k.done); s.ID != "c1" {
		t.Fatalf("kicked %q, want c1", s.ID)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeRechecker returns deny from Recheck (once per call) and expired from Expired.
type fakeRechecker struct {
	mu            sync.Mutex
	deny, expired []live.Session
	rechecks      int
}

func (f *fakeRechecker) Recheck(context.Context) []live.Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rechecks++
	out := f.deny
	f.deny = nil
	return out
}

func (f *fakeRechecker) Expired() []live.Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.expired
	f.expired = nil
	return out
}

// TestRecheckAllAndExpiry: after RecheckAll, the sessions a Rechecker's re-decision denies are
// ended through their server's Kicker, and so are sessions whose grant expired (no RecheckAll
// needed); without RecheckAll nothing is re-decided.
func TestRecheckAllAndExpiry(t *testing.T) {
	k := &flaky{done: make(chan live.Session, 4)}
	rc := &fakeRechecker{
		deny:    []live.Session{{Source: "srs", ID: "removed-user"}},
		expired: []live.Session{{Source: "srs", ID: "expired-grant"}},
	}
	r := New(Config{}, map[string]Kicker{"srs": k}, nil, nil, nil, WithRecheckers(rc))
	r.step(context.Background()) // the expiry sweep runs every step
	r.step(context.Background())
	if s := wait(t, k.done); s.ID != "expired-grant" {
		t.Fatalf("kicked %q, want expired-grant", s.ID)
	}
	if rc.rechecks != 0 {
		t.Fatalf("re-decided %d times without RecheckAll", rc.rechecks)
	}
	r.RecheckAll()
	r.step(context.Background()) // queues the kick
	r.step(context.Background()) // performs it
	if s := wait(t, k.done); s.ID != "removed-user" {
		t.Fatalf("kicked %q, want removed-user", s.ID)
	}
	r.step(context.Background())
	if rc.rechecks != 1 {
		t.Errorf("re-decided %d times, want 1 per RecheckAll", rc.rechecks)
	}
}

// TestUnsupportedKickNotRetried: a Kicker whose server cannot end this kind of session (an OME
// viewer) is asked once; the registry says so.
func TestUnsupportedKickNotRetried(t *testing.T) {
	reg := live.NewRegistry()
	reg.Record(live.Event{Type: live.Published, Path: "app/alice", Source: "ome", Session: "v1", KeyID: "key_a"})
	var calls int
	k := KickerFunc(func(context.Context, live.Session) error {
		calls++
		return fmt.Errorf("ome: kick: %w", ErrUnsupported)
	})
	r := New(Config{Backoff: time.Nanosecond}, map[string]Kicker{"ome": k}, []Lister{reg}, reg, nil)
	if n := r.Revoke(Match{KeyID: "key_a"}, time.Time{}, "key revoked"); n != 1 {
		t.Fatalf("queued %d kicks, want 1", n)
	}
	for i := 0; i < 3; i++ {
		r.step(context.Background())
	}
	if calls != 1 {
		t.Errorf("kick attempts: got %d, want 1", calls)
	}
	if st, _ := reg.Get("app/alice"); !strings.HasPrefix(st.Kick, "not possible") {
		t.Errorf("registry kick state: got %q, want not possible", st.Kick)
	}
}
