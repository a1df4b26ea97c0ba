// Package storetest is the contract every managed stream key store meets: one suite, run by
// each store's tests (package sqlitestore in process; package redisstore against miniredis and
// a real redis-server), so the stores cannot drift apart. It is imported by tests only.
//
// The suite drives the stores through the methods the rest of gatehouse calls (keys.Store,
// keys.Admin, and Flush, Poll and Subscribe, which Run calls on a timer) with an injected
// clock, so nothing in it sleeps and nothing depends on timing.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/backends/keys"
)

// Store is the part of a key store the contract covers. *sqlitestore.Store and
// *redisstore.Store implement it.
type Store interface {
	keys.Store
	keys.Admin
	// Flush writes the last-use records collected by Touch (Run calls it every flush interval).
	Flush(ctx context.Context) error
	// Poll delivers the revocations committed since the last Poll to the subscribers (Run
	// calls it on a timer or an announcement).
	Poll(ctx context.Context) error
	// Subscribe registers fn for every revocation committed after the store was opened.
	Subscribe(fn func(keys.Revocation)) (cancel func())
}

// Open prepares one fresh, empty backing store (a new SQLite file, a new key prefix in Redis)
// and returns the function that opens an instance over it: every call returns another
// instance (another handle on the file, another Redis client) reading the clock now. The
// target closes what it opened in t.Cleanup.
type Open func(t *testing.T, now func() time.Time) func() Store

// Clock is the suite's fake clock, on whole milliseconds (stores keep milliseconds).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fixture is one case's backing store, clock and first instance.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	open  func() Store
	s     Store
}

func newFixture(t *testing.T, open Open) *fixture {
	c := &Clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	o := open(t, c.Now)
	return &fixture{t: t, ctx: context.Background(), clock: c, open: o, s: o()}
}

func (f *fixture) create(s Store, spec keys.Spec) (keys.Record, string) {
	f.t.Helper()
	rec, secret, err := s.Create(f.ctx, spec)
	if err != nil {
		f.t.Fatalf("Create(%+v): %v", spec, err)
	}
	return rec, secret
}

func (f *fixture) lookup(s Store, secret string) (keys.Record, error) {
	f.t.Helper()
	d, err := keys.ParseSecret(secret)
	if err != nil {
		f.t.Fatalf("the secret a store returned does not parse: %v", err)
	}
	return s.Lookup(f.ctx, d)
}

func (f *fixture) mustLookup(s Store, secret string) keys.Record {
	f.t.Helper()
	rec, err := f.lookup(s, secret)
	if err != nil {
		f.t.Fatalf("Lookup: %v", err)
	}
	return rec
}

// publish asks a keys backend over s, with the suite's clock, to admit a publish of the key
// given as the stream name under live/.
func (f *fixture) publish(s Store, secret, protocol string) authz.Decision {
	f.t.Helper()
	b, err := keys.New(keys.Config{}, f.clock.Now, keys.WithStore(s))
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := b.Authorize(f.ctx, &authz.Request{Action: authz.ActionPublish, Path: "live/" + secret, Protocol: protocol,
		IP: netip.MustParseAddr("192.0.2.7"), CanRename: true})
	if err != nil {
		f.t.Fatalf("Authorize: %v", err)
	}
	return d
}

// testCase is one case of the contract.
type testCase struct {
	Name string
	Run  func(f *fixture)
}

// Cases returns the contract's cases by name (for the report of how many run per target).
func Cases() []string {
	var out []string
	for _, c := range cases {
		out = append(out, c.Name)
	}
	return out
}

// Run runs every case of the contract as a subtest of t, each over a fresh backing store from
// open.
func Run(t *testing.T, open Open) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { c.Run(newFixture(t, open)) })
	}
}

