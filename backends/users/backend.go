package users

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"gatehouse/authz"
)

// Option configures New.
type Option func(*options)

type options struct {
	now       func() time.Time
	maxArgon2 int
	failShare float64
}

// WithClock sets the clock used for cache expiry (default time.Now; nil keeps the default).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithMaxConcurrentArgon2 bounds how many argon2 derivations run at once (default half of
// GOMAXPROCS, at least one: derivations, failed or not, never take every core from cached and
// token decisions). Each one allocates its m KiB, so this bounds the memory an unauthenticated
// flood can claim.
func WithMaxConcurrentArgon2(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxArgon2 = n
		}
	}
}

// Backend decides requests against a user list with MediaMTX's algorithm. It is immutable apart
// from its verification cache, safe for concurrent use, and starts no goroutines (x/crypto's
// argon2 runs p short-lived ones per derivation); there is nothing to close. A config reload
// builds a new Backend, which drops the cache.
type Backend struct {
	users  []User
	cache  *cache // nil: caching disabled
	key    [32]byte
	macs   sync.Pool // of HMAC-SHA256 keyed with key: the cache-hit path allocates no hash state
	now    func() time.Time
	sem    chan struct{}
	pace   pacer // failed derivations' CPU budget
	flight singleflight.Group
	dummy  *Credential // verified against when no user name matched; nil without named users

	argon2Runs  atomic.Uint64
	cacheHits   atomic.Uint64
	cacheMisses atomic.Uint64
}

// New returns a Backend for cfg. Users whose User credential is empty (only possible for a Config
// built in code; decoding rejects it, as MediaMTX does) never match.
func New(cfg Config, opts ...Option) *Backend {
	o := options{now: time.Now, maxArgon2: max(1, runtime.GOMAXPROCS(0)/2), failShare: DefaultArgon2FailureShare}
	for _, opt := range opts {
		opt(&o)
	}
	b := &Backend{now: o.now, sem: make(chan struct{}, o.maxArgon2)}
	b.pace.budget = o.failShare * float64(runtime.GOMAXPROCS(0))
	rand.Read(b.key[:]) // never fails since Go 1.24
	b.macs.New = func() any { return hmac.New(sha256.New, b.key[:]) }
	for _, u := range cfg.Users {
		if u.User.IsEmpty() {
			continue
		}
		u.IPs = slices.Clone(u.IPs)
		u.Permissions = slices.Clone(u.Permissions)
		b.users = append(b.users, u)
	}
	size := DefaultCacheSize
	if cfg.CacheSize != nil {
		size = *cfg.CacheSize
	}
	if size > 0 {
		b.cache = newCache(size, cfg.CacheTTL.Or(DefaultCacheTTL))
	}
	b.dummy = dummyFor(b.users)
	return b
}

// dummyFor returns a credential that costs as much to check as the most expensive named user's
// pass and matches nothing (random digest or key), or nil if no named user has a pass to check.
func dummyFor(users []User) *Credential {
	var worst *Credential
	for i := range users {
		u := &users[i]
		if u.User.IsAny() {
			continue
		}
		p := &u.Pass
		switch {
		case p.kind == kindArgon2:
			if worst == nil || worst.kind != kindArgon2 ||
				uint64(p.phc.memory)*uint64(p.phc.time) > uint64(worst.phc.memory)*uint64(worst.phc.time) {
				worst = p
			}
		case p.kind != kindEmpty && worst == nil:
			worst = p
		}
	}
	if worst == nil {
		return nil
	}
	d := &Credential{kind: kindSHA256}
	if worst.kind == kindArgon2 {
		w := worst.phc
		p := &phc{variant: w.variant, memory: w.memory, time: w.time, threads: w.threads,
			salt: make([]byte, len(w.salt)), key: make([]byte, len(w.key))}
		rand.Read(p.salt)
		rand.Read(p.key)
		d = &Credential{kind: kindArgon2, phc: p, src: prefixArgon2 + p.String()}
	} else {
		rand.Read(d.digest[:])
	}
	return d
}

// Stats counts the work a Backend has done, for tests and metrics.
type Stats struct {
	Argon2Runs   uint64 // argon2 derivations performed, including equal-cost dummies
	CacheHits    uint64 // argon2 verifications answered from the cache
	CacheMisses  uint64 // argon2 verifications the cache could not answer
	CacheEntries int    // entries now in the cache, including expired ones not yet dropped
}

// Stats returns the counters so far.
func (b *Backend) Stats() Stats {
	s := Stats{Argon2Runs: b.argon2Runs.Load(), CacheHits: b.cacheHits.Load(), CacheMisses: b.cacheMisses.Load()}
	if b.cache != nil {
		s.CacheEntries = b.cache.len()
	}
	return s
}

