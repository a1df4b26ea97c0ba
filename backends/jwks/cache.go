package jwks

import (
	"sync"
	"time"
)

// tokenCache maps sha256(token) to the grant it verified to, until the token's exp. It is bounded:
// when full, expired entries are dropped, then arbitrary ones (an eighth of the cache), so an
// attacker minting valid tokens cannot grow memory. Entries verified against a key set that has
// since changed (rotation, revocation) are not served.
type tokenCache struct {
	mu  sync.Mutex
	m   map[[32]byte]*grant
	max int
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[[32]byte]*grant), max: max}
}

func (c *tokenCache) get(key [32]byte, now time.Time) (*grant, bool) {
	c.mu.Lock()
	g, ok := c.m[key]
	if ok && (!now.Before(g.exp) || !g.current()) {
		delete(c.m, key)
		ok = false
	}
	c.mu.Unlock()
	return g, ok
}

func (c *tokenCache) put(key [32]byte, g *grant, now time.Time) {
	if !now.Before(g.exp) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.exp) || !e.current() {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = g
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// current reports whether the grant was verified against the provider's current key set.
func (g *grant) current() bool {
	if g.hmac {
		return true
	}
	ks := g.prov.keySet()
	return ks != nil && ks.gen == g.gen
}
