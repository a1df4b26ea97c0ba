// Package recheck remembers, for servers that never ask again about a running session (MediaMTX,
// SRS), the request that admitted each one, so that gatehouse can decide it again after a reload
// (a user or key removed, revoked: true, a ban) and notice when its grant expires. Those servers
// cannot end a session at a time (authz.Request.CanEndAt is false), so the caller ends what
// Recheck and Expired return through the server's API (package revoke).
//
// The remembered requests hold the client's credentials: they stay in memory, are never logged
// or listed (Sessions returns live.Session, which holds none) and are dropped when the session is
// forgotten. The table is bounded.
package recheck

import (
	"context"
	"sync"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Table remembers admitted sessions by id. Build it with New; it starts no goroutines and is
// safe for concurrent use.
type Table struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	m    map[string]*entry
	next time.Time // the earliest grant expiry in m; zero: none
}

type entry struct {
	s       live.Session
	req     authz.Request // with its credentials: memory only
	expires time.Time     // the grant's end; zero: none
	seen    time.Time
}

// New returns a table of at most max sessions (max <= 0: 10000). ttl (0: never) is how long a
// session is kept without news, for servers that report no end (MediaMTX): older entries are
// neither listed nor re-checked, and make room for new ones. now is the clock (nil: time.Now).
func New(max int, ttl time.Duration, now func() time.Time) *Table {
	if max <= 0 {
		max = 10_000
	}
	if now == nil {
		now = time.Now
	}
	return &Table{max: max, ttl: ttl, now: now, m: map[string]*entry{}}
}

// Add remembers s, admitted by req with decision d (an allow; anything else is ignored). It
// copies req. It reports false when the table is full: that session can then neither be
// re-checked nor ended at its grant's expiry.
func (t *Table) Add(s live.Session, req *authz.Request, d authz.Decision) bool {
	if s.ID == "" || !d.Allowed() {
		return false
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[s.ID]; !ok && len(t.m) >= t.max {
		t.evictOld(now)
		if len(t.m) >= t.max {
			return false
		}
	}
	t.m[s.ID] = &entry{s: s, req: *req, expires: d.Expires, seen: now}
	t.noteExpiry(d.Expires)
	return true
}

func (t *Table) stale(e *entry, now time.Time) bool {
	return t.ttl > 0 && now.Sub(e.seen) >= t.ttl
}

func (t *Table) evictOld(now time.Time) {
	for id, e := range t.m {
		if t.stale(e, now) {
			delete(t.m, id)
		}
	}
}

func (t *Table) noteExpiry(exp time.Time) {
	if !exp.IsZero() && (t.next.IsZero() || exp.Before(t.next)) {
		t.next = exp
	}
}

// Forget drops the session id and its request (the server reported its end, or it was kicked).
func (t *Table) Forget(id string) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

// Len returns how many sessions are remembered.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Sessions lists the remembered sessions (without credentials).
func (t *Table) Sessions() []live.Session {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]live.Session, 0, len(t.m))
	for _, e := range t.m {
		if !t.stale(e, now) {
			out = append(out, e.s)
		}
	}
	return out
}

// Expired returns the sessions whose grant has expired, and forgets them. It costs one
// comparison until the earliest expiry comes.
func (t *Table) Expired() []live.Session {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next.IsZero() || now.Before(t.next) {
		return nil
	}
	var out []live.Session
	t.next = time.Time{}
	for id, e := range t.m {
		switch {
		case e.expires.IsZero():
		case !now.Before(e.expires):
			if !t.stale(e, now) {
				out = append(out, e.s)
			}
			delete(t.m, id)
		default:
			t.noteExpiry(e.expires)
		}
	}
	return out
}

// Recheck decides every remembered session again with auth, without holding the table's lock
// across a decision, and returns (forgetting them) those whose answer is a real denial
// (authz.Decision.Keep is false). An allowed session takes the new grant's expiry; an undecided
// one (a backend could not answer) keeps running with its previous one. A cancelled ctx stops
// the re-check and ends nothing more.
func (t *Table) Recheck(ctx context.Context, auth Authorizer) []live.Session {
	now := t.now()
	t.mu.Lock()
	all := make([]*entry, 0, len(t.m))
	for _, e := range t.m {
		if !t.stale(e, now) {
			all = append(all, e)
		}
	}
	t.mu.Unlock()
	var denied []live.Session
	for _, e := range all {
		req := e.req
		req.Kind = authz.KindRecheck // a denial ends the session; it is not a guess
		d := auth.Authorize(ctx, &req)
		if ctx.Err() != nil {
			break // a cancelled re-check says nothing about the grants
		}
		t.mu.Lock()
		if t.m[e.s.ID] == e { // not forgotten or replaced meanwhile
			switch {
			case !d.Keep():
				delete(t.m, e.s.ID)
				denied = append(denied, e.s)
			case d.Allowed():
				e.expires = d.Expires
				t.noteExpiry(d.Expires)
			}
		}
		t.mu.Unlock()
	}
	return denied
}