// BoundByContext implements authz.ContextBound: the waits for an argon2 slot, the failure
// pacing and a shared derivation all select on the context; one derivation is the longest
// stretch of work.
func (b *Backend) BoundByContext() bool { return true }

// Authorize implements authz.Backend with MediaMTX's algorithm: users in order, the first whose
// IPs, permissions and credentials (in that order) all match allows, with the user name the
// client sent as the identity. `user: any` matches without looking at credentials and allows
// anonymously (empty Identity), whatever user name the client sent.
//
// A request without a password pair (authz.Request.HasPassword: nothing, a token only, or a user
// name with a token in the password field) is judged as if it carried no user and no pass: only
// `user: any` grants can allow it, and no password hash is computed. That depends on the kinds
// the request carries, never on the user name, so timing reveals no names.
//
// When nothing allows:
//   - no password pair in the request: Abstain. The chain then answers 401 no_credentials (so
//     MediaMTX challenges the client) unless another method has a stronger answer; returning
//     Unauthenticated here would mask, e.g., a JWT method's "token expired" for token-only
//     requests, because the chain keeps the first of equally ranked denials.
//   - a named user's credentials matched from an allowed IP but no permission covered the
//     request: Forbidden, not_permitted, with that identity (HTTP 403).
//   - otherwise Unauthenticated, bad_credentials (HTTP 401).
//
// The only error is the request's context ending while waiting for an argon2 slot.
func (b *Backend) Authorize(ctx context.Context, req *authz.Request) (authz.Decision, error) {
	ip := req.IP.Unmap().WithZone("")
	var user, pass guess
	if req.HasPassword() {
		user, pass = guess{s: req.User}, guess{s: req.Pass}
	}

	// Pass 1 is MediaMTX's loop. Users whose IP matches but whose permissions do not are set aside:
	// their credentials matter only for choosing 403 over 401, so they are checked after, and
	// only if, nothing allowed. An allowed request therefore costs what it costs in MediaMTX.
	var buf [64]int32 // on the stack: no allocation for up to 64 set-aside users
	deferred := buf[:0]
	nameSeen := false
	for i := range b.users {
		u := &b.users[i]
		if !ipAllowed(u.IPs, ip) {
			continue
		}
		permitted := u.Permissions.Match(req)
		switch {
		case u.User.IsAny():
			if permitted {
				// An any grant carries no identity, whatever the client sent: a name it
				// chose must never reach X-Auth-User, a cookie, the registry or a webhook.
				return authz.Allowing("", time.Time{}), nil
			}
			continue
		case !permitted:
			deferred = append(deferred, int32(i))
			continue
		}
		ok, err := b.check(ctx, &u.User, &user)
		if err != nil {
			return authz.Decision{}, err
		}
		if !ok {
			continue
		}
		nameSeen = true
		if ok, err = b.check(ctx, &u.Pass, &pass); err != nil {
			return authz.Decision{}, err
		} else if ok {
			return authz.Allowing(user.s, time.Time{}), nil // "" without a password pair
		}
	}
	if !req.HasPassword() {
		return authz.Decision{}, nil // Abstain: nothing of ours to judge
	}

	// Pass 2, denials only: does any set-aside user's name and pass match? Its cost is bounded
	// like pass 1's: only users whose IP matched are set aside; each costs one name check (a
	// digest compare, or an argon2 for argon2-hashed names, whose successes are cached), and only
	// users whose name matched, usually one, cost a pass check. It stops at the first match.
	// Over both passes a request costs at most one argon2 per IP-matching argon2-hashed name,
	// one per IP-matching user carrying the sent name, and the dummy below: no more than
	// MediaMTX's loop would cost if every permission matched.
	for _, i := range deferred {
		u := &b.users[i]
		ok, err := b.check(ctx, &u.User, &user)
		if err != nil {
			return authz.Decision{}, err
		}
		if !ok {
			continue
		}
		nameSeen = true
		if ok, err = b.check(ctx, &u.Pass, &pass); err != nil {
			return authz.Decision{}, err
		} else if ok {
			d := authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted to "+string(req.Action)+" here")
			d.Identity = req.User
			return d, nil
		}
	}

	// Equal cost for unknown names: a name that matched nobody would otherwise skip the pass
	// check and answer measurably sooner than a known name with a wrong pass. The dummy costs
	// as much as the most expensive stored pass and never matches (nor enters the cache).
	if !nameSeen && b.dummy != nil {
		if _, err := b.check(ctx, b.dummy, &pass); err != nil {
			return authz.Decision{}, err
		}
	}
	return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "credentials not accepted"), nil
}

