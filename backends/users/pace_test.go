package users

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestPacerBooksTurns: callers arriving together while the failure budget is spent get successive
// turns, not one shared turn: with failures costing 1 s of budget each, of 20 concurrent callers
// the one whose turn is 100 ms away goes and the rest are told at once that the backend is busy.
// (Each once waited for the same moment and all derived together, so a flood's derivations ran
// back to back, far beyond the budget, with a queue of requests held open behind them.)
func TestPacerBooksTurns(t *testing.T) {
	p := &pacer{budget: 0.1, est: 100 * time.Millisecond, next: time.Now().Add(100 * time.Millisecond)}
	var (
		mu             sync.Mutex
		admitted, busy int
		wg             sync.WaitGroup
	)
	for range 20 {
		wg.Go(func() {
			booked, err := p.wait(context.Background())
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted++
				_ = booked
			case errors.Is(err, errBusy):
				busy++
			default:
				t.Errorf("wait: %v", err)
			}
		})
	}
	wg.Wait()
	if admitted != 1 || busy != 19 {
		t.Errorf("admitted %d, busy %d; want 1 and 19", admitted, busy)
	}
}

// TestPacerSettles: a success gives its booking back, a failure costs what it took; a caller that
// gave up while waiting gives its booking back too.
func TestPacerSettles(t *testing.T) {
	start := time.Now().Add(-2 * time.Second)
	p := &pacer{budget: 0.5, est: 10 * time.Millisecond, next: start}
	booked, err := p.wait(context.Background())
	if err != nil || booked != 20*time.Millisecond {
		t.Fatalf("wait = %v, %v; want a 20 ms booking", booked, err)
	}
	before := p.next
	p.settle(booked, 30*time.Millisecond, false)
	if got := before.Sub(p.next); got != booked {
		t.Errorf("a success moved next back by %v, want its booking %v", got, booked)
	}
	p.next = time.Now().Add(20 * time.Millisecond) // ahead of now: no saved-up budget moves it
	before = p.next
	booked, _ = p.wait(context.Background())
	p.settle(booked, 30*time.Millisecond, true)
	if got := p.next.Sub(before); got != 60*time.Millisecond || p.est != 30*time.Millisecond {
		t.Errorf("a 30 ms failure moved next by %v (est %v), want 60 ms (est 30 ms)", got, p.est)
	}
	p.next = time.Now().Add(400 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before = p.next
	if _, err := p.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a canceled context: %v", err)
	}
	if !p.next.Equal(before) {
		t.Errorf("a caller that gave up left next at %v, want %v", p.next, before)
	}
}
