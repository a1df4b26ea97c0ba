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

// failureBurst is how much failure budget a quiet backend has saved up: a few mistyped passwords
// never wait.
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

// pacer is a virtual clock of failure cost: each failed derivation advances next by its
// duration divided by the budget; a derivation may start when next is not in the future.
type pacer struct {
	mu     sync.Mutex
	next   time.Time
	budget float64 // cores' worth of CPU failures may use
}

// maxPaceWait is the longest a derivation waits for the failure budget. Beyond it the caller is
// answered at once that the backend is busy (could not decide: denied, not counted as a guess)
// instead of being held open until its decision timeout: a flood of wrong passwords or unknown
// names must not turn into thousands of requests parked for seconds (MediaMTX's random sleep
// per failure ties up its own connections the same way).
const maxPaceWait = 500 * time.Millisecond

// errBusy is wait's answer when the failure budget is further ahead than maxPaceWait.
var errBusy = errors.New("users: too many failed password verifications at the moment; try again shortly")

// wait blocks until a derivation may start, or ctx ends; it returns errBusy at once when that
// would take longer than maxPaceWait.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	d := time.Until(p.next)
	p.mu.Unlock()
	if d <= 0 {
		return nil
	}
	if d > maxPaceWait {
		return errBusy
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// charge records a failed derivation that ran from start for took.
func (p *pacer) charge(start time.Time, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if floor := start.Add(-failureBurst); p.next.Before(floor) {
		p.next = floor
	}
	p.next = p.next.Add(time.Duration(float64(took) / p.budget))
}
