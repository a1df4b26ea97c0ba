package authz

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is context.WithDeadline whose timer, and its registration with the parent, is made
// only when a method first asks for Done: a chain that answers from memory (a cached or sha256
// user, an anonymous rule) never waits, so it never needs one. Err reads the clock until then, so
// the deadline holds exactly as with context.WithDeadline: a method that waits selects on Done,
// which arms the timer at the same deadline; a method that checks Err sees DeadlineExceeded once
// the deadline has passed. Value answers from the armed context once there is one (context.Cause
// then sees the deadline); before, from the parent.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex // serialises arm and cancel
	armed  atomic.Pointer[armedCtx]
	closed atomic.Bool // cancel was called: Done arms an already-canceled context
}

type armedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// withLazyDeadline returns ctx bounded by d from now and its cancel function, which must be
// called (as context.WithTimeout's). It is small enough to inline, so a caller that only calls
// (or defers) cancel keeps its closure on the stack: one allocation per decision, not two.
func withLazyDeadline(parent context.Context, d time.Duration) (*deadlineCtx, context.CancelFunc) {
	c := newDeadlineCtx(parent, d)
	return c, c.cancel
}

func newDeadlineCtx(parent context.Context, d time.Duration) *deadlineCtx {
	return &deadlineCtx{parent: parent, deadline: time.Now().Add(d)}
}

// LazyTimeout is context.WithTimeout for a caller that bounds a decision below the engine's own
// Policy.DecisionTimeout (an adapter's timeout under its server's): the same deadline, Err, Done
// and Deadline, but the timer and the registration with parent are made only when something
// waits on Done, which a decision answered from memory never does. cancel must be called. Like
// withLazyDeadline it is small enough to inline, so a caller that only calls (or defers) cancel
// keeps its closure on the stack: one allocation, not two.
func LazyTimeout(parent context.Context, d time.Duration) (ctx context.Context, cancel context.CancelFunc) {
	c := newDeadlineCtx(parent, d)
	return c, c.cancel
}

func (c *deadlineCtx) arm() *armedCtx {
	if a := c.armed.Load(); a != nil {
		return a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	if c.closed.Load() {
		cancel()
	}
	a := &armedCtx{ctx: ctx, cancel: cancel}
	c.armed.Store(a)
	return a
}

func (c *deadlineCtx) cancel() {
	c.mu.Lock()
	c.closed.Store(true)
	a := c.armed.Load()
	c.mu.Unlock()
	if a != nil {
		a.cancel()
	}
}

// Deadline implements context.Context: the earlier of the parent's and this one's.
func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

// Done implements context.Context; the first call arms the timer.
func (c *deadlineCtx) Done() <-chan struct{} { return c.arm().ctx.Done() }

// Err implements context.Context.
func (c *deadlineCtx) Err() error {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if c.closed.Load() {
		return context.Canceled
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context.
func (c *deadlineCtx) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	return c.parent.Value(key)
}
