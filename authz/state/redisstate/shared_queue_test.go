package redisstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// TestSharedBansBoundedInRedis: the bans hash keeps at most maxBans brute-force bans (the
// soonest-ending are evicted first, operators' never) and loses expired bans at the next push,
// so the hash every replica re-reads does not grow with an attack.
func TestSharedBansBoundedInRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := client(t, srv)
	ctx := context.Background()
	now := time.Now()
	s := NewShared(rdb, "bound:", time.Hour, NewHealth(time.Millisecond, nil), 3, 0)
	op := authz.BanSubject{Kind: authz.BanKey, Value: "key_operator"}
	if err := s.Put(authz.Ban{Subject: op, Until: now.Add(time.Minute), Reason: operatorBan}, now); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s)
	for i := range 5 {
		b := authz.Ban{Subject: authz.BanSubject{Kind: authz.BanIP, Value: fmt.Sprintf("192.0.2.%d", i)}, Until: now.Add(time.Duration(i+2) * time.Minute), Reason: "bruteforce"}
		// Another replica's bans: this one's mirror holds at most 3, Redis must hold the bound too.
		o := NewShared(rdb, "bound:", time.Hour, NewHealth(time.Millisecond, nil), 3, 0)
		if err := o.Put(b, now); err != nil {
			t.Fatal(err)
		}
		mustSync(t, o)
	}
	fields, err := rdb.HKeys(ctx, "bound:{b}:bans").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(fields)
	if want := []string{"ip:192.0.2.2", "ip:192.0.2.3", "ip:192.0.2.4", "key:key_operator"}; !slices.Equal(fields, want) {
		t.Errorf("bans in Redis: got %v, want %v (3 brute-force, the latest-ending, and the operator's)", fields, want)
	}
	// Later, after every ban ended: the next push deletes them.
	s.now = func() time.Time { return now.Add(time.Hour) }
	if err := s.Put(authz.Ban{Subject: authz.BanSubject{Kind: authz.BanIP, Value: "203.0.113.1"}, Until: now.Add(2 * time.Hour), Reason: "bruteforce"}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s)
	if fields, _ = rdb.HKeys(ctx, "bound:{b}:bans").Result(); !slices.Equal(fields, []string{"ip:203.0.113.1"}) {
		t.Errorf("bans in Redis after they ended: got %v, want only the new one", fields)
	}
}
