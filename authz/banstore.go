package authz

import (
	"cmp"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ban subject kinds. An operator's kick bans a key id or an identity (refused when a method
// allows them); brute-force protection bans a client address prefix or a hashed user name
// (refused before any method runs).
const (
	BanKey      = "key"      // a stream key id (never the secret), from a kick
	BanIdentity = "identity" // an established identity, from a kick
	BanIP       = "ip"       // a client address prefix: /32 for IPv4, /64 for IPv6
	BanUser     = "user"     // a presented user name, as UserSubject hashes it
)

// BanSubject is what a ban or a failure counter applies to: a kind (BanKey, BanIdentity, BanIP,
// BanUser) and a value that is never a secret.
type BanSubject struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Ban is one temporary refusal.
type Ban struct {
	Subject BanSubject `json:"subject"`
	Until   time.Time  `json:"until"`
	// Reason says who banned: "operator" (a kick) or "bruteforce".
	Reason string `json:"reason"`
	// Strike counts the brute-force bans of the subject in a row (1, 2, ...: the ban doubled
	// Strike-1 times); 0 for an operator's ban.
	Strike int `json:"strike,omitempty"`
}

// BanStore holds bans. The engine's default is NewMemoryBans(MaxBans); an implementation shared
// by several replicas (Redis) can replace it with WithBanStore. Implementations are safe for
// concurrent use and never block on the network for long (the engine asks on every request
// before deciding).
type BanStore interface {
	// Put adds b, replacing any ban of the same subject. It may refuse with ErrTooManyBans.
	Put(b Ban, now time.Time) error
	// Until returns when the ban of s ends and true, or false when s is not banned at now.
	Until(s BanSubject, now time.Time) (time.Time, bool)
	// List returns the bans in force at now, the soonest to end first.
	List(now time.Time) []Ban
	// Lift removes the ban of s and reports whether there was one in force.
	Lift(s BanSubject, now time.Time) bool
}

// Counter counts failed attempts per subject for brute-force protection. The engine's default
// is NewMemoryCounter(DefaultMaxCounters). Implementations are safe for concurrent use.
type Counter interface {
	// Fail records one failure of s at now and returns the failures counted in the current
	// window (a window opens at the first failure and lasts window). fp is a digest of what the
	// client presented (Engine computes a keyed hash, never the credential; 0: none): a failure
	// with an fp that s already failed with in the current window is not counted again, so a
	// client repeating one stale credential (a player re-fetching with an old key) counts once
	// while every distinct guess counts. Implementations may remember only a few recent fps per
	// subject (a repeat of an older one then counts again: never fewer counts than guesses).
	Fail(s BanSubject, fp uint64, now time.Time, window time.Duration) int
	// Strike records that s was banned at now and returns how many bans in a row it has had,
	// counting this one; a subject with no ban for quiet forgets its earlier ones. It also
	// clears the failures.
	Strike(s BanSubject, now time.Time, quiet time.Duration) int
	// Reset forgets the failures of s (a success), keeping its strikes.
	Reset(s BanSubject)
}

// ErrTooManyBans is returned when a BanStore holds as many unexpired bans as it may.
var ErrTooManyBans = errors.New("authz: too many bans")

// MaxBans bounds the bans the default store holds; expired ones are dropped first.
const MaxBans = 10_000

// DefaultMaxCounters bounds the subjects the default Counter tracks (about 200 bytes each, with
// their recent failure fingerprints: some 20 MB at most).
const DefaultMaxCounters = 100_000

// memoryBans is the in-process BanStore: a map bounded by max unexpired bans.
type memoryBans struct {
	mu    sync.RWMutex
	max   int
	m     map[BanSubject]Ban
	swept time.Time    // the last sweep of expired bans when full
	n     atomic.Int64 // len(m), read without the lock
}

// empty reports, without locking, whether no ban is held (expired ones included): the engine
// then skips hashing the user name on every request.
func (b *memoryBans) empty() bool { return b.n.Load() == 0 }

// NewMemoryBans returns an in-process BanStore holding at most max unexpired bans (max <= 0:
// MaxBans). It starts no goroutines; expired bans are dropped as they are met or to make room.
func NewMemoryBans(max int) BanStore {
	if max <= 0 {
		max = MaxBans
	}
	return &memoryBans{max: max, m: map[BanSubject]Ban{}}
}

func (b *memoryBans) Put(n Ban, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[n.Subject]; !ok && len(b.m) >= b.max {
		if now.Sub(b.swept) >= time.Second { // a full sweep costs max steps: once a second at most
			b.swept = now
			for k, v := range b.m {
				if !now.Before(v.Until) {
					delete(b.m, k)
				}
			}
		}
		if len(b.m) >= b.max && n.Reason == "bruteforce" {
			// Full of unexpired bans: an attacker rotating addresses must not be able to stop
			// the next one being banned, so a brute-force ban (a random one: map order) makes
			// room; an operator's ban is never dropped.
			for k, v := range b.m {
				if v.Reason == "bruteforce" {
					delete(b.m, k)
					break
				}
			}
		}
		if len(b.m) >= b.max {
			return ErrTooManyBans
		}
	}
	b.m[n.Subject] = n
	b.n.Store(int64(len(b.m)))
	return nil
}

func (b *memoryBans) Until(s BanSubject, now time.Time) (time.Time, bool) {
	b.mu.RLock() // every request asks: readers share the lock
	v, ok := b.m[s]
	b.mu.RUnlock()
	if !ok {
		return time.Time{}, false
	}
	if !now.Before(v.Until) {
		// Drop it as it is met, so that once every ban has run out empty() lets the engine skip
		// the ban checks again (without this only Put and List removed expired bans).
		b.mu.Lock()
		if cur, still := b.m[s]; still && !now.Before(cur.Until) {
			delete(b.m, s)
			b.n.Store(int64(len(b.m)))
		}
		b.mu.Unlock()
		return time.Time{}, false
	}
	return v.Until, true
}

func (b *memoryBans) List(now time.Time) []Ban {
	b.mu.Lock()
	out := make([]Ban, 0, len(b.m))
	for k, v := range b.m {
		if !now.Before(v.Until) {
			delete(b.m, k)
			continue
		}
		out = append(out, v)
	}
	b.n.Store(int64(len(b.m)))
	b.mu.Unlock()
	slices.SortFunc(out, func(x, y Ban) int {
		return cmp.Or(x.Until.Compare(y.Until), cmp.Compare(x.Subject.Kind, y.Subject.Kind), cmp.Compare(x.Subject.Value, y.Subject.Value))
	})
	return out
}

func (b *memoryBans) Lift(s BanSubject, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[s]
	delete(b.m, s)
	b.n.Store(int64(len(b.m)))
	return ok && now.Before(v.Until)
}

// counterShards splits the counter so that concurrent failures rarely share a lock.
const counterShards = 16

// memoryCounter is the in-process Counter: counterShards maps, each an LRU bounded by its share
// of max entries, so an attacker rotating addresses evicts the oldest counters instead of
// growing memory.
type memoryCounter struct {
	seed   maphash.Seed
	shards [counterShards]counterShard
	n      atomic.Int64 // subjects tracked over all shards, read without a lock
}

// empty reports, without locking, whether no subject is tracked: an allow then has no counter
// to reset, and the engine skips hashing the user name for it.
func (c *memoryCounter) empty() bool { return c.n.Load() == 0 }

type counterShard struct {
	mu         sync.Mutex
	n          *atomic.Int64 // the counter's total
	max        int
	m          map[BanSubject]*counterEntry
	head, tail *counterEntry // most recently used at head
}

// recentFailures bounds the fingerprints of failures a counter entry remembers in its window.
const recentFailures = 8

type counterEntry struct {
	s          BanSubject
	failures   int
	start      time.Time              // the window's opening failure
	recent     [recentFailures]uint64 // fingerprints of this window's counted failures; 0: free
	nextFP     int                    // where the next fingerprint goes (oldest overwritten)
	strikes    int
	lastStrike time.Time
	prev, next *counterEntry
}

// NewMemoryCounter returns an in-process Counter tracking at most max subjects (max <= 0:
// DefaultMaxCounters), evicting the least recently failed beyond that. It starts no goroutines.
func NewMemoryCounter(max int) Counter {
	if max <= 0 {
		max = DefaultMaxCounters
	}
	c := &memoryCounter{seed: maphash.MakeSeed()}
	per := max / counterShards
	if per < 1 {
		per = 1
	}
	for i := range c.shards {
		c.shards[i].max = per
		c.shards[i].n = &c.n
		c.shards[i].m = map[BanSubject]*counterEntry{}
	}
	return c
}

// Len returns the subjects tracked (for tests of the bound).
func (c *memoryCounter) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (c *memoryCounter) shard(s BanSubject) *counterShard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(s.Kind)
	h.WriteByte(0)
	h.WriteString(s.Value)
	return &c.shards[h.Sum64()%counterShards]
}

