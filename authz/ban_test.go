package authz

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestBan: a ban refuses what a method allows for the banned key or identity until it ends, for
// any adapter, as a real denial (a running session re-checked ends: Keep is false); it survives
// a chain swap (a reload) and others are unaffected.
func TestBan(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	byKey := Allowing("alice", time.Time{})
	byKey.KeyID = "key_a"
	e := NewEngine(NewChain(Method{Name: "keys", Backend: fixed(byKey, nil)}), nil, WithClock(func() time.Time { return now }))
	ask := func() Decision {
		return e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/alice", Source: "srs"})
	}
	if d := ask(); !d.Allowed() {
		t.Fatalf("before the ban: got %+v, want allowed", d)
	}
	if err := e.Ban("key_a", "", now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	d := ask()
	if d.Allowed() || d.Keep() || d.Reason != ReasonBanned || d.KeyID != "key_a" {
		t.Fatalf("banned key: got %+v, want a real denial (banned) that names the key", d)
	}
	e.Swap(NewChain(Method{Name: "keys", Backend: fixed(byKey, nil)})) // a reload
	if d := ask(); d.Reason != ReasonBanned {
		t.Fatalf("after a reload: got %+v, want still banned", d)
	}
	now = now.Add(10 * time.Minute)
	if d := ask(); !d.Allowed() {
		t.Fatalf("after the ban: got %+v, want allowed", d)
	}

	// By identity: a password grant for the same person is refused too.
	pw := Allowing("bob", time.Time{})
	e2 := NewEngine(NewChain(Method{Name: "users", Backend: fixed(pw, nil)}), nil, WithClock(func() time.Time { return now }))
	if err := e2.Ban("", "bob", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d := e2.Authorize(context.Background(), &Request{Action: ActionRead, Path: "live/x"}); d.Reason != ReasonBanned {
		t.Fatalf("banned identity: got %+v, want banned", d)
	}
}

// TestBanBounded: at most MaxBans unexpired bans; expired ones make room.
func TestBanBounded(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	e := NewEngine(NewChain(), nil, WithClock(func() time.Time { return now }))
	for i := range MaxBans {
		if err := e.Ban(fmt.Sprint("k", i), "", now.Add(time.Minute)); err != nil {
			t.Fatalf("ban %d: %v", i, err)
		}
	}
	if err := e.Ban("one-more", "", now.Add(time.Minute)); !errors.Is(err, ErrTooManyBans) {
		t.Fatalf("got %v, want ErrTooManyBans", err)
	}
	now = now.Add(time.Minute)
	if err := e.Ban("one-more", "", now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: got %v, want room", err)
	}
}

// TestOperatorBanAdvancesGeneration: a kick's ban changes what is granted, so grants cached by
// generation (forward-auth cookies, local /manage sessions) are asked for again; a banned HLS
// viewer kept watching on its cookie before. Brute-force bans do not advance it.
func TestOperatorBanAdvancesGeneration(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	e := NewEngine(NewChain(), nil, WithClock(func() time.Time { return now }))
	g := e.Generation()
	if err := e.Ban("key_a", "", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if e.Generation() == g {
		t.Error("an operator ban left the generation as it was")
	}
}

// TestExpiredBansLeaveTheStore: a ban that has run out is dropped when it is met, so the store
// reads as empty again and the engine skips its per-request ban checks (only Put and List
// removed expired bans before, so one brute-force ban cost every later request the checks).
func TestExpiredBansLeaveTheStore(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	b := NewMemoryBans(0).(*memoryBans)
	s := BanSubject{BanIP, "192.0.2.1/32"}
	if err := b.Put(Ban{Subject: s, Until: now.Add(time.Minute), Reason: "bruteforce"}, now); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Until(s, now); !ok || b.empty() {
		t.Fatal("a fresh ban is not held")
	}
	if _, ok := b.Until(s, now.Add(2*time.Minute)); ok {
		t.Fatal("an expired ban still refuses")
	}
	if !b.empty() {
		t.Error("the store is not empty once its only ban expired")
	}
}
