package httpauth

import (
	"container/list"
	"sync"
	"time"

	"gatehouse/authz"
)

// cache is a bounded, least-recently-used map of decisions with per-entry expiry. Its mutex is
// held only for map and list operations, never across I/O.
type cache struct {
	mu  sync.Mutex
	max int
	m   map[cacheKey]*list.Element
	ll  list.List // of *entry; front is most recently used
}

type entry struct {
	key   cacheKey
	d     authz.Decision
	until time.Time
}

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[cacheKey]*list.Element, min(max, 1024))}
}

// get returns the decision stored for k if it has not expired at now.
func (c *cache) get(k cacheKey, now time.Time) (authz.Decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return authz.Decision{}, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.until) {
		c.ll.Remove(el)
		delete(c.m, k)
		return authz.Decision{}, false
	}
	c.ll.MoveToFront(el)
	return e.d, true
}

// put stores d for k until the given time, evicting the least recently used entry when full.
func (c *cache) put(k cacheKey, d authz.Decision, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		e := el.Value.(*entry)
		e.d, e.until = d, until
		c.ll.MoveToFront(el)
		return
	}
	for c.ll.Len() >= c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*entry).key)
	}
	c.m[k] = c.ll.PushFront(&entry{key: k, d: d, until: until})
}

// len returns the number of stored entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