// ipAllowed reports whether ip is in one of nets; no nets means any address, as in MediaMTX.
func ipAllowed(nets []netip.Prefix, ip netip.Addr) bool {
	if len(nets) == 0 {
		return true
	}
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// guess is a client-supplied value with its SHA-256 computed once per request, however many plain
// or sha256 credentials it is compared with.
type guess struct {
	s    string
	d    [32]byte
	done bool
}

func (g *guess) digest() *[32]byte {
	if !g.done {
		g.d, g.done = sha256.Sum256([]byte(g.s)), true
	}
	return &g.d
}

// check compares a stored credential with a guess: empty matches anything; plain and sha256 are a
// constant-time digest compare; argon2 goes through the cache.
func (b *Backend) check(ctx context.Context, c *Credential, g *guess) (bool, error) {
	switch c.kind {
	case kindEmpty:
		return true, nil
	case kindPlain, kindSHA256:
		return c.checkDigest(g.digest()), nil
	}
	return b.checkArgon2(ctx, c, g.s)
}

// checkArgon2 answers from the cache if it can. Otherwise identical concurrent verifications (a
// crowd of viewers reconnecting with one password) share one derivation, and a success is cached.
func (b *Backend) checkArgon2(ctx context.Context, c *Credential, guess string) (bool, error) {
	if b.cache == nil {
		return b.derive(ctx, c.phc, guess)
	}
	k := b.cacheKey(c.src, guess)
	if b.cache.get(k, b.now()) {
		b.cacheHits.Add(1)
		return true, nil
	}
	b.cacheMisses.Add(1)
	ch := b.flight.DoChan(string(k[:]), func() (any, error) {
		// A caller that missed the cache just before the previous flight stored its result must
		// not derive again.
		if b.cache.get(k, b.now()) {
			return true, nil
		}
		// Not canceled with the first caller: others may be waiting, and a success is worth
		// caching. But bounded by its deadline (the decision timeout): a flood's flights must not
		// queue for a slot, and derive, long after every caller has gone.
		fctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			fctx, cancel = context.WithDeadline(fctx, dl)
		}
		defer cancel()
		ok, err := b.derive(fctx, c.phc, guess)
		if ok {
			b.cache.put(k, b.now())
		}
		return ok, err
	})
	select {
	case r := <-ch:
		return r.Val.(bool), r.Err
	case <-ctx.Done():
		return false, canceled(ctx)
	}
}

// derive runs one argon2 verification once a slot is free.
// Its turn in the failure budget is booked first, so a flood is refused at once (busy) instead
// of queueing for a slot until its deadline. A caller that went without a turn (the budget had
// room when it came) and then waited for a slot asks again once it has one: failures that ended
// meanwhile may have spent the budget. Without that second look, a flood arriving at a quiet
// backend (or when a brute-force source's ban ends) sent hundreds of derivations past the pacer
// in the moment before the first failure was paid for; they then held both slots for seconds,
// starving every other decision of CPU.
func (b *Backend) derive(ctx context.Context, p *phc, guess string) (bool, error) {
	var booked time.Duration
	for {
		var err error
		if booked, err = b.pace.wait(ctx); err != nil {
			if errors.Is(err, errBusy) {
				return false, &authz.ReasonError{Reason: ReasonBusy, Message: err.Error(), Err: err}
			}
			return false, canceled(ctx)
		}
		select {
		case b.sem <- struct{}{}:
		case <-ctx.Done():
			b.pace.settle(booked, 0, false)
			return false, canceled(ctx)
		}
		if booked != 0 || !b.pace.ahead() {
			break // a turn of its own, or the budget still has room
		}
		<-b.sem // failures spent the budget while it waited: take a turn like a newcomer
	}
	defer func() { <-b.sem }()
	b.argon2Runs.Add(1)
	start := time.Now() // CPU time, not the injected clock
	ok := p.verify([]byte(guess))
	b.pace.settle(booked, time.Since(start), !ok)
	return ok, nil
}

// cacheKey is HMAC-SHA256(per-Backend random key, stored credential || 0 || guess): the cache
// never holds a password, and its keys are useless outside this process.
func (b *Backend) cacheKey(stored, guess string) [32]byte {
	m := b.macs.Get().(hash.Hash)
	defer b.macs.Put(m)
	m.Reset()
	m.Write([]byte(stored))
	m.Write([]byte{0})
	m.Write([]byte(guess))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func canceled(ctx context.Context) error {
	return &authz.ReasonError{Reason: authz.ReasonCanceled, Message: "users: canceled while waiting to verify a password", Err: ctx.Err()}
}
