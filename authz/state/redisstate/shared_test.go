package redisstate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz"
	"gatehouse/authz/state"
	"gatehouse/authz/state/redistest"
)

func client(t *testing.T, srv *redistest.Server) redis.UniversalClient {
	t.Helper()
	rdb, err := Open(&state.RedisConfig{Addrs: []string{srv.Addr}, Timeout: 300 * 1e6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func shared(t *testing.T, srv *redistest.Server) *Shared {
	t.Helper()
	return NewShared(client(t, srv), "test:", time.Hour, NewHealth(time.Millisecond, nil), 0, 0)
}

func mustSync(t *testing.T, ss ...*Shared) {
	t.Helper()
	for _, s := range ss {
		if err := s.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// denyAll is a backend that refuses every password: each request is a failed guess.
type denyAll struct{}

func (denyAll) Authorize(context.Context, *authz.Request) (authz.Decision, error) {
	return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no"), nil
}

// A brute-force attack spread over two replicas is counted once, the ban made on one is refused
// by the other after one push, and it survives a replica's restart; an operator's lift on one
// replica lifts it on the other.
func TestSharedBansAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, b := shared(t, srv), shared(t, srv)
	chain := authz.NewChain(authz.Method{Name: "deny", Backend: denyAll{}}).WithPolicy(authz.Policy{
		BruteForce: authz.BruteForce{MaxFailures: 10, Window: time.Minute, Ban: time.Minute, MaxBan: time.Hour}})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ea := authz.NewEngine(chain, log, authz.WithBanStore(a), authz.WithCounter(a))
	eb := authz.NewEngine(chain, log, authz.WithBanStore(b), authz.WithCounter(b))
	guess := 0
	req := func() *authz.Request { // distinct guesses: a repeated credential counts once
		guess++
		return &authz.Request{Action: authz.ActionPublish, Path: "live/x", User: "u", Pass: fmt.Sprint("guess", guess), IP: netip.MustParseAddr("203.0.113.9")}
	}
	ctx := context.Background()
	// Five failures on each replica: neither alone reaches ten.
	for range 5 {
		ea.Authorize(ctx, req())
		eb.Authorize(ctx, req())
	}
	mustSync(t, a, b) // A pushes 5; B pushes 5 and learns of A's
	if d := eb.Authorize(ctx, req()); d.Reason == authz.ReasonBanned {
		t.Fatalf("banned before the 10th failure counted: %+v", d)
	}
	// That was B's 6th and the fleet's 11th: B must have banned (10 reached with A's 5).
	if _, ok := b.Until(authz.BanSubject{Kind: authz.BanIP, Value: "203.0.113.9/32"}, time.Now()); !ok {
		t.Fatalf("B did not ban after the fleet's 11th failure; bans %+v", b.List(time.Now()))
	}
	if d := ea.Authorize(ctx, req()); d.Reason == authz.ReasonBanned {
		t.Fatal("A refused as banned before any push: the test proves nothing")
	}
	mustSync(t, b, a)
	if d := ea.Authorize(ctx, req()); d.Reason != authz.ReasonBanned {
		t.Fatalf("A after one push: got %+v, want banned", d)
	}
	// A replica started later (a restart) sees the ban.
	c := shared(t, srv)
	mustSync(t, c)
	if got := c.List(time.Now()); len(got) != 1 || got[0].Reason != "bruteforce" {
		t.Fatalf("restarted replica's bans: %+v", got)
	}
	// An operator lifts it on A: B follows after one push.
	if !ea.Lift(authz.BanSubject{Kind: authz.BanIP, Value: "203.0.113.9/32"}) {
		t.Fatal("Lift on A found no ban")
	}
	mustSync(t, a, b)
	if got := b.List(time.Now()); len(got) != 0 {
		t.Fatalf("B after lift on A: %+v", got)
	}
}

// Redis down: bans and counts stay local and nothing blocks; Redis back: the queued ban reaches
// the other replica and Health is up again, without a restart.
func TestSharedRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t, redistest.Persistent())
	a, b := shared(t, srv), shared(t, srv)
	mustSync(t, a, b)
	srv.Stop()
	s := authz.BanSubject{Kind: authz.BanIdentity, Value: "mallory"}
	now := time.Now()
	if err := a.Put(authz.Ban{Subject: s, Until: now.Add(time.Hour), Reason: "operator"}, now); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Until(s, now); !ok {
		t.Fatal("the ban does not hold locally while Redis is down")
	}
	if n := a.Fail(authz.BanSubject{Kind: authz.BanIP, Value: "198.51.100.1/32"}, 0, now, time.Minute); n != 1 {
		t.Fatalf("local count while down: %d, want 1", n)
	}
	if err := a.Sync(context.Background()); err == nil {
		t.Fatal("Sync with Redis down: nil error")
	}
	if a.health.Err() == nil {
		t.Fatal("Health up while Redis is down")
	}
	srv.Restart()
	mustSync(t, a, b)
	if _, ok := b.Until(s, time.Now()); !ok {
		t.Fatal("the ban made while Redis was down did not reach B after it returned")
	}
	if err := a.health.Err(); err != nil {
		t.Fatalf("Health after recovery: %v", err)
	}
}

// A client repeating one credential is pushed to the other replicas once, as it is counted once
// locally; distinct guesses are all pushed.
func TestSharedRepeatPushedOnce(t *testing.T) {
	srv := redistest.Start(t)
	a, b := shared(t, srv), shared(t, srv)
	now := time.Now()
	rep := authz.BanSubject{Kind: authz.BanIP, Value: "198.51.100.7/32"}
	dis := authz.BanSubject{Kind: authz.BanIP, Value: "198.51.100.8/32"}
	for i := range 4 {
		a.Fail(rep, 42, now, time.Minute)
		a.Fail(dis, uint64(100+i), now, time.Minute)
	}
	// A replica learns the others' counts of the subjects it fails itself.
	b.Fail(rep, 7, now, time.Minute)
	b.Fail(dis, 7, now, time.Minute)
	mustSync(t, a, b, b)
	if n := b.Fail(rep, 8, now, time.Minute); n != 3 {
		t.Errorf("repeated credential: B counts %d, want 3 (A's one + B's two)", n)
	}
	if n := b.Fail(dis, 8, now, time.Minute); n != 6 {
		t.Errorf("distinct guesses: B counts %d, want 6 (A's four + B's two)", n)
	}
}

// An operator ban made on replica A advances replica B's engine generation once B pulls it
// (forward-auth cookies end fleet-wide); a brute-force ban pulled the same way does not, and
// pulling an unchanged ban again does not either. A's own ban, pushed and read back, does not
// count twice on A.
func TestSharedOperatorBanAdvancesGeneration(t *testing.T) {
	srv := redistest.Start(t)
	a, b := shared(t, srv), shared(t, srv)
	eb := authz.NewEngine(authz.NewChain(), nil, authz.WithBanStore(b), authz.WithCounter(b))
	ea := authz.NewEngine(authz.NewChain(), nil, authz.WithBanStore(a), authz.WithCounter(a))
	mustSync(t, a, b)
	g0, ga0 := eb.Generation(), ea.Generation()

	now := time.Now()
	if err := a.Put(authz.Ban{Subject: authz.BanSubject{Kind: authz.BanIP, Value: "198.51.100.9/32"}, Until: now.Add(time.Hour), Reason: "bruteforce", Strike: 1}, now); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a, b)
	if _, ok := b.Until(authz.BanSubject{Kind: authz.BanIP, Value: "198.51.100.9/32"}, now); !ok {
		t.Fatal("B did not learn the brute-force ban")
	}
	if g := eb.Generation(); g != g0 {
		t.Fatalf("B's generation after a brute-force ban: %d, want %d (unchanged)", g, g0)
	}

	if err := ea.Ban("key_abc", "", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a, b)
	if g := eb.Generation(); g <= g0 {
		t.Fatalf("B's generation after A's operator ban: %d, want > %d", g, g0)
	}
	g1 := eb.Generation()
	mustSync(t, a, b, a, b)
	if g := eb.Generation(); g != g1 {
		t.Fatalf("B's generation after pulling the same ban again: %d, want %d", g, g1)
	}
	if g := ea.Generation(); g != ga0+1 {
		t.Fatalf("A's generation after its own ban came back: %d, want %d", g, ga0+1)
	}
}
