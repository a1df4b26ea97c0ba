package users

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultArgon2FailureShare is WithArgon2FailureShare's default: failed argon2 verifications may
// use a tenth of the CPU (of GOMAXPROCS cores) over time.
const DefaultArgon2FailureShare = 0.1

// failureBurst is how much failure budget a quiet backend has saved up: a mistyped password
// never makes anyone wait, even where one derivation costs hundreds of milliseconds (a small
// arm64 box: 200 ms at a budget of 0.2 cores is a full second of the failure clock). When a
// flood arrives at a quiet backend (or a source's ban ends) this lets a few derivations through
// before pacing starts; slot waiters look again (derive), so it is a few, not hundreds. (250 ms
// was tried: one failure on a slow box then refused the next user's login as busy.)
const failureBurst = time.Second

// WithArgon2FailureShare bounds the CPU that failed argon2 verifications use over time to share
// (0 < share <= 1) of GOMAXPROCS cores (default DefaultArgon2FailureShare). The concurrency bound
// (WithMaxConcurrentArgon2) alone lets a flood of distinct wrong passwords — or unknown user
// names, which cost a dummy derivation — keep every core busy and starve cached and token
// decisions; with this pacing the flood's derivations wait their turn instead (bounded by the
// caller's deadline). Successful verifications are never charged, so a quiet backend's logins
// never wait; under a flood, uncached logins queue with it (cached ones do not).
func WithArgon2FailureShare(share float64) Option {
	return func(o *options) {
		if share > 0 && share <= 1 {
			o.failShare = share
		}
	}
}

// pacer is a virtual clock of failure cost. charged moves on only when a derivation fails, by
// what it took divided by the budget; while it is not ahead of now (the budget has room, up to
// failureBurst saved up) derivations start at once and book nothing, so a quiet backend's logins
// never wait. While it is ahead (failures are being paid for), each derivation books a turn:
// queue moves on by the expected cost of a failure (the last one's duration divided by the
// budget), so callers get successive turns instead of all starting together when charged comes
// round, and a turn more than maxPaceWait ahead is refused at once. A booking is given back when
// its derivation ends (a failure is then paid for in charged) or its caller gives up.
type pacer struct {
	mu      sync.Mutex
	charged time.Time     // the failure clock
	queue   time.Time     // the end of the last turn booked while failures are paced
	budget  float64       // cores' worth of CPU failures may use
	est     time.Duration // the last failed derivation's duration: a booking's expected cost
}

// maxPaceWait is the longest a derivation waits for the failure budget. Beyond it the caller is
// answered at once that the backend is busy (could not decide: denied, not counted as a guess)
// instead of being held open until its decision timeout: a flood of wrong passwords or unknown
// names must not turn into thousands of requests parked for seconds (MediaMTX's random sleep
// per failure ties up its own connections the same way).
const maxPaceWait = 500 * time.Millisecond

// errBusy is wait's answer when the caller's turn would be further ahead than maxPaceWait.
var errBusy = errors.New("users: too many failed password verifications at the moment; try again shortly")

// wait returns when the caller may derive, or ctx ends; it returns errBusy at once when the
// caller's turn is more than maxPaceWait ahead. A booking (non-zero) must be settled.
func (p *pacer) wait(ctx context.Context) (booked time.Duration, err error) {
	now := time.Now()
	p.mu.Lock()
	if floor := now.Add(-failureBurst); p.charged.Before(floor) {
		p.charged = floor // a quiet backend saves up at most failureBurst
	}
	if !p.charged.After(now) {
		p.mu.Unlock()
		return 0, nil
	}
	at := p.charged
	if p.queue.After(at) {
		at = p.queue
	}
	if at.Sub(now) > maxPaceWait {
		p.mu.Unlock()
		return 0, errBusy
	}
	booked = time.Duration(float64(p.est) / p.budget)
	p.queue = at.Add(booked)
	p.mu.Unlock()
	t := time.NewTimer(at.Sub(now))
	defer t.Stop()
	select {
	case <-t.C:
		return booked, nil
	case <-ctx.Done():
		p.settle(booked, 0, false)
		return 0, ctx.Err()
	}
}

// ahead reports whether failures are being paid for: the failure clock is ahead of now, so a
// derivation must book a turn.
func (p *pacer) ahead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.charged.After(time.Now())
}

// settle gives a booking back and pays for a failed derivation that took took: charged moves on
// by took divided by the budget. A success, or a derivation that never ran, costs nothing.
func (p *pacer) settle(booked, took time.Duration, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = p.queue.Add(-booked)
	if failed {
		if floor := time.Now().Add(-failureBurst); p.charged.Before(floor) {
			p.charged = floor
		}
		p.charged = p.charged.Add(time.Duration(float64(took) / p.budget))
		p.est = took
	}
}
