package authz

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkRunStrategy compares the two ways to bound a decision by Policy.DecisionTimeout:
// goroutine is what Engine.run does (the chain in a goroutine it owns, the caller waiting on the
// answer or the deadline: a method that ignores its context keeps only that goroutine); inline
// calls the chain on the caller's goroutine under context.WithTimeout (cheaper, but a method that
// ignores its context holds the caller past the deadline). The engine keeps goroutine unless
// inline is much faster; see Engine.run.
func BenchmarkRunStrategy(b *testing.B) {
	c := NewChain(Method{Name: "internal", Backend: fixed(Allowing("alice", time.Time{}), nil)})
	req := &Request{Action: ActionPublish, Path: "live/alice", Protocol: "rtmp", IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Pass: "pw"}
	e := NewEngine(c, nil)
	ctx := context.Background()
	b.Run("goroutine", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := e.run(ctx, c, Policy{}, req); !d.Allowed() {
				b.Fatal(d)
			}
		}
	})
	b.Run("inline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tctx, cancel := context.WithTimeout(ctx, DefaultDecisionTimeout)
			d, _ := c.Authorize(tctx, req)
			cancel()
			if !d.Allowed() {
				b.Fatal(d)
			}
		}
	})
	b.Run("inline/lazy", func(b *testing.B) { // what run does for a ContextBound chain
		b.ReportAllocs()
		for b.Loop() {
			tctx, cancel := withLazyDeadline(ctx, DefaultDecisionTimeout)
			d, _ := c.Authorize(tctx, req)
			cancel()
			if !d.Allowed() {
				b.Fatal(d)
			}
		}
	})
	b.Run("parallel/goroutine", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e.run(ctx, c, Policy{}, req)
			}
		})
	})
	b.Run("parallel/inline", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tctx, cancel := context.WithTimeout(ctx, DefaultDecisionTimeout)
				c.Authorize(tctx, req)
				cancel()
			}
		})
	})
}
