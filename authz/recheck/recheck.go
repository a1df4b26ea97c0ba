// Package recheck remembers, for servers that never ask again about a running session (MediaMTX,
// SRS), the request that admitted each one, so that gatehouse can decide it again after a reload
// (a user or key removed, revoked: true, a ban) and notice when its grant expires. Those servers
// cannot end a session at a time (authz.Request.CanEndAt is false), so the caller ends what
// Recheck and Expired return through the server's API (package revoke).
//
// The remembered requests hold the client's credentials: they stay in memory, are never logged
// or listed (Sessions returns live.Session, which holds none) and are dropped when the session is
// forgotten. The table is bounded: when full, it forgets its least recently seen reader, or
// its least recently seen publisher when it holds no reader.
package recheck

import (
	"container/list"
	"context"
	"log/slog"
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
	log *slog.Logger

	mu      sync.Mutex
	m       map[string]*list.Element              // of *entry, in lru[class(entry)]
	byPath  map[string]map[*list.Element]struct{} // the same elements by session path (ForgetPath)
	lru     [2]list.List                          // readers, publishers; front: most recently seen
	next    time.Time                             // the earliest grant expiry in m; zero: none
	evicted uint64                                // sessions dropped to make room, ever
	unwarn  uint64                                // of those, not yet in a log line
	warned  time.Time                             // the last eviction warning
}

type entry struct {
	s       live.Session
	req     authz.Request // with its credentials: memory only
	expires time.Time     // the grant's end; zero: none
	seen    time.Time
}

// Classes of sessions, one LRU list each: readers are evicted first.
const (
	readers    = 0
	publishers = 1
)

func class(s live.Session) int {
	if s.Publish {
		return publishers
	}
	return readers
}

// warnEvery spaces the eviction warnings: one line per burst of evictions, with its count.
const warnEvery = time.Minute

// New returns a table of at most max sessions (max <= 0: 10000). ttl (0: never) is how long a
// session is kept without news, for servers that report no end (MediaMTX): older entries are
// neither listed nor re-checked, and make room for new ones. now is the clock (nil: time.Now);
// log (nil: discard) gets a warning when a full table evicts sessions.
func New(max int, ttl time.Duration, now func() time.Time, log *slog.Logger) *Table {
	if max <= 0 {
		max = 10_000
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Table{max: max, ttl: ttl, now: now, log: log, m: map[string]*list.Element{},
		byPath: map[string]map[*list.Element]struct{}{}}
}

// Add remembers s, admitted by req with decision d (an allow; anything else is ignored), and
// reports whether it did. It copies req. Adding an id again replaces its entry and counts as
// news of it. A full table makes room by forgetting stale sessions, then its least recently
// seen reader, and only when it holds no reader its least recently seen publisher: refusing
// the new one instead would leave a session that is running now unchecked and unended at its
// grant's expiry, for the sake of one that has most likely ended unreported. Readers go first
// because reading is often anonymous and cheap: a flood of read sessions must not push a
// long-running publisher out (only publishers, which need publish credentials, can). Evictions
// are counted (Evicted) and logged at WARN, once per burst with their count.
func (t *Table) Add(s live.Session, req *authz.Request, d authz.Decision) bool {
	if s.ID == "" || !d.Allowed() {
		return false
	}
	now := t.now()
	e := &entry{s: s, req: *req, expires: d.Expires, seen: now}
	t.mu.Lock()
	if el, ok := t.m[s.ID]; ok && class(el.Value.(*entry).s) == class(s) && el.Value.(*entry).s.Path == s.Path {
		el.Value = e
		t.lru[class(s)].MoveToFront(el)
	} else {
		if ok {
			t.remove(el) // the id changed class or path: make room in its new list and index
		}
		t.evictStale(now)
		if len(t.m) >= t.max {
			victim := t.lru[readers].Back()
			if victim == nil {
				victim = t.lru[publishers].Back()
			}
			t.remove(victim)
			t.evicted++
			t.unwarn++
		}
		el := t.lru[class(s)].PushFront(e)
		t.m[s.ID] = el
		set := t.byPath[s.Path]
		if set == nil {
			set = map[*list.Element]struct{}{}
			t.byPath[s.Path] = set
		}
		set[el] = struct{}{}
	}
	t.noteExpiry(d.Expires)
	var warn uint64
	if t.unwarn > 0 && (t.warned.IsZero() || now.Sub(t.warned) >= warnEvery) {
		warn, t.unwarn, t.warned = t.unwarn, 0, now
	}
	total := t.evicted
	t.mu.Unlock()
	if warn > 0 {
		t.log.Warn("recheck: session table full: forgot the least recently seen sessions, which can no longer be re-checked or ended at expiry",
			"evicted", warn, "evicted_total", total, "max", t.max)
	}
	return true
}

// Evicted returns how many sessions a full table has forgotten to make room, since New.
func (t *Table) Evicted() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.evicted
}

