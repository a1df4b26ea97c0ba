package users

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"gatehouse/authz"
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

// TestSlotWaitersLookAgain: callers that came while the budget had room (no turn booked) and
// then queued for a slot ask the pacer again once they get it. Here 30 distinct wrong passwords
// arrive at a quiet backend whose only slot is taken; while they wait, failures put the failure
// clock an hour ahead; when the slot frees, every one of them is told busy and none derives.
// Before, all 30 derived, one after another: a flood arriving at a quiet backend (or when a
// brute-force source's ban ended) sent hundreds of derivations past the pacer before the first
// failure was paid for, and they held the slots — and the CPU — for seconds (make loadtest saw
// every decision slow for 5 s after each ban of its brute-force source ended).
func TestSlotWaitersLookAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(argon2Config(t, ""), WithMaxConcurrentArgon2(1))
		b.sem <- struct{}{} // the slot is taken
		const n = 30
		var busy atomic.Int32
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := b.Authorize(context.Background(), req(authz.ActionPublish, "p", "", "testuser", fmt.Sprint("guess", i)))
				var re *authz.ReasonError
				if errors.As(err, &re) && re.Reason == ReasonBusy {
					busy.Add(1)
				}
			})
		}
		synctest.Wait() // every caller passed the pacer unbooked and waits for the slot
		if m := b.Stats().CacheMisses; m != n {
			t.Fatalf("%d callers reached the slot, want %d", m, n)
		}
		b.pace.mu.Lock()
		b.pace.charged = time.Now().Add(time.Hour) // failures paid for while they waited
		b.pace.mu.Unlock()
		<-b.sem
		wg.Wait()
		if runs, got := b.Stats().Argon2Runs, busy.Load(); runs != 0 || got != n {
			t.Errorf("%d derivations ran and %d callers were told busy; want 0 and %d", runs, got, n)
		}
	})
}
