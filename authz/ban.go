package authz

import (
	"time"
)

// ReasonBanned: the client is under a temporary ban. Either an operator banned the key or
// identity a method allowed (a kick with ?ban=), or brute-force protection banned the client's
// address or the user name it presented (refused before any method runs, except for a re-check:
// the failures may have been someone else's). A real denial: a re-check that an operator's ban
// refuses ends the session (Decision.Keep). Decision.RetryAfter says when to retry.
const ReasonBanned = "banned"

// Ban refuses, until until, every request that a method allows for the stream key keyID or for
// identity (either may be empty; an anonymous grant cannot be banned by identity). A new ban of
// the same key or identity replaces the old one. It fails with ErrTooManyBans when the ban store
// is full of unexpired bans. It advances Generation.
func (e *Engine) Ban(keyID, identity string, until time.Time) error {
	now := e.now()
	for _, s := range []BanSubject{{BanKey, keyID}, {BanIdentity, identity}} {
		if s.Value == "" {
			continue
		}
		if err := e.banStore.Put(Ban{Subject: s, Until: until, Reason: "operator"}, now); err != nil {
			return err
		}
	}
	// What is granted changed: anything that caches a grant by generation (forward-auth segment
	// cookies, local /manage sessions) must ask the engine again, or a banned HLS viewer kept
	// watching on its cookie for max_age. Brute-force bans do not advance it: they are automatic,
	// and an attacker must not be able to end everyone's cookies by getting itself banned.
	e.gen.Add(1)
	return nil
}

// Bans returns the bans in force, operators' and brute-force protection's, soonest to end first.
func (e *Engine) Bans() []Ban { return e.banStore.List(e.now()) }

// Lift ends the ban of s at once and reports whether there was one. Lifting an address or user
// ban does not forget its strikes: the next brute-force ban of the subject is still longer.
func (e *Engine) Lift(s BanSubject) bool {
	ok := e.banStore.Lift(s, e.now())
	if ok {
		e.log.Warn("ban lifted", "kind", s.Kind, "subject", s.Value)
	}
	return ok
}

// banned returns when the ban of d's key or identity ends, and whether there is one at now.
func (e *Engine) banned(d Decision, now time.Time) (time.Time, bool) {
	for _, s := range []BanSubject{{BanKey, d.KeyID}, {BanIdentity, d.Identity}} {
		if s.Value == "" {
			continue
		}
		if until, ok := e.banStore.Until(s, now); ok {
			return until, true
		}
	}
	return time.Time{}, false
}
