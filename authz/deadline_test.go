package authz

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

// TestLazyDeadline: deadlineCtx answers as context.WithTimeout would, whether or not a method
// ever asked for Done.
func TestLazyDeadline(t *testing.T) {
	closed := func(c context.Context) bool {
		select {
		case <-c.Done():
			return true
		default:
			return false
		}
	}
	t.Run("before the deadline", func(t *testing.T) {
		c, cancel := withLazyDeadline(context.WithValue(context.Background(), ctxKey{}, "v"), time.Hour)
		defer cancel()
		if err := c.Err(); err != nil {
			t.Fatalf("Err = %v, want nil", err)
		}
		if got := c.Value(ctxKey{}); got != "v" {
			t.Fatalf("Value = %v, want v", got)
		}
		if closed(c) || c.Err() != nil {
			t.Fatal("armed context closed before its deadline")
		}
		if got := c.Value(ctxKey{}); got != "v" {
			t.Fatalf("armed Value = %v, want v", got)
		}
	})
	t.Run("deadline passed, never armed", func(t *testing.T) {
		c, cancel := withLazyDeadline(context.Background(), 0)
		defer cancel()
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("deadline passed, armed", func(t *testing.T) {
		c, cancel := withLazyDeadline(context.Background(), 0)
		defer cancel()
		<-c.Done() // closes: the deadline is already past
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err = %v, want DeadlineExceeded", err)
		}
		if err := context.Cause(c); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Cause = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("parent canceled", func(t *testing.T) {
		p, pcancel := context.WithCancel(context.Background())
		c, cancel := withLazyDeadline(p, time.Hour)
		defer cancel()
		pcancel()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err = %v, want Canceled", err)
		}
		<-c.Done()
	})
	t.Run("parent canceled after arming", func(t *testing.T) {
		p, pcancel := context.WithCancel(context.Background())
		c, cancel := withLazyDeadline(p, time.Hour)
		defer cancel()
		done := c.Done()
		pcancel()
		<-done
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err = %v, want Canceled", err)
		}
	})
	t.Run("canceled before arming", func(t *testing.T) {
		c, cancel := withLazyDeadline(context.Background(), time.Hour)
		cancel()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err = %v, want Canceled", err)
		}
		<-c.Done()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("armed Err = %v, want Canceled", err)
		}
	})
	t.Run("earlier parent deadline", func(t *testing.T) {
		p, pcancel := context.WithTimeout(context.Background(), time.Minute)
		defer pcancel()
		c, cancel := withLazyDeadline(p, time.Hour)
		defer cancel()
		pd, _ := p.Deadline()
		if d, ok := c.Deadline(); !ok || !d.Equal(pd) {
			t.Fatalf("Deadline = %v %v, want the parent's %v", d, ok, pd)
		}
	})
	t.Run("concurrent Done", func(t *testing.T) {
		c, cancel := withLazyDeadline(context.Background(), time.Hour)
		var wg sync.WaitGroup
		chans := make([]<-chan struct{}, 8)
		for i := range chans {
			wg.Add(1)
			go func() { defer wg.Done(); chans[i] = c.Done() }()
		}
		wg.Wait()
		for _, ch := range chans[1:] {
			if ch != chans[0] {
				t.Fatal("Done returned different channels")
			}
		}
		cancel()
		<-chans[0]
	})
}

// TestLazyDeadlineAllocs: a decision that never waits costs one allocation (the context, which
// escapes into the chain as in Engine.run), not a second one for its cancel function.
func TestLazyDeadlineAllocs(t *testing.T) {
	var sink context.Context
	n := testing.AllocsPerRun(100, func() {
		c, cancel := withLazyDeadline(context.Background(), time.Hour)
		defer cancel()
		sink = c
		_ = c.Err()
	})
	if n != 1 {
		t.Errorf("withLazyDeadline + Err + cancel: %v allocations, want 1", n)
	}
	_ = sink
}

// TestLazyTimeoutAllocs: as TestLazyDeadlineAllocs for the exported LazyTimeout (nginx-rtmp's
// bound): one allocation for the context, none for its cancel function. (Written out, not a
// table with TestLazyDeadlineAllocs: called through a func value, neither would inline, and
// inlining is what keeps the cancel function off the heap.)
func TestLazyTimeoutAllocs(t *testing.T) {
	var sink context.Context
	n := testing.AllocsPerRun(100, func() {
		c, cancel := LazyTimeout(context.Background(), time.Hour)
		defer cancel()
		sink = c
		_ = c.Err()
	})
	if n != 1 {
		t.Errorf("LazyTimeout + Err + cancel: %v allocations, want 1", n)
	}
	_ = sink
}
