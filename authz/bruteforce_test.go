package authz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz/logtest"
)

// passwords is a users backend in miniature: alice/right is allowed, any other pair is a bad
// credential, no credentials abstain, and user "flaky" cannot be decided (an IdP down). It
// counts the requests that reach it.
func passwords(calls *atomic.Int64) Backend {
	return BackendFunc(func(_ context.Context, r *Request) (Decision, error) {
		calls.Add(1)
		switch {
		case !r.HasCredentials():
			return Decision{}, nil
		case r.User == "flaky":
			return Decision{}, errors.New("idp down")
		case r.User == "alice" && r.Pass == "right":
			return Allowing("alice", time.Time{}), nil
		}
		return Denying(Unauthenticated, ReasonBadCredentials, "credentials not accepted"), nil
	})
}

type bfRig struct {
	e     *Engine
	now   time.Time
	calls atomic.Int64
	log   bytes.Buffer
}

func newBFRig(t *testing.T, bf BruteForce, opts ...EngineOption) *bfRig {
	t.Helper()
	r := &bfRig{now: time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)}
	chain := NewChain(Method{Name: "users", Backend: passwords(&r.calls)}).WithPolicy(Policy{BruteForce: bf})
	opts = append(opts, WithClock(func() time.Time { return r.now }))
	r.e = NewEngine(chain, slog.New(slog.NewTextHandler(&r.log, nil)), opts...)
	return r
}

func (r *bfRig) ask(ip, user, pass string) Decision {
	return r.e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/alice", Protocol: "rtmp",
		IP: netip.MustParseAddr(ip), User: user, Pass: pass, Source: "nginx-rtmp"})
}

// TestBruteForceBansOneAddress: a guessing run from one address against one user is banned at
// the configured threshold; from then on that address is refused at once (even with the right
// password, without reaching any method) with reason banned and a Retry-After; a legitimate
// client elsewhere is unaffected; the ban survives a reload; the next ban in a row is twice as
// long; the fail2ban line is written.
func TestBruteForceBansOneAddress(t *testing.T) {
	bf := DefaultBruteForce()
	r := newBFRig(t, bf)
	const attacker, friend = "203.0.113.7", "198.51.100.9"
	for i := 1; i <= bf.MaxFailures; i++ {
		if d := r.ask(attacker, "alice", fmt.Sprint("guess", i)); d.Reason != ReasonBadCredentials {
			t.Fatalf("guess %d: got %q, want bad_credentials (not banned before the threshold)", i, d.Reason)
		}
	}
	before := r.calls.Load()
	d := r.ask(attacker, "alice", "right")
	if d.Allowed() || d.Reason != ReasonBanned || d.RetryAfter != time.Minute || d.Keep() {
		t.Fatalf("after %d failures: got %+v, want banned with RetryAfter 1m", bf.MaxFailures, d)
	}
	if got := r.calls.Load(); got != before {
		t.Errorf("a banned request reached a method (%d calls), want none", got-before)
	}
	if d := r.ask(friend, "alice", "right"); !d.Allowed() {
		t.Errorf("legitimate client elsewhere: got %+v, want allowed", d)
	}
	if !strings.Contains(r.log.String(), `msg="bruteforce ban" ip=203.0.113.7 kind=ip subject=203.0.113.7/32 failures=10 ban=1m0s strike=1`) {
		t.Errorf("no fail2ban line in the log:\n%s", r.log.String())
	}
	r.e.Swap(r.e.Chain().WithPolicy(Policy{BruteForce: bf})) // a reload
	r.now = r.now.Add(30 * time.Second)
	if d := r.ask(attacker, "alice", "right"); d.Reason != ReasonBanned || d.RetryAfter != 30*time.Second {
		t.Fatalf("after a reload: got %+v, want still banned for 30s", d)
	}
	if bans := r.e.Bans(); len(bans) != 1 || bans[0].Subject != (BanSubject{BanIP, "203.0.113.7/32"}) || bans[0].Reason != "bruteforce" {
		t.Errorf("Bans() = %+v, want the address ban", bans)
	}
	r.now = r.now.Add(30 * time.Second) // the ban ends
	for i := 1; i <= bf.MaxFailures; i++ {
		r.ask(attacker, "alice", fmt.Sprint("again", i))
	}
	if d := r.ask(attacker, "alice", "right"); d.Reason != ReasonBanned || d.RetryAfter != 2*time.Minute {
		t.Fatalf("second ban in a row: got %+v, want banned for 2m (doubled)", d)
	}
	if !r.e.Lift(BanSubject{BanIP, "203.0.113.7/32"}) {
		t.Fatal("Lift: got false, want the ban lifted")
	}
	if d := r.ask(attacker, "alice", "right"); !d.Allowed() {
		t.Errorf("after Lift: got %+v, want allowed", d)
	}
}