var cases = []testCase{
	{"CreateThenLookupBySecret", func(f *fixture) {
		exp := f.clock.Now().Add(24 * time.Hour)
		rec, secret := f.create(f.s, keys.Spec{Label: "Alice's OBS", Owner: "alice", Path: "live/alice",
			Actions: []authz.Action{authz.ActionPublish, authz.ActionRead, authz.ActionPublish}, Protocols: []string{"RTMP", " srt", "rtmp"}, Expires: exp})
		if !keys.IsManagedForm(secret) || strings.Contains(rec.ID, secret) || strings.Contains(rec.Label, secret) {
			f.t.Fatalf("Create returned id %q and a secret that is not a managed key", rec.ID)
		}
		want := keys.Record{ID: rec.ID, Spec: keys.Spec{Label: "Alice's OBS", Owner: "alice", Path: "live/alice",
			Actions: []authz.Action{authz.ActionPublish, authz.ActionRead}, Protocols: []string{"rtmp", "srt"}, Expires: exp},
			Created: f.clock.Now()}
		sameRecord(f.t, "Create", rec, want)
		sameRecord(f.t, "Lookup", f.mustLookup(f.s, secret), want)
		got, err := f.s.Get(f.ctx, rec.ID)
		if err != nil {
			f.t.Fatalf("Get: %v", err)
		}
		sameRecord(f.t, "Get", got, want)
		if d := f.publish(f.s, secret, "rtmp"); !d.Allowed() || d.Rename != "live/alice" || d.KeyID != rec.ID || d.Identity != "alice" {
			f.t.Fatalf("publish with the key: got %+v, want allowed as alice, renamed to live/alice", d)
		}
	}},
	{"DefaultsAndScope", func(f *fixture) {
		rec, secret := f.create(f.s, keys.Spec{Path: "live/bob", Protocols: []string{"srt"}})
		if !slices.Equal(rec.Actions, []authz.Action{authz.ActionPublish}) || rec.Identity() != "live/bob" || !rec.Expires.IsZero() {
			f.t.Fatalf("defaults: got %+v, want actions [publish], identity the path, no expiry", rec)
		}
		if d := f.publish(f.s, secret, "rtmp"); d.Allowed() || d.Reason != keys.ReasonWrongProtocol {
			f.t.Fatalf("publish over rtmp with an srt key: got %+v, want %s", d, keys.ReasonWrongProtocol)
		}
		if d := f.publish(f.s, secret, "SRT"); !d.Allowed() || d.Rename != "live/bob" {
			f.t.Fatalf("publish over srt: got %+v, want allowed, renamed to live/bob", d)
		}
	}},
	{"UnknownSecretIsNotFound", func(f *fixture) {
		f.create(f.s, keys.Spec{Path: "live/a"})
		_, d, err := keys.NewSecret()
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.s.Lookup(f.ctx, d); !errors.Is(err, keys.ErrNotFound) {
			f.t.Fatalf("Lookup of an unknown digest: got %v, want ErrNotFound", err)
		}
	}},
	{"ListOldestFirst", func(f *fixture) {
		if list, err := f.s.List(f.ctx); err != nil || len(list) != 0 {
			f.t.Fatalf("List of an empty store = %+v, %v", list, err)
		}
		var want []string
		for i := range 3 {
			rec, _ := f.create(f.s, keys.Spec{Label: fmt.Sprint("k", i), Path: "live/a"})
			want = append(want, rec.ID)
			f.clock.Add(time.Second)
		}
		list, err := f.s.List(f.ctx)
		if err != nil {
			f.t.Fatal(err)
		}
		if got := ids(list); !slices.Equal(got, want) {
			f.t.Fatalf("List ids = %v, want %v (oldest first)", got, want)
		}
		for i, r := range list {
			if r.Label != fmt.Sprint("k", i) || r.Path != "live/a" {
				f.t.Errorf("List[%d] = %+v", i, r)
			}
		}
	}},
	{"RevokedIsNeverAllowedAgain", func(f *fixture) {
		var revs revocations
		defer f.s.Subscribe(revs.add)()
		rec, secret := f.create(f.s, keys.Spec{Label: "l", Owner: "o", Path: "live/a"})
		f.clock.Add(time.Minute)
		got, err := f.s.Revoke(f.ctx, rec.ID)
		if err != nil || !got.Revoked.Equal(f.clock.Now()) {
			f.t.Fatalf("Revoke = %+v, %v; want revoked now", got, err)
		}
		if d := f.publish(f.s, secret, "rtmp"); d.Allowed() || d.Reason != keys.ReasonKeyRevoked {
			f.t.Fatalf("publish with a revoked key: got %+v, want %s", d, keys.ReasonKeyRevoked)
		}
		f.clock.Add(time.Hour)
		again, err := f.s.Revoke(f.ctx, rec.ID) // changes nothing
		if err != nil || !again.Revoked.Equal(got.Revoked) {
			f.t.Fatalf("second Revoke = %+v, %v; want unchanged, revoked at %v", again, err, got.Revoked)
		}
		if _, _, _, err := f.s.Rotate(f.ctx, rec.ID, time.Hour); !errors.Is(err, keys.ErrRevoked) {
			f.t.Fatalf("Rotate a revoked key: got %v, want ErrRevoked", err)
		}
		if r := f.mustLookup(f.s, secret); !r.RevokedAt(f.clock.Now()) {
			f.t.Fatalf("Lookup after the refused rotation: %+v, want still revoked", r)
		}
		if d := f.publish(f.s, secret, "rtmp"); d.Allowed() {
			f.t.Fatalf("publish with a revoked key an hour later: got %+v", d)
		}
		if err := f.s.Poll(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		want := []keys.Revocation{{KeyID: rec.ID, Label: "l", Owner: "o", Path: "live/a", At: got.Revoked}}
		if r := revs.get(); !slices.Equal(r, want) {
			f.t.Fatalf("revocations heard = %+v, want %+v (once)", r, want)
		}
	}},
	{"RotateKeepsSpecAndGrace", func(f *fixture) {
		var revs revocations
		defer f.s.Subscribe(revs.add)()
		exp := f.clock.Now().Add(48 * time.Hour)
		old, oldSecret := f.create(f.s, keys.Spec{Label: "l", Owner: "o", Path: "live/a",
			Actions: []authz.Action{authz.ActionPublish, authz.ActionRead}, Protocols: []string{"rtmp"}, Expires: exp})
		f.clock.Add(time.Minute)
		grace := 10 * time.Minute
		next, secret, prev, err := f.s.Rotate(f.ctx, old.ID, grace)
		if err != nil {
			f.t.Fatal(err)
		}
		if next.ID == old.ID || secret == oldSecret || !keys.IsManagedForm(secret) {
			f.t.Fatalf("Rotate gave id %s (old %s) and a secret that is not new", next.ID, old.ID)
		}
		sameRecord(f.t, "Rotate new", next, keys.Record{ID: next.ID, Spec: old.Spec, Created: f.clock.Now()})
		if prev.ID != old.ID || !prev.Revoked.Equal(f.clock.Now().Add(grace)) {
			f.t.Fatalf("Rotate old = %+v, want %s revoked at the end of the grace period", prev, old.ID)
		}
		sameRecord(f.t, "Lookup new", f.mustLookup(f.s, secret), next)
		if d := f.publish(f.s, oldSecret, "rtmp"); !d.Allowed() || !d.Expires.Equal(prev.Revoked) {
			f.t.Fatalf("old key within its grace period: got %+v, want allowed until %v", d, prev.Revoked)
		}
		if _, _, _, err := f.s.Rotate(f.ctx, old.ID, 0); !errors.Is(err, keys.ErrRevoked) {
			f.t.Fatalf("rotating the old key again: got %v, want ErrRevoked (one successor per key)", err)
		}
		f.clock.Add(grace)
		if d := f.publish(f.s, oldSecret, "rtmp"); d.Allowed() || d.Reason != keys.ReasonKeyRevoked {
			f.t.Fatalf("old key after its grace period: got %+v, want %s", d, keys.ReasonKeyRevoked)
		}
		if d := f.publish(f.s, secret, "rtmp"); !d.Allowed() || d.KeyID != next.ID {
			f.t.Fatalf("new key: got %+v", d)
		}
		if err := f.s.Poll(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		want := []keys.Revocation{{KeyID: old.ID, Label: "l", Owner: "o", Path: "live/a", At: prev.Revoked}}
		if r := revs.get(); !slices.Equal(r, want) {
			f.t.Fatalf("revocations heard = %+v, want %+v", r, want)
		}
		// Revoking during a grace period cuts it short.
		if _, _, p2, err := f.s.Rotate(f.ctx, next.ID, time.Hour); err != nil || !p2.Revoked.After(f.clock.Now()) {
			f.t.Fatalf("Rotate = %+v, %v", p2, err)
		}
		cut, err := f.s.Revoke(f.ctx, next.ID)
		if err != nil || !cut.Revoked.Equal(f.clock.Now()) {
			f.t.Fatalf("Revoke in the grace period = %+v, %v; want revoked now", cut, err)
		}
		if d := f.publish(f.s, secret, "rtmp"); d.Allowed() {
			f.t.Fatalf("key revoked during its grace period: got %+v", d)
		}
		// Cutting the grace short is announced again, at now: that announcement is what ends
		// the running sessions of the key before the end its first announcement gave.
		if err := f.s.Poll(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		r := revs.get()
		if len(r) < 3 || r[len(r)-1].KeyID != next.ID || !r[len(r)-1].At.Equal(f.clock.Now()) {
			f.t.Fatalf("revocations heard = %+v, want the last one for %s at %v (the grace cut short)", r, next.ID, f.clock.Now())
		}
	}},
	{"RotateWithoutGraceRevokesAtOnce", func(f *fixture) {
		old, oldSecret := f.create(f.s, keys.Spec{Path: "live/a"})
		_, _, prev, err := f.s.Rotate(f.ctx, old.ID, 0)
		if err != nil || !prev.Revoked.Equal(f.clock.Now()) {
			f.t.Fatalf("Rotate(0) old = %+v, %v; want revoked now", prev, err)
		}
		if d := f.publish(f.s, oldSecret, "rtmp"); d.Allowed() {
			f.t.Fatalf("old key after a rotation without grace: got %+v", d)
		}
	}},
	{"Expiry", func(f *fixture) {
		exp := f.clock.Now().Add(time.Hour)
		rec, secret := f.create(f.s, keys.Spec{Path: "live/a", Expires: exp})
		if d := f.publish(f.s, secret, "rtmp"); !d.Allowed() || !d.Expires.Equal(exp) {
			f.t.Fatalf("before expiry: got %+v, want allowed until %v", d, exp)
		}
		f.clock.Add(time.Hour)
		if d := f.publish(f.s, secret, "rtmp"); d.Allowed() || d.Reason != keys.ReasonKeyExpired {
			f.t.Fatalf("at expiry: got %+v, want %s", d, keys.ReasonKeyExpired)
		}
		if r := f.mustLookup(f.s, secret); r.Status(f.clock.Now()) != "expired" {
			f.t.Fatalf("status = %s, want expired", r.Status(f.clock.Now()))
		}
		if _, _, _, err := f.s.Rotate(f.ctx, rec.ID, 0); !errors.Is(err, keys.ErrExpired) {
			f.t.Fatalf("Rotate an expired key: got %v, want ErrExpired", err)
		}
		if list, _ := f.s.List(f.ctx); len(list) != 1 {
			f.t.Fatalf("the refused rotation wrote a key: List = %+v", list)
		}
	}},
	{"LastUseIsBatchedAndNeverGoesBack", func(f *fixture) {
		rec, secret := f.create(f.s, keys.Spec{Path: "live/a"})
		t1 := f.clock.Now().Add(time.Minute)
		f.s.Touch(rec.ID, t1, netip.MustParseAddr("203.0.113.7"))
		f.s.Touch(rec.ID, t1.Add(-time.Second), netip.MustParseAddr("198.51.100.1")) // older: ignored
		f.s.Touch("key_aaaaaaaaaa", t1, netip.Addr{})                                // no such key: harmless
		if err := f.s.Flush(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		lastUse(f, f.s, rec.ID, t1, "203.0.113.7")
		// A later flush of an older use (another instance's, or a late batch) keeps the newer.
		f.s.Touch(rec.ID, t1.Add(-time.Hour), netip.MustParseAddr("198.51.100.2"))
		if err := f.s.Flush(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		lastUse(f, f.s, rec.ID, t1, "203.0.113.7")
		// Allowing the key touches it.
		f.clock.Add(2 * time.Minute)
		if d := f.publish(f.s, secret, "rtmp"); !d.Allowed() {
			f.t.Fatal(d)
		}
		if err := f.s.Flush(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		lastUse(f, f.s, rec.ID, f.clock.Now(), "192.0.2.7")
		if list, _ := f.s.List(f.ctx); len(list) != 1 {
			f.t.Fatalf("a touch of an unknown id made a key: List = %+v", list)
		}
	}},
	{"UnsubscribedHearsNothing", func(f *fixture) {
		var revs revocations
		cancel := f.s.Subscribe(revs.add)
		rec, _ := f.create(f.s, keys.Spec{Path: "live/a"})
		cancel()
		if _, err := f.s.Revoke(f.ctx, rec.ID); err != nil {
			f.t.Fatal(err)
		}
		if err := f.s.Poll(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		if r := revs.get(); len(r) != 0 {
			f.t.Fatalf("a cancelled subscriber heard %+v", r)
		}
	}},
	{"BadInput", func(f *fixture) {
		for _, spec := range []keys.Spec{
			{Path: ""}, {Path: "/live/a"}, {Path: "live/*"}, {Path: "live/../x"},
			{Path: "live/a", Label: strings.Repeat("x", keys.MaxLabelLen+1)}, {Path: "live/a", Label: "bad\xffutf8"},
			{Path: "live/a", Owner: "a\nb"}, {Path: "live/a", Actions: []authz.Action{authz.ActionAPI}},
			{Path: "live/a", Protocols: []string{"rt mp"}},
		} {
			if _, _, err := f.s.Create(f.ctx, spec); !errors.Is(err, keys.ErrInvalid) {
				f.t.Errorf("Create(%+q) = %v, want ErrInvalid", spec, err)
			}
		}
		rec, _ := f.create(f.s, keys.Spec{Path: "live/a"})
		if _, _, _, err := f.s.Rotate(f.ctx, rec.ID, -time.Second); !errors.Is(err, keys.ErrInvalid) {
			f.t.Errorf("Rotate with a negative grace: got %v, want ErrInvalid", err)
		}
		for _, id := range []string{"", "key_", "nope", "key_aaaaaaaaaa", "key_AAAAAAAAAA", "key_\xff\xfe", "config:1", strings.Repeat("k", 5000)} {
			if _, err := f.s.Get(f.ctx, id); !errors.Is(err, keys.ErrNotFound) {
				f.t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
			}
			if _, err := f.s.Revoke(f.ctx, id); !errors.Is(err, keys.ErrNotFound) {
				f.t.Errorf("Revoke(%q) = %v, want ErrNotFound", id, err)
			}
			if _, _, _, err := f.s.Rotate(f.ctx, id, 0); !errors.Is(err, keys.ErrNotFound) {
				f.t.Errorf("Rotate(%q) = %v, want ErrNotFound", id, err)
			}
		}
		if list, err := f.s.List(f.ctx); err != nil || !slices.Equal(ids(list), []string{rec.ID}) {
			f.t.Fatalf("List after refused input = %v, %v; want only %s", ids(list), err, rec.ID)
		}
	}},
	{"ConcurrentCreatesLoseNothing", func(f *fixture) {
		other := f.open()
		const workers, each = 4, 8
		var wg sync.WaitGroup
		secrets := make(chan string, workers*each)
		for w := range workers {
			s := f.s
			if w%2 == 1 {
				s = other
			}
			wg.Go(func() {
				for i := range each {
					_, secret, err := s.Create(f.ctx, keys.Spec{Label: fmt.Sprintf("w%d-%d", w, i), Path: "live/a"})
					if err != nil {
						f.t.Error(err)
						return
					}
					secrets <- secret
				}
			})
		}
		wg.Wait()
		close(secrets)
		seen := map[string]bool{}
		for secret := range secrets {
			seen[f.mustLookup(other, secret).ID] = true
		}
		list, err := f.s.List(f.ctx)
		if err != nil {
			f.t.Fatal(err)
		}
		if len(seen) != workers*each || len(list) != workers*each {
			f.t.Fatalf("%d distinct keys looked up, %d listed; want %d", len(seen), len(list), workers*each)
		}
	}},
	{"ConcurrentRotationsMakeOneSuccessor", func(f *fixture) {
		other := f.open()
		rec, _ := f.create(f.s, keys.Spec{Path: "live/a"})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for w := range 4 {
			s := f.s
			if w%2 == 1 {
				s = other
			}
			wg.Go(func() {
				if _, _, _, err := s.Rotate(f.ctx, rec.ID, time.Hour); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		list, err := f.s.List(f.ctx)
		if err != nil {
			f.t.Fatal(err)
		}
		if ok != 1 || len(list) != 2 {
			f.t.Fatalf("%d rotations of one key succeeded and %d keys exist; want exactly 1 successor", ok, len(list))
		}
	}},
	{"TwoInstancesShareEverything", func(f *fixture) {
		a, b := f.s, f.open()
		var heard revocations
		defer b.Subscribe(heard.add)()
		rec, secret := f.create(a, keys.Spec{Label: "shared", Path: "live/a"})
		sameRecord(f.t, "Lookup on the other instance", f.mustLookup(b, secret), rec)
		if list, err := b.List(f.ctx); err != nil || !slices.Equal(ids(list), []string{rec.ID}) {
			f.t.Fatalf("List on the other instance = %v, %v", ids(list), err)
		}
		if d := f.publish(b, secret, "rtmp"); !d.Allowed() {
			f.t.Fatalf("publish through the other instance: %+v", d)
		}
		// Revoked through b: refused through a at the very next request (no cache).
		if _, err := b.Revoke(f.ctx, rec.ID); err != nil {
			f.t.Fatal(err)
		}
		if d := f.publish(a, secret, "rtmp"); d.Allowed() || d.Reason != keys.ReasonKeyRevoked {
			f.t.Fatalf("publish through a after a revocation through b: got %+v, want %s", d, keys.ReasonKeyRevoked)
		}
		// A rotation through a is heard by b's subscribers.
		r2, _ := f.create(a, keys.Spec{Path: "live/b"})
		if _, _, _, err := a.Rotate(f.ctx, r2.ID, 0); err != nil {
			f.t.Fatal(err)
		}
		if err := b.Poll(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		if got := heard.get(); len(got) != 2 || got[0].KeyID != rec.ID || got[1].KeyID != r2.ID {
			f.t.Fatalf("b heard %+v, want the revocations of %s then %s", got, rec.ID, r2.ID)
		}
		// Last use flushed by either instance, the newest kept.
		t1 := f.clock.Now().Add(time.Minute)
		b.Touch(rec.ID, t1, netip.MustParseAddr("203.0.113.1"))
		if err := b.Flush(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		a.Touch(rec.ID, t1.Add(-time.Second), netip.MustParseAddr("203.0.113.2")) // older, flushed later
		if err := a.Flush(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		lastUse(f, a, rec.ID, t1, "203.0.113.1")
		lastUse(f, b, rec.ID, t1, "203.0.113.1")
	}},
	{"NewInstanceHearsOnlyNewRevocations", func(f *fixture) {
		rec, _ := f.create(f.s, keys.Spec{Path: "live/a"})
		if _, err := f.s.Revoke(f.ctx, rec.ID); err != nil {
			f.t.Fatal(err)
		}
		late := f.open()
		var heard revocations
		defer late.Subscribe(heard.add)()
		r2, _ := f.create(f.s, keys.Spec{Path: "live/b"})
		if _, err := f.s.Revoke(f.ctx, r2.ID); err != nil {
			f.t.Fatal(err)
		}
		if err := late.Poll(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		if got := heard.get(); len(got) != 1 || got[0].KeyID != r2.ID {
			f.t.Fatalf("an instance opened after a revocation heard %+v, want only the later one (%s)", got, r2.ID)
		}
	}},
}

// sameRecord compares the stored fields of a record (not the batched last use).
func sameRecord(t *testing.T, what string, got, want keys.Record) {
	t.Helper()
	eq := got.ID == want.ID && got.Label == want.Label && got.Owner == want.Owner && got.Path == want.Path &&
		slices.Equal(got.Actions, want.Actions) && slices.Equal(got.Protocols, want.Protocols) &&
		got.Expires.Equal(want.Expires) && got.Created.Equal(want.Created) && got.Revoked.Equal(want.Revoked) && !got.ReadOnly
	if !eq {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func lastUse(f *fixture, s Store, id string, at time.Time, addr string) {
	f.t.Helper()
	got, err := s.Get(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	if !got.LastUsed.Equal(at) || got.LastAddr != addr {
		f.t.Fatalf("Get last use = %v from %q, want %v from %q", got.LastUsed, got.LastAddr, at, addr)
	}
	list, err := s.List(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range list {
		if r.ID == id && (!r.LastUsed.Equal(at) || r.LastAddr != addr) {
			f.t.Fatalf("List last use = %v from %q, want %v from %q", r.LastUsed, r.LastAddr, at, addr)
		}
	}
}

func ids(list []keys.Record) []string {
	out := []string{}
	for _, r := range list {
		out = append(out, r.ID)
	}
	return out
}

// revocations collects what a subscriber heard.
type revocations struct {
	mu   sync.Mutex
	list []keys.Revocation
}

func (r *revocations) add(rv keys.Revocation) {
	r.mu.Lock()
	r.list = append(r.list, rv)
	r.mu.Unlock()
}

func (r *revocations) get() []keys.Revocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}
