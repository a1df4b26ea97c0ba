package redisstate

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/state/redistest"
)

// TestSharedOperatorBanQueuedWhenQueueFull: while Shared's queue is full (max subjects; e.g. bans
// made while Redis was away), an operator's ban and lift are still queued and pushed (a ban was
// once applied locally but not queued, and the next pull lifted it: the operator was told it
// worked), and a brute-force ban is refused with ErrTooManyBans rather than silently undone.
func TestSharedOperatorBanQueuedWhenQueueFull(t *testing.T) {
	srv := redistest.Start(t)
	now := time.Now()
	s := NewShared(client(t, srv), "test:", time.Hour, NewHealth(time.Millisecond, nil), 0, 2)
	for i := range 2 {
		if err := s.Put(authz.Ban{Subject: authz.BanSubject{Kind: authz.BanIP, Value: fmt.Sprintf("192.0.2.%d", i)}, Until: now.Add(time.Hour), Reason: "bruteforce"}, now); err != nil {
			t.Fatal(err)
		}
	}
	op := authz.BanSubject{Kind: authz.BanKey, Value: "key_aaaaaaaaaa"}
	if err := s.Put(authz.Ban{Subject: op, Until: now.Add(time.Hour), Reason: operatorBan}, now); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Until(op, now); !ok {
		t.Fatal("not banned locally at once")
	}
	bf := authz.Ban{Subject: authz.BanSubject{Kind: authz.BanIP, Value: "192.0.2.9"}, Until: now.Add(time.Hour), Reason: "bruteforce"}
	if err := s.Put(bf, now); !errors.Is(err, authz.ErrTooManyBans) {
		t.Errorf("brute-force ban beyond the queue: got %v, want ErrTooManyBans", err)
	}
	mustSync(t, s)
	if _, ok := s.Until(op, time.Now()); !ok {
		t.Fatal("the operator's ban, accepted by Put, was lifted by the next sync (queue full, not pushed)")
	}
	other := NewShared(client(t, srv), "test:", time.Hour, NewHealth(time.Millisecond, nil), 0, 2)
	mustSync(t, other)
	if _, ok := other.Until(op, time.Now()); !ok {
		t.Fatal("the operator's ban did not reach another replica")
	}
	// Fill the queue again, then lift: the lift reaches the other replica.
	for i := range 2 {
		_ = s.Put(authz.Ban{Subject: authz.BanSubject{Kind: authz.BanIP, Value: fmt.Sprintf("198.51.100.%d", i)}, Until: now.Add(time.Hour), Reason: "bruteforce"}, now)
	}
	if !s.Lift(op, time.Now()) {
		t.Fatal("lift: no ban in force")
	}
	mustSync(t, s)
	mustSync(t, other)
	if _, ok := other.Until(op, time.Now()); ok {
		t.Error("the operator's lift, made with the queue full, did not reach another replica")
	}
}