// TestBruteForceCounts: what counts as a failure and what does not.
func TestBruteForceCounts(t *testing.T) {
	bf := BruteForce{MaxFailures: 3, UserMaxFailures: 5}
	for _, tt := range []struct {
		name    string
		bf      BruteForce
		ip      string
		attempt func(r *bfRig, i int) Decision
		banned  bool
	}{
		{"wrong passwords", bf, "203.0.113.7", func(r *bfRig, i int) Decision { return r.ask("203.0.113.7", "alice", fmt.Sprint("x", i)) }, true},
		{"one wrong password repeated is one failure", bf, "203.0.113.7", func(r *bfRig, i int) Decision { return r.ask("203.0.113.7", "alice", "x") }, false},
		{"no credentials are not guesses", bf, "203.0.113.7", func(r *bfRig, i int) Decision { return r.ask("203.0.113.7", "", "") }, false},
		{"could not decide is not a failure", bf, "203.0.113.7", func(r *bfRig, i int) Decision { return r.ask("203.0.113.7", "flaky", "x") }, false},
		{"a success resets the counter", bf, "203.0.113.7", func(r *bfRig, i int) Decision {
			if i%2 == 1 {
				return r.ask("203.0.113.7", "alice", "right")
			}
			return r.ask("203.0.113.7", "alice", fmt.Sprint("x", i))
		}, false},
		{"allow-listed address", BruteForce{MaxFailures: 3, Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}, "203.0.113.7",
			func(r *bfRig, i int) Decision { return r.ask("203.0.113.7", "alice", "x") }, false},
		{"IPv6 grouped by /64", bf, "2001:db8:1:2::99", func(r *bfRig, i int) Decision {
			return r.ask(fmt.Sprintf("2001:db8:1:2::%x", i+1), "alice", fmt.Sprint("x", i))
		}, true},
		{"zero policy counts nothing", BruteForce{}, "203.0.113.7", func(r *bfRig, i int) Decision { return r.ask("203.0.113.7", "alice", "x") }, false},
		{"user name from rotating addresses", BruteForce{UserMaxFailures: 5}, "192.0.2.200", func(r *bfRig, i int) Decision {
			return r.ask(fmt.Sprintf("192.0.2.%d", i+1), "alice", fmt.Sprint("x", i))
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newBFRig(t, tt.bf)
			for i := range 6 {
				tt.attempt(r, i)
			}
			d := r.ask(tt.ip, "alice", "right")
			if got := d.Reason == ReasonBanned; got != tt.banned {
				t.Errorf("banned = %v (%+v), want %v", got, d, tt.banned)
			}
		})
	}
}

// TestBruteForceBounded: an attacker rotating 100,000 addresses (each failing enough to be
// banned) cannot grow the counters beyond their cap nor the bans beyond MaxBans, and the newest
// attacker is still banned.
func TestBruteForceBounded(t *testing.T) {
	const maxCounters = 4096
	ctr := NewMemoryCounter(maxCounters)
	r := newBFRig(t, BruteForce{MaxFailures: 1}, WithCounter(ctr))
	var last string
	for i := range 100_000 {
		last = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		r.ask(last, "mallory", "x")
	}
	if n := ctr.(*memoryCounter).Len(); n > maxCounters {
		t.Errorf("counters hold %d subjects, want at most %d", n, maxCounters)
	}
	if n := len(r.e.Bans()); n > MaxBans {
		t.Errorf("%d bans held, want at most %d", n, MaxBans)
	}
	if d := r.ask(last, "alice", "right"); d.Reason != ReasonBanned {
		t.Errorf("the newest attacker: got %+v, want banned", d)
	}
}

