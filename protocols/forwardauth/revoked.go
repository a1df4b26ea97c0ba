package forwardauth

import (
	"sync"
	"time"
)

// maxRevokedKeys bounds the revoked-key set. Revocations are operators' actions, and an entry
// leaves once no cookie earned with its key can still be alive; past the bound the set is
// replaced by a cut-off time (see RevokeKey), which refuses more cookies, never fewer.
const maxRevokedKeys = 10_000

// revokedKeys remembers the stream keys revoked while their cookies may still be alive.
type revokedKeys struct {
	mu     sync.Mutex
	at     map[string]time.Time // key id → when it stops working (later for a rotation's grace)
	cutoff int64                // cookies with a key id issued before this (Unix ns) are refused
}

// RevokeKey ends, from at, the cookies earned with the managed stream key keyID (a revocation
// now; a rotation at the end of its grace period). A revocation is neither a reload nor an
// operator's ban, so it does not end cookies through the generation; without this a viewer
// admitted by a revoked key kept fetching segments on its cookie for up to the cookie's max age.
// Cookies earned otherwise (a token, a password) are untouched. Safe for concurrent use; cmd
// calls it from the key store's revocation subscription.
func (h *Handler) RevokeKey(keyID string, at time.Time) {
	if keyID == "" {
		return
	}
	r := &h.revoked
	now := h.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = map[string]time.Time{}
	}
	// A cookie earned with the key before at ends by at+maxAge; after at the key earns none.
	// The minute covers a decision that started before at and set its cookie after.
	keep := h.cookie.maxAge + time.Minute
	for id, t := range r.at {
		if now.After(t.Add(keep)) {
			delete(r.at, id)
		}
	}
	if len(r.at) >= maxRevokedKeys {
		// Full: every key-earned cookie issued until now is refused instead (viewers then fetch
		// the playlist with their credentials again), so the revocations in effect can go.
		r.cutoff = max(r.cutoff, now.UnixNano())
		for id, t := range r.at {
			if !now.Before(t) {
				delete(r.at, id)
			}
		}
	}
	if len(r.at) >= maxRevokedKeys {
		// Still full, of rotations in their grace period: refuse every key-earned cookie issued
		// before the last of them takes effect (fails closed; 10,000 rotations at once).
		r.cutoff = max(r.cutoff, now.UnixNano(), at.UnixNano())
		for _, t := range r.at {
			r.cutoff = max(r.cutoff, t.UnixNano())
		}
		clear(r.at)
		return
	}
	if old, ok := r.at[keyID]; !ok || at.Before(old) {
		r.at[keyID] = at
	}
}

// keyRevoked reports whether g was earned with a stream key that is revoked at now.
func (h *Handler) keyRevoked(g Grant, now time.Time) bool {
	if g.KeyID == "" {
		return false
	}
	r := &h.revoked
	r.mu.Lock()
	defer r.mu.Unlock()
	if g.Issued < r.cutoff {
		return true
	}
	at, ok := r.at[g.KeyID]
	return ok && !now.Before(at)
}
