package jwks

import (
	"log/slog"
	"sync/atomic"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
)

// ownProvider returns the in-process provider that verifies the tokens iss mints: its iss,
// audience and maximum lifetime, EdDSA only, exp required, keys read from iss.KeySet.
func ownProvider(iss *tokens.Issuer, now func() time.Time, log *slog.Logger) *provider {
	p := &provider{
		src:         iss,
		name:        iss.Name(),
		issuer:      iss.Name(),
		audience:    iss.Audience(),
		maxLifetime: iss.MaxTTL(),
		claimKey:    tokens.ClaimKey,
		roles:       map[string]authz.Permissions{},
		scopes:      map[string]authz.Permissions{},
		algs:        []string{"EdDSA"},
		leeway:      DefaultLeeway,
		requireExp:  true,
		log:         log,
		now:         now,
		keys:        new(atomic.Pointer[keySet]),
		static:      true,
		kick:        make(chan struct{}, 1),
		firstDone:   make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	p.parser = p.newParser()
	return p
}

// keySet returns the provider's current key snapshot (nil: never fetched). For gatehouse's own
// issuer it follows the issuer's rotations, converting each published set once: the snapshot
// keeps the issuer's generation, so grants cached against a retired set are re-verified.
func (p *provider) keySet() *keySet {
	if p.src == nil {
		return p.keys.Load()
	}
	pub := p.src.KeySet()
	if ks := p.keys.Load(); ks != nil && ks.gen == pub.Gen {
		return ks
	}
	ks := &keySet{byKID: make(map[string]*verifyKey, len(pub.Keys)), gen: pub.Gen}
	for _, k := range pub.Keys {
		vk := &verifyKey{kid: k.ID, alg: "EdDSA", pub: k.Public}
		ks.byKID[k.ID] = vk
		ks.all = append(ks.all, vk)
	}
	p.keys.Store(ks) // a racing call may store an older set; the next call converts again
	return ks
}