// TestRepeatedFailureCountsOnce: one wrong credential repeated (an HLS player re-fetching with
// a stale key, OBS reconnecting with a mistyped one) is one failed guess, not one per attempt:
// counted each time, it banned the viewer's address. Distinct guesses still count each, and a
// repeat counts again in the next window.
func TestRepeatedFailureCountsOnce(t *testing.T) {
	bf := BruteForce{MaxFailures: 10, UserMaxFailures: 50, Window: time.Minute, Ban: time.Minute, MaxBan: time.Hour}
	ctr := NewMemoryCounter(0)
	r := newBFRig(t, bf, WithCounter(ctr))
	for range 100 {
		if d := r.ask("203.0.113.7", "alice", "stale"); d.Reason != ReasonBadCredentials {
			t.Fatalf("a repeated wrong password: got %q, want bad_credentials (never banned)", d.Reason)
		}
	}
	ip, _ := IPSubject(netip.MustParseAddr("203.0.113.7"))
	if got := ctr.Fail(ip, 0, r.now, time.Minute); got != 2 { // 0: no fingerprint, always counted
		t.Errorf("100 identical failures counted %d times, want once", got-1)
	}
	ctr.Reset(ip)
	for i := range 100 {
		d := r.ask("203.0.113.7", "alice", fmt.Sprint("guess", i))
		if banned := d.Reason == ReasonBanned; banned != (i >= bf.MaxFailures) {
			t.Fatalf("distinct guess %d: got %q, want banned from guess %d on", i, d.Reason, bf.MaxFailures)
		}
	}
	// The same credential on another path is another guess (a stream key can be the path).
	r = newBFRig(t, bf)
	for i := range bf.MaxFailures {
		r.e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: fmt.Sprint("live/", i), Protocol: "rtmp",
			IP: netip.MustParseAddr("203.0.113.8"), User: "alice", Pass: "stale"})
	}
	if d := r.ask("203.0.113.8", "alice", "right"); d.Reason != ReasonBanned {
		t.Errorf("one credential on %d paths: got %q, want banned", bf.MaxFailures, d.Reason)
	}
	// A new window counts the repeat once more; few repeats per window never reach a ban.
	r = newBFRig(t, bf)
	for range 2 * bf.MaxFailures {
		r.ask("203.0.113.9", "alice", "stale")
		r.now = r.now.Add(bf.Window)
	}
	if d := r.ask("203.0.113.9", "alice", "right"); !d.Allowed() {
		t.Errorf("one stale password per window: got %+v, want allowed", d)
	}
}

// TestCounterRemembersFewFingerprints: the counter keeps only recentFailures fingerprints per
// subject; a client cycling through more wrong credentials than that counts every attempt (the
// bound never makes it count fewer failures than distinct guesses).
func TestCounterRemembersFewFingerprints(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	c := NewMemoryCounter(0)
	s := BanSubject{BanIP, "203.0.113.7/32"}
	var got int
	for round := range 3 {
		for fp := range uint64(recentFailures + 1) {
			got = c.Fail(s, fp+1, now, time.Minute)
		}
		if want := (round + 1) * (recentFailures + 1); got != want {
			t.Fatalf("round %d: counted %d, want %d", round, got, want)
		}
	}
	if got := c.Fail(s, recentFailures+1, now, time.Minute); got != 3*(recentFailures+1) {
		t.Errorf("the most recent fingerprint again: counted %d, want no change", got)
	}
}

// TestUnknownAddressesCountedTogether: clients whose address is unknown (contradictory
// forwarding headers resolve to the zero Addr) used to be counted under no address at all, so
// they could guess stream keys without limit. They are counted together under ip:unknown, with
// their own higher threshold: the group is banned there, a real address is never banned for
// them, and a success inside the group does not reset the group's count.
func TestUnknownAddressesCountedTogether(t *testing.T) {
	bf := BruteForce{MaxFailures: 3, UnknownMaxFailures: 6}
	r := newBFRig(t, bf)
	unknown := func(pass string) Decision {
		return r.e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/alice", Protocol: "rtmp",
			Key: pass, Source: "nginx-rtmp"}) // IP: the zero Addr
	}
	for i := range bf.UnknownMaxFailures - 1 {
		if d := unknown(fmt.Sprint("guess", i)); d.Reason != ReasonBadCredentials {
			t.Fatalf("guess %d: got %q, want bad_credentials (the group's threshold is UnknownMaxFailures, not MaxFailures)", i, d.Reason)
		}
		if i == 2 {
			// Someone in the group gets in: the group's count goes on.
			r.e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/alice", User: "alice", Pass: "right"})
		}
	}
	unknown("last guess")
	if d := unknown("guess again"); d.Reason != ReasonBanned || d.RetryAfter != time.Minute {
		t.Fatalf("after %d guesses from unknown addresses: got %+v, want banned", bf.UnknownMaxFailures, d)
	}
	if bans := r.e.Bans(); len(bans) != 1 || bans[0].Subject != (BanSubject{BanIP, UnknownIP}) {
		t.Errorf("Bans() = %+v, want only ip:unknown", bans)
	}
	if d := r.ask("203.0.113.7", "alice", "right"); !d.Allowed() {
		t.Errorf("a known address: got %+v, want allowed", d)
	}
	if !r.e.Lift(BanSubject{BanIP, UnknownIP}) {
		t.Error("the operator cannot lift ip:unknown")
	}
	// Zero UnknownMaxFailures: not counted (the zero policy counts nothing).
	r = newBFRig(t, BruteForce{MaxFailures: 3})
	for i := range 20 {
		unknown(fmt.Sprint("guess", i))
	}
	if bans := r.e.Bans(); len(bans) != 0 {
		t.Errorf("UnknownMaxFailures 0 banned %+v", bans)
	}
}

