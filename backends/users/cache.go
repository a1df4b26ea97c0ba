package users

import (
	"container/list"
	"sync"
	"time"
)

// cache remembers successful verifications: a bounded LRU of keys, each valid until its expiry.
// Keys are HMACs (see Backend.cacheKey), so the cache holds no credential. Only successes are
// stored, so a client that does not know a credential cannot add entries or evict a legitimate
// client's. Safe for concurrent use.
type cache struct {
	mu    sync.Mutex
	ttl   time.Duration
	size  int
	ll    *list.List // front: most recently used; values are *cacheEntry
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	key     [32]byte
	expires time.Time
}

func newCache(size int, ttl time.Duration) *cache {
	return &cache{ttl: ttl, size: size, ll: list.New(), items: make(map[[32]byte]*list.Element, min(size, 1024))}
}

// get reports whether key is present and unexpired at now; an expired entry is dropped.
func (c *cache) get(key [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return false
	}
	if !now.Before(el.Value.(*cacheEntry).expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return false
	}
	// Sliding: an entry in use stays (a crowd of viewers with one password never meets an
	// expiry all at once, which made every one of them wait for a new derivation). The answer
	// cannot go stale: it is a deterministic function of the stored hash and the guess, and the
	// cache is dropped with the backend on every reload.
	el.Value.(*cacheEntry).expires = now.Add(c.ttl)
	c.ll.MoveToFront(el)
	return true
}

// put stores key until now+ttl, evicting the least recently used entry when full.
func (c *cache) put(key [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := now.Add(c.ttl)
	if el, ok := c.items[key]; ok {
		el.Value.(*cacheEntry).expires = exp
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, expires: exp})
	for c.ll.Len() > c.size {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

// len returns the number of entries, expired or not.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