func (t *Table) stale(e *entry, now time.Time) bool {
	return t.ttl > 0 && now.Sub(e.seen) >= t.ttl
}

// evictStale drops the stale entries, which are the least recently seen: amortised O(1).
func (t *Table) evictStale(now time.Time) {
	for c := range t.lru {
		for el := t.lru[c].Back(); el != nil && t.stale(el.Value.(*entry), now); el = t.lru[c].Back() {
			t.remove(el)
		}
	}
}

func (t *Table) remove(el *list.Element) {
	e := el.Value.(*entry)
	delete(t.m, e.s.ID)
	if set := t.byPath[e.s.Path]; set != nil {
		delete(set, el)
		if len(set) == 0 {
			delete(t.byPath, e.s.Path)
		}
	}
	t.lru[class(e.s)].Remove(el)
}

// all returns every entry, publishers first, each class most recently seen first.
func (t *Table) all() []*list.Element {
	out := make([]*list.Element, 0, len(t.m))
	for _, c := range [...]int{publishers, readers} {
		for el := t.lru[c].Front(); el != nil; el = el.Next() {
			out = append(out, el)
		}
	}
	return out
}

func (t *Table) noteExpiry(exp time.Time) {
	if !exp.IsZero() && (t.next.IsZero() || exp.Before(t.next)) {
		t.next = exp
	}
}

// Forget drops the session id and its request (the server reported its end, or it was kicked).
func (t *Table) Forget(id string) {
	t.mu.Lock()
	if el, ok := t.m[id]; ok {
		t.remove(el)
	}
	t.mu.Unlock()
}

// ForgetPath drops every session on path (publishers and readers) except the one with id keep,
// for servers that allow one publisher per stream (OME): a newer publisher of a path means the
// earlier ones ended, even if their end was never reported, and a re-check must not return one
// of them to be ended by name, which would end the newer one. It runs once per admitted publish,
// on the hook's path: an index by path makes it cost that path's sessions, not the table's.
func (t *Table) ForgetPath(path, keep string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for el := range t.byPath[path] { // deleting from the set being ranged over is allowed
		if el.Value.(*entry).s.ID != keep {
			t.remove(el)
		}
	}
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
	for _, el := range t.all() {
		if e := el.Value.(*entry); !t.stale(e, now) {
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
	for _, el := range t.all() {
		e := el.Value.(*entry)
		switch {
		case e.expires.IsZero():
		case !now.Before(e.expires):
			if !t.stale(e, now) {
				out = append(out, e.s)
			}
			t.remove(el)
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
	for _, el := range t.all() {
		if e := el.Value.(*entry); !t.stale(e, now) {
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
		if el, ok := t.m[e.s.ID]; ok && el.Value == e { // not forgotten or replaced meanwhile
			switch {
			case !d.Keep():
				t.remove(el)
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