// TestUserBanSparesAllowListedAddresses: a few addresses guessing alice's password ban the name
// alice, but the operator's allow-listed network still gets in with the right password (it used
// to be refused: anyone could lock the admin out from a handful of addresses).
func TestUserBanSparesAllowListedAddresses(t *testing.T) {
	r := newBFRig(t, BruteForce{UserMaxFailures: 3, Window: time.Minute, Ban: time.Minute, MaxBan: time.Hour,
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	for i := range 5 {
		r.ask(fmt.Sprintf("198.51.100.%d", i+1), "alice", fmt.Sprint("wrong", i))
	}
	if d := r.ask("203.0.113.5", "alice", "right"); d.Reason != ReasonBanned {
		t.Fatalf("alice from elsewhere after the guesses: got %+v, want banned", d)
	}
	if d := r.ask("192.0.2.10", "alice", "right"); !d.Allowed() {
		t.Errorf("alice from the allow-listed network: got %+v, want allowed", d)
	}
}

// TestCounterCountsItsSubjects: the counter knows without a lock when it tracks nothing, so an
// allow skips hashing the user name; it counts adds, resets that forget, and LRU evictions.
func TestCounterCountsItsSubjects(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	c := NewMemoryCounter(counterShards).(*memoryCounter) // one subject per shard
	if !c.empty() {
		t.Fatal("a new counter is not empty")
	}
	for i := range 3 * counterShards { // more subjects than it holds: evictions
		c.Fail(BanSubject{BanIP, fmt.Sprint(i)}, 0, now, time.Minute)
	}
	if got, want := c.n.Load(), int64(c.Len()); got != want || c.empty() {
		t.Fatalf("counted %d subjects, holds %d", got, want)
	}
	for i := range 3 * counterShards {
		c.Reset(BanSubject{BanIP, fmt.Sprint(i)})
	}
	if !c.empty() || c.Len() != 0 {
		t.Errorf("after resetting every subject: counted %d, holds %d, want both 0", c.n.Load(), c.Len())
	}
}

// TestGuessesInTheQueryCountEach: an http method (backends/httpauth) receives Request.Query, so
// guesses may differ only there (a fixed user name and password, a one-time code in the query).
// The repeat fingerprint omitted Query, so such guesses counted once per window; each now counts.
func TestGuessesInTheQueryCountEach(t *testing.T) {
	bf := BruteForce{MaxFailures: 10, UserMaxFailures: 50, Window: time.Minute, Ban: time.Minute, MaxBan: time.Hour}
	r := newBFRig(t, bf)
	for i := range bf.MaxFailures {
		r.e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/alice", Protocol: "rtmp",
			IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Pass: "stale", Query: fmt.Sprint("user=alice&pass=stale&otp=", i), Source: "nginx-rtmp"})
	}
	if d := r.ask("203.0.113.7", "alice", "right"); d.Reason != ReasonBanned {
		t.Errorf("%d guesses differing only in the query: got %q, want banned", bf.MaxFailures, d.Reason)
	}
}

// TestFailuresInFlightAtABanAreNoNewStrike: 25 guesses from one address that all passed the ban
// check before any failed (a flood waiting for password checks) give one ban of the first
// length, not a second one for the 10 that failed after it (each such ban doubled the next:
// make loadtest saw a source go from a 1 m to a 1 h ban in four seconds).
func TestFailuresInFlightAtABanAreNoNewStrike(t *testing.T) {
	bf := DefaultBruteForce()
	gate := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(25)
	slow := BackendFunc(func(context.Context, *Request) (Decision, error) {
		arrived.Done()
		<-gate
		return Denying(Unauthenticated, ReasonBadCredentials, "credentials not accepted"), nil
	})
	var log logtest.Buffer
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	e := NewEngine(NewChain(Method{Name: "users", Backend: slow}).WithPolicy(Policy{BruteForce: bf}),
		slog.New(slog.NewTextHandler(&log, nil)), WithClock(func() time.Time { return now }))
	var wg sync.WaitGroup
	for i := range 25 {
		wg.Go(func() {
			e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/alice", Protocol: "rtmp",
				IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Pass: fmt.Sprint("guess", i), Source: "nginx-rtmp"})
		})
	}
	arrived.Wait()
	close(gate)
	wg.Wait()
	bans := e.Bans()
	lines := strings.Count(log.String(), `msg="bruteforce ban"`)
	if len(bans) != 1 || bans[0].Strike != 1 || !bans[0].Until.Equal(now.Add(time.Minute)) || lines != 1 {
		t.Errorf("bans %+v, %d ban lines; want one first-strike ban of 1m", bans, lines)
	}
}
