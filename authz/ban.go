package authz

import (
	"errors"
	"sync"
	"time"
)

// ReasonBanned: a method allowed, but an operator banned the key or identity for a while (a
// kick with ?ban=). A real denial: a re-check of a running session ends it (Decision.Keep).
const ReasonBanned = "banned"

// MaxBans bounds the bans an Engine holds; expired ones are dropped first.
const MaxBans = 10_000

// ErrTooManyBans is returned by Engine.Ban when MaxBans unexpired bans are held.
var ErrTooManyBans = errors.New("authz: too many bans")

// bans are temporary refusals by key id or identity, held in memory by the engine so that they
// apply to every adapter and survive reloads (the engine outlives its chains).
type bans struct {
	mu sync.Mutex
	m  map[banKey]time.Time // until
}

type banKey struct {
	key bool // true: a stream key id; false: an identity
	v   string
}

// Ban refuses, until until, every request that a method allows for the stream key keyID or for
// identity (either may be empty; an anonymous grant cannot be banned by identity). A new ban of
// the same key or identity replaces the old one. It fails with ErrTooManyBans when MaxBans
// unexpired bans are held.
func (e *Engine) Ban(keyID, identity string, until time.Time) error {
	now := e.now()
	b := &e.bans
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[banKey]time.Time{}
	}
	var add []banKey
	if keyID != "" {
		add = append(add, banKey{true, keyID})
	}
	if identity != "" {
		add = append(add, banKey{false, identity})
	}
	if len(b.m)+len(add) > MaxBans {
		for k, t := range b.m {
			if !now.Before(t) {
				delete(b.m, k)
			}
		}
		if len(b.m)+len(add) > MaxBans {
			return ErrTooManyBans
		}
	}
	for _, k := range add {
		b.m[k] = until
	}
	return nil
}

// banned reports whether d's key or identity is banned at now.
func (e *Engine) banned(d Decision, now time.Time) bool {
	b := &e.bans
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.m) == 0 {
		return false
	}
	for _, k := range []banKey{{true, d.KeyID}, {false, d.Identity}} {
		if k.v == "" {
			continue
		}
		if t, ok := b.m[k]; ok {
			if now.Before(t) {
				return true
			}
			delete(b.m, k)
		}
	}
	return false
}