func (c *memoryCounter) Fail(s BanSubject, fp uint64, now time.Time, window time.Duration) int {
	sh := c.shard(s)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.get(s, true)
	if e.failures == 0 || now.Sub(e.start) >= window {
		e.failures, e.start, e.recent, e.nextFP = 0, now, [recentFailures]uint64{}, 0
	}
	if fp != 0 {
		for _, r := range e.recent {
			if r == fp {
				return e.failures // a repeat, not a new guess
			}
		}
		e.recent[e.nextFP] = fp
		e.nextFP = (e.nextFP + 1) % recentFailures
	}
	e.failures++
	return e.failures
}

func (c *memoryCounter) Strike(s BanSubject, now time.Time, quiet time.Duration) int {
	sh := c.shard(s)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.get(s, true)
	if e.strikes > 0 && now.Sub(e.lastStrike) >= quiet {
		e.strikes = 0
	}
	e.strikes++
	e.lastStrike, e.failures = now, 0
	return e.strikes
}

func (c *memoryCounter) Reset(s BanSubject) {
	sh := c.shard(s)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.get(s, false); e != nil {
		e.failures = 0
		if e.strikes == 0 {
			sh.remove(e)
		}
	}
}

// get returns s's entry, moved to the front; with add, a new one (evicting the least recently
// used when full), else nil when absent.
func (sh *counterShard) get(s BanSubject, add bool) *counterEntry {
	if e, ok := sh.m[s]; ok {
		sh.unlink(e)
		sh.pushFront(e)
		return e
	}
	if !add {
		return nil
	}
	if len(sh.m) >= sh.max && sh.tail != nil {
		sh.remove(sh.tail)
	}
	e := &counterEntry{s: s}
	sh.m[s] = e
	sh.n.Add(1)
	sh.pushFront(e)
	return e
}

func (sh *counterShard) remove(e *counterEntry) {
	sh.unlink(e)
	delete(sh.m, e.s)
	sh.n.Add(-1)
}

func (sh *counterShard) unlink(e *counterEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else if sh.head == e {
		sh.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else if sh.tail == e {
		sh.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (sh *counterShard) pushFront(e *counterEntry) {
	e.next = sh.head
	if sh.head != nil {
		sh.head.prev = e
	}
	sh.head = e
	if sh.tail == nil {
		sh.tail = e
	}
}
