package authz

import (
	"context"
	"testing"
	"time"
)

// bound is a ContextBound backend that waits for its context when block is set.
type bound struct {
	d     Decision
	block bool
}

func (b bound) BoundByContext() bool { return true }

func (b bound) Authorize(ctx context.Context, _ *Request) (Decision, error) {
	if b.block {
		<-ctx.Done()
		return Decision{}, ctx.Err()
	}
	return b.d, nil
}

// TestRunInline: a chain whose every method is ContextBound runs on the caller's goroutine
// (fewer allocations than with the engine's own goroutine), and a bounded method that waits
// past the deadline gives the same undecided decision_timeout, with the path hidden, as a silent
// method run in a goroutine; one method that does not promise it makes the whole chain run in a
// goroutine.
func TestRunInline(t *testing.T) {
	allow := Allowing("alice", time.Time{})
	inline := NewChain(Method{Name: "a", Backend: bound{d: Decision{}}}, Method{Name: "b", Backend: bound{d: allow}})
	mixed := NewChain(Method{Name: "a", Backend: bound{d: Decision{}}}, Method{Name: "b", Backend: fixed(allow, nil)})
	if !inline.BoundByContext() || mixed.BoundByContext() || !inline.WithPolicy(Policy{}).BoundByContext() {
		t.Fatalf("BoundByContext: inline %v, mixed %v; want true, false", inline.BoundByContext(), mixed.BoundByContext())
	}
	req := &Request{Action: ActionRead, Path: "live/x"}
	e := NewEngine(inline, nil)
	ctx := context.Background()
	in := testing.AllocsPerRun(200, func() { e.run(ctx, inline, Policy{}, req) })
	gr := testing.AllocsPerRun(200, func() { e.run(ctx, mixed, Policy{}, req) })
	if in >= gr {
		t.Errorf("allocations: inline %v, goroutine %v; want inline fewer (no goroutine, no channel)", in, gr)
	}

	for _, c := range []*Chain{
		NewChain(Method{Name: "slow", Backend: bound{block: true}}),
		NewChain(Method{Name: "slow", Backend: BackendFunc(func(ctx context.Context, _ *Request) (Decision, error) {
			<-ctx.Done()
			return Decision{}, ctx.Err()
		})}),
	} {
		c = c.WithPolicy(Policy{DecisionTimeout: time.Millisecond})
		d := NewEngine(c, nil).Authorize(ctx, &Request{Action: ActionPublish, Path: "live/ghk_secret"})
		// The goroutine hides the path when the chain was silent; it may also have answered
		// (could not decide) at the deadline, which keeps its path like any decided request.
		if d.Allowed() || !d.Undecided || d.Reason != ReasonTimeout || (c.BoundByContext() && !d.hidePath) {
			t.Errorf("inline %v: got %+v, want an undecided decision_timeout with the path hidden", c.BoundByContext(), d)
		}
	}
}
