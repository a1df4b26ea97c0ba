package users

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz"
)

// BenchmarkCachedUnderFlood measures the decisions per second of a legitimate user whose argon2
// verification is cached (ns/op, through the engine, several clients in parallel) while a flood
// of distinct wrong passwords for another argon2 user (8 flooders, each up to 1000 attempts a
// second) runs from rotating addresses (no single
// address reaches the brute-force threshold), against the same figure with no flood, in the
// same run:
//
//   - quiet: no flood (the baseline);
//   - flood/concurrency-bound-only: only WithMaxConcurrentArgon2 (its default slots) protects,
//     as before failure pacing (WithArgon2FailureShare(1) gives failures every core);
//   - flood/paced: the default failure pacing (DefaultArgon2FailureShare), no bans;
//   - flood/paced+bans: and brute-force protection's per-user counter bans the attacked name,
//     after which the flood is refused before any argon2 run.
//
// The ratio quiet/flood of ns/op is the share of the legitimate rate that is kept. argon2/op
// reports the flood's derivations per legitimate decision.
func BenchmarkCachedUnderFlood(b *testing.B) {
	hashed, err := HashArgon2id([]byte("right"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := mustDecode(b, "internal:\n  users:\n"+
		"  - user: alice\n    pass: "+hashed+"\n    permissions: [{action: publish}]\n"+
		"  - user: victim\n    pass: "+hashed+"\n    permissions: [{action: publish}]\n")
	for _, c := range []struct {
		name  string
		flood bool
		bf    authz.BruteForce
		opts  []Option
	}{
		{"quiet", false, authz.DefaultBruteForce(), nil},
		{"flood/concurrency-bound-only", true, authz.BruteForce{}, []Option{WithArgon2FailureShare(1)}},
		{"flood/paced", true, authz.BruteForce{}, nil},
		{"flood/paced+bans", true, authz.DefaultBruteForce(), nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			be := New(cfg, c.opts...)
			e := authz.NewEngine(authz.NewChain(authz.Method{Name: "internal", Backend: be}).WithPolicy(authz.Policy{BruteForce: c.bf}), nil)
			ctx := context.Background()
			alice := func() *authz.Request {
				return &authz.Request{Action: authz.ActionPublish, Path: "live/alice", Protocol: "rtmp",
					IP: netip.MustParseAddr("192.0.2.1"), User: "alice", Pass: "right"}
			}
			if d := e.Authorize(ctx, alice()); !d.Allowed() { // warm the cache
				b.Fatalf("alice: %+v", d)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var n atomic.Uint32
			if c.flood {
				for range 8 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							i := n.Add(1)
							e.Authorize(ctx, &authz.Request{Action: authz.ActionPublish, Path: "live/victim", Protocol: "rtmp",
								IP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), User: "victim", Pass: fmt.Sprint("guess", i)})
							// Up to 1000 attempts a second per flooder, answered or not: an attacker
							// sends as fast as the answers come, and a refusal that costs nothing
							// does not become a CPU-bound loop of the benchmark's own.
							time.Sleep(time.Millisecond)
						}
					})
				}
			}
			runs := be.Stats().Argon2Runs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := alice()
				for pb.Next() {
					if d := e.Authorize(ctx, r); !d.Allowed() {
						b.Errorf("alice refused: %+v", d)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(be.Stats().Argon2Runs-runs)/float64(b.N), "argon2/op")
			close(stop)
			wg.Wait()
		})
	}
}
