package users

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// admitTogether runs n concurrent waits and counts who may derive and who is told busy.
func admitTogether(t *testing.T, p *pacer, n int) (admitted, busy int) {
	t.Helper()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			_, err := p.wait(context.Background())
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted++
			case errors.Is(err, errBusy):
				busy++
			default:
				t.Errorf("wait: %v", err)
			}
		})
	}
	wg.Wait()
	return admitted, busy
}

// TestPacerBooksTurns: callers arriving together while failures are being paid for get successive
// turns, not one shared turn: with failures costing 1 s of budget each, of 20 concurrent callers
// the one whose turn is 100 ms away goes and the rest are told at once that the backend is busy.
// (Each once waited for the same moment and all derived together, so a flood's derivations ran
// back to back, far beyond the budget, with a queue of requests held open behind them.)
func TestPacerBooksTurns(t *testing.T) {
	p := &pacer{budget: 0.1, est: 100 * time.Millisecond, charged: time.Now().Add(100 * time.Millisecond)}
	if admitted, busy := admitTogether(t, p, 20); admitted != 1 || busy != 19 {
		t.Errorf("admitted %d, busy %d; want 1 and 19", admitted, busy)
	}
}

// TestPacerQuietBackendNeverRefuses: with the budget not spent (the last failure long ago), 50
// logins arriving together all go at once, whatever a failure used to cost: successes are
// never charged, so a burst of reconnecting publishers is never told busy.
func TestPacerQuietBackendNeverRefuses(t *testing.T) {
	p := &pacer{budget: 0.2, est: 50 * time.Millisecond, charged: time.Now().Add(-time.Minute)}
	if admitted, busy := admitTogether(t, p, 50); admitted != 50 || busy != 0 {
		t.Errorf("admitted %d, busy %d; want 50 and 0", admitted, busy)
	}
}

// TestPacerSettles: a failure moves the failure clock on by what it took over the budget; every
// booking is given back, by the derivation's end or by a caller that gave up.
func TestPacerSettles(t *testing.T) {
	p := &pacer{budget: 0.5, est: 10 * time.Millisecond, charged: time.Now().Add(-time.Minute)}
	booked, err := p.wait(context.Background())
	if err != nil || booked != 0 {
		t.Fatalf("quiet: wait = %v, %v; want no booking", booked, err)
	}
	p.settle(booked, 30*time.Millisecond, true)
	if p.est != 30*time.Millisecond || !p.charged.After(time.Now().Add(-failureBurst)) {
		t.Fatalf("a failure left est %v, charged %v", p.est, p.charged)
	}
	p.charged = time.Now().Add(20 * time.Millisecond) // failures being paid for
	before := p.charged
	booked, err = p.wait(context.Background())
	if err != nil || booked != 60*time.Millisecond {
		t.Fatalf("paced: wait = %v, %v; want a 60 ms booking", booked, err)
	}
	queued := p.queue
	p.settle(booked, 30*time.Millisecond, false)
	if !p.charged.Equal(before) || !p.queue.Equal(queued.Add(-booked)) {
		t.Errorf("a success moved charged to %v (was %v) and queue by %v; want charged unchanged, the booking back", p.charged, before, queued.Sub(p.queue))
	}
	p.charged = time.Now().Add(400 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a canceled context: %v", err)
	}
	if p.queue.After(p.charged) {
		t.Errorf("a caller that gave up left a turn booked %v beyond the failure clock", p.queue.Sub(p.charged))
	}
}
