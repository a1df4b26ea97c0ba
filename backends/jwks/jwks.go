// Package jwks verifies JSON Web Tokens against the key sets of trusted issuers (Keycloak or any
// OIDC provider, via their JWKS URL, or a shared HMAC secret) and gatehouse's own EdDSA tokens,
// minted by package authz/tokens, whose in-process key set it trusts with WithIssuer.
//
// Permissions come from the MediaMTX claim (default mediamtx_permissions, a JSON array of
// {"action","path"} or a JSON string holding that array, parsed strictly) and from configured
// role mappings (Keycloak realm_access / resource_access roles and scope).
//
// # Where the token is taken from
//
// Backend.Authorize verifies Request.Token when it starts with "eyJ" (a JSON object in base64url);
// any other token is not a JWT and is left to other backends. Package authz/creds fills Token
// from "Authorization: Bearer", from the token, jwt (or an adapter's extra) query parameter, and
// from a password shaped like a JWT ("token in the password field": RTSP URL passwords, SRT
// streamid passwords, OBS "Bearer user:pass"), so the backend never parses Request.Query or
// reads Request.Pass. The query-token policy for HTTP protocols (Config.QueryTokenOnHTTP) is
// applied by the engine to every query parameter (authz.Policy).
package jwks

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/tokens"
)

// Sentinel errors of package jwks.
var (
	// ErrConfig is wrapped by every configuration error from New.
	ErrConfig = errors.New("jwks: invalid configuration")
	// ErrJWKSUnavailable is wrapped (inside an authz.ReasonError with reason jwks_unavailable)
	// when a token must be checked against a provider whose keys were never fetched, and by the
	// fetch error of a key set URL that answers an error status (HTTP 503: the IdP is down).
	ErrJWKSUnavailable = errors.New("jwks: key set unavailable")
	// ErrMalformedJWKS is wrapped by fetch errors for documents that are not a usable key set.
	ErrMalformedJWKS = errors.New("jwks: malformed key set")
	// ErrFingerprint is returned when a JWKS server's certificate does not match the pin.
	ErrFingerprint = errors.New("jwks: TLS certificate does not match the pinned fingerprint")
	// ErrNotReady is returned by Ready while some provider has no key set.
	ErrNotReady = errors.New("jwks: not ready")

	// errKeyMismatch: the key named by kid cannot verify the token's alg (algorithm confusion).
	errKeyMismatch = errors.New("jwks: key cannot verify this algorithm")
	// errUnknownKey: no key with the token's kid (or, without kid, no key for its alg).
	errUnknownKey = errors.New("jwks: unknown key")
)

// Reasons put in Decisions (and in the ReasonError for jwks_unavailable). Each failure has its own
// so operators can tell an expired token from a forged one in the logs.
const (
	ReasonTokenExpired     = "token_expired"
	ReasonTokenNotYetValid = "token_not_yet_valid"
	ReasonMissingExp       = "token_missing_exp"
	ReasonBadIssuer        = "bad_issuer"
	ReasonBadAudience      = "bad_audience"
	ReasonUnknownKey       = "unknown_key"
	ReasonBadSignature     = "bad_signature"
	ReasonAlgNotAllowed    = "alg_not_allowed"
	ReasonMalformedToken   = "malformed_token"
	ReasonTokenTooLarge    = "token_too_large"
	ReasonBadPermissions   = "bad_permissions_claim"
	ReasonJWKSUnavailable  = "jwks_unavailable"
	// ReasonTokenLifetime: one of gatehouse's own tokens without iat, or whose exp - iat is longer
	// than the issuer's maximum lifetime (tokens.max_ttl).
	ReasonTokenLifetime = "token_lifetime_exceeded"
)

// Option configures New.
type Option func(*options)

type options struct {
	log    *slog.Logger
	now    func() time.Time
	issuer *tokens.Issuer
	client *http.Client
	prev   *Backend
}

// WithLogger sets the logger (default: discard). Tokens are never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock sets the time source for exp/nbf checks, the cache and refresh rate limits (default
// time.Now; nil keeps the default).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithIssuer trusts gatehouse's own issuer with no further config: a provider named after the
// issuer is added, with the issuer's in-process key set (rotations take effect at once), its
// iss, audience and maximum lifetime, algorithm EdDSA and claim mediamtx_permissions.
func WithIssuer(iss *tokens.Issuer) Option { return func(o *options) { o.issuer = iss } }

// WithHTTPClient sets the client used for JWKS fetches of providers without a fingerprint
// (default: a client with its own transport). Its Timeout should not be shorter than the
// providers' fetch_timeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithPrevious lets New take over, from prev (the Backend that the new one replaces on a config
// reload), every provider whose configuration is unchanged: same Provider settings (URL, issuer,
// audience, algorithms, roles, ...), same WithHTTPClient, or the same *Issuer for the built-in
// provider. A provider taken over keeps its key set, its refresh goroutine and its logger and
// clock, so the reload causes no fetch and no moment without keys; the verified-token cache is
// shared too (when cache_size is unchanged), serving only grants of providers the new Backend
// has. A changed provider starts fresh. prev stays usable until its Close; the goroutine of a
// shared provider stops when the last Backend holding it is closed. nil is ignored.
func WithPrevious(prev *Backend) Option { return func(o *options) { o.prev = prev } }

// Backend verifies JWTs for authz. New starts one refresh goroutine per JWKS provider, or shares
// the running one of a provider taken over WithPrevious; Close releases them, stopping and
// waiting for those no other open Backend holds. It is safe for concurrent use.
type Backend struct {
	providers    []*provider
	owned        map[*provider]bool // the providers above, for cache lookups
	byIssuer     map[string][]*provider
	wildcard     []*provider // providers without an issuer
	maxTokenSize int
	cache        *tokenCache
	client       *http.Client // WithHTTPClient, compared by WithPrevious
	now          func() time.Time
	log          *slog.Logger

	closeOnce sync.Once

	hits, misses atomic.Uint64
}

// New validates cfg and returns a Backend. It does not block on the network: every JWKS provider
// not taken over WithPrevious starts fetching its keys in its own goroutine at once and refreshes
// them every refresh_interval; until a provider's first successful fetch, tokens for it are
// answered with an error (reason jwks_unavailable: fail closed). Call Close to stop the
// goroutines.
func New(cfg Config, opts ...Option) (*Backend, error) {
	o := options{log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	var problems []string
	problems = append(problems, messages(cfg.problems())...)
	for i := range cfg.Providers {
		problems = append(problems, messages(cfg.Providers[i].problems())...)
	}
	if len(cfg.Providers) == 0 && o.issuer == nil {
		problems = append(problems, "no providers (and no issuer)")
	}
	if o.issuer != nil {
		for _, q := range cfg.Providers {
			if q.Issuer == o.issuer.Name() || q.Name == o.issuer.Name() {
				problems = append(problems, fmt.Sprintf("provider %q clashes with the built-in issuer %q", q.Name, o.issuer.Name()))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	b := &Backend{
		owned:        map[*provider]bool{},
		byIssuer:     map[string][]*provider{},
		maxTokenSize: cfg.MaxTokenSize,
		client:       o.client,
		now:          o.now,
		log:          o.log,
	}
	if b.maxTokenSize == 0 {
		b.maxTokenSize = DefaultMaxTokenSize
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	switch {
	case size < 0:
	case o.prev != nil && o.prev.cache != nil && o.prev.cache.max == size:
		b.cache = o.prev.cache
	default:
		b.cache = newTokenCache(size)
	}
	var fresh []*provider
	for i := range cfg.Providers {
		p := b.adopt(o.prev, func(q *provider) bool {
			return q.conf != nil && reflect.DeepEqual(*q.conf, cfg.Providers[i]) && q.clientOpt == o.client
		})
		if p == nil {
			p = b.newProvider(&cfg.Providers[i], o.client)
			fresh = append(fresh, p)
		}
		b.providers = append(b.providers, p)
	}
	if o.issuer != nil {
		p := b.adopt(o.prev, func(q *provider) bool { return q.src == o.issuer })
		if p == nil {
			p = ownProvider(o.issuer, b.now, b.log)
			fresh = append(fresh, p)
		}
		b.providers = append(b.providers, p)
	}
	for _, p := range b.providers {
		b.owned[p] = true
		if p.issuer == "" {
			b.wildcard = append(b.wildcard, p)
		} else {
			b.byIssuer[p.issuer] = append(b.byIssuer[p.issuer], p)
		}
	}
	for _, p := range fresh {
		p.start()
	}
	return b, nil
}

// adopt returns the provider of prev that match accepts, with a reference taken for b, or nil
// when there is none or it was released meanwhile (prev closed).
func (b *Backend) adopt(prev *Backend, match func(*provider) bool) *provider {
	if prev == nil {
		return nil
	}
	for _, q := range prev.providers {
		if match(q) && !b.owned[q] && q.acquire() {
			b.log.Debug("jwks: provider kept across reload", "provider", q.name)
			return q
		}
	}
	return nil
}

func (b *Backend) newProvider(c *Provider, client *http.Client) *provider {
	conf := *c
	p := &provider{
		conf:         &conf,
		clientOpt:    client,
		name:         c.Name,
		url:          c.JWKS,
		issuer:       c.Issuer,
		audience:     c.Audience,
		matchAZP:     c.MatchAZP,
		claimKey:     c.ClaimKey,
		rolesClient:  c.RolesClient,
		roles:        map[string]authz.Permissions{},
		scopes:       map[string]authz.Permissions{},
		algs:         c.algorithms(),
		leeway:       leeway(c.Leeway),
		requireExp:   c.RequireExp == nil || *c.RequireExp,
		refreshEvery: c.RefreshInterval.Or(DefaultRefreshInterval),
		unknownEvery: c.UnknownKIDRefresh.Or(DefaultUnknownKIDRefresh),
		fetchTimeout: c.FetchTimeout.Or(DefaultFetchTimeout),
		log:          b.log,
		now:          b.now,
		keys:         &atomic.Pointer[keySet]{},
		kick:         make(chan struct{}, 1),
		firstDone:    make(chan struct{}),
		stopped:      make(chan struct{}),
	}
	if p.claimKey == "" {
		p.claimKey = DefaultClaimKey
	}
	if p.rolesClient == "" {
		p.rolesClient = p.audience
	}
	if c.HMACSecret != "" {
		p.hmac = []byte(c.HMACSecret)
	}
	for role, perms := range c.Roles {
		p.roles[role] = authz.Permissions(perms)
	}
	for scope, perms := range c.Scopes {
		p.scopes[scope] = authz.Permissions(perms)
	}
	if p.url != "" {
		pin, _ := parseFingerprint(c.Fingerprint) // validated by problems
		switch {
		case client != nil && pin == nil:
			p.client = client
		default:
			p.tr = pinnedTransport(pin)
			p.client = &http.Client{Transport: p.tr, Timeout: p.fetchTimeout}
		}
	}
	p.parser = p.newParser()
	return p
}

func (p *provider) newParser() *jwt.Parser {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(p.algs),
		jwt.WithLeeway(p.leeway),
		jwt.WithTimeFunc(p.now),
		jwt.WithIssuedAt(), // an iat in the future (beyond leeway) is refused, as a future nbf
	}
	if p.issuer != "" {
		opts = append(opts, jwt.WithIssuer(p.issuer))
	}
	if p.requireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	return jwt.NewParser(opts...)
}

// Close releases the providers: the refresh goroutines that no other open Backend shares (see
// WithPrevious) are stopped, their fetches in flight cancelled, and waited for. It is
// idempotent; Authorize keeps working afterwards with the keys already fetched.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		for _, p := range b.providers {
			p.release()
		}
	})
	return nil
}

// Ready returns nil once every provider can verify tokens (its key set was fetched at least
// once), else an error wrapping ErrNotReady that names the providers still waiting.
func (b *Backend) Ready() error {
	var waiting []string
	for _, p := range b.providers {
		if !p.hasKeys() {
			waiting = append(waiting, p.name)
		}
	}
	if len(waiting) == 0 {
		return nil
	}
	return fmt.Errorf("%w: no key set yet for %s", ErrNotReady, strings.Join(waiting, ", "))
}

// Stats is a snapshot of the backend's counters.
type Stats struct {
	CacheHits, CacheMisses uint64
	CacheEntries           int
	Providers              []ProviderStats
}

// ProviderStats describes one provider's key set.
type ProviderStats struct {
	Name        string
	Keys        int    // usable keys in the current set (0: none yet)
	Fetches     uint64 // successful fetches
	FetchErrors uint64
	LastError   string    // of the last fetch attempt; "" if it succeeded
	LastFetch   time.Time // of the last successful fetch; zero: none (or keys from the config)
}

// Stats returns the current counters (cache hits are observable here, e.g. for metrics).
func (b *Backend) Stats() Stats {
	s := Stats{CacheHits: b.hits.Load(), CacheMisses: b.misses.Load()}
	if b.cache != nil {
		s.CacheEntries = b.cache.len()
	}
	for _, p := range b.providers {
		ps := ProviderStats{Name: p.name, Fetches: p.fetches.Load(), FetchErrors: p.fetchErrors.Load()}
		if t := p.lastFetch.Load(); t != 0 {
			ps.LastFetch = time.Unix(0, t)
		}
		if ks := p.keySet(); ks != nil {
			ps.Keys = len(ks.all)
		}
		p.mu.Lock()
		if p.lastError != nil {
			ps.LastError = p.lastError.Error()
		}
		p.mu.Unlock()
		s.Providers = append(s.Providers, ps)
	}
	sort.SliceStable(s.Providers, func(i, j int) bool { return s.Providers[i].Name < s.Providers[j].Name })
	return s
}

// BoundByContext implements authz.ContextBound: waits for a key set fetch select on the
// context; verification is CPU work on a bounded token.
func (b *Backend) BoundByContext() bool { return true }

// Authorize implements authz.Backend. No JWT among the credentials: Abstain. A token that fails
// verification: Unauthenticated with a reason naming the failure. A valid token: Allow when one of
// its permissions (claim or role-mapped) covers the request, else Forbidden (not_permitted); the
// Decision's Identity is preferred_username or sub and Expires is exp. A provider with no key set
// yet: an *authz.ReasonError (jwks_unavailable).
func (b *Backend) Authorize(ctx context.Context, req *authz.Request) (authz.Decision, error) {
	tok := tokenFrom(req)
	if tok == "" {
		return authz.Decision{}, nil
	}
	if len(tok) > b.maxTokenSize {
		return deny(ReasonTokenTooLarge), nil
	}
	var key [32]byte
	if b.cache != nil {
		key = sha256.Sum256([]byte(tok))
		// The cache may be shared with the Backend this one replaced: only grants of our own
		// providers count (a removed or changed provider's grants are not ours to serve).
		if g, ok := b.cache.get(key, b.now()); ok && b.owned[g.prov] {
			b.hits.Add(1)
			return g.decide(req), nil
		}
		b.misses.Add(1)
	}
	g, reason, err := b.verify(ctx, tok)
	if err != nil {
		return authz.Decision{}, err
	}
	if reason != "" {
		return deny(reason), nil
	}
	if b.cache != nil && !g.exp.IsZero() {
		b.cache.put(key, g, b.now())
	}
	return g.decide(req), nil
}

// grant is what a verified token establishes; cached by token digest.
type grant struct {
	prov     *provider
	gen      uint64 // key set generation it was verified against
	hmac     bool   // verified with the provider's HMAC secret (no key set involved)
	identity string
	perms    authz.Permissions
	exp      time.Time
}

func (g *grant) decide(req *authz.Request) authz.Decision {
	if g.perms.Match(req) {
		return authz.Allowing(g.identity, g.exp)
	}
	d := authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "the token does not permit this action on this path")
	d.Identity = g.identity
	d.Expires = g.exp
	return d
}

// message is the human sentence for a reason.
func message(reason string) string {
	switch reason {
	case ReasonTokenExpired:
		return "the token has expired"
	case ReasonTokenNotYetValid:
		return "the token is not valid yet"
	case ReasonMissingExp:
		return "the token has no expiry (exp)"
	case ReasonBadIssuer:
		return "the token's issuer is not trusted"
	case ReasonBadAudience:
		return "the token is meant for another audience"
	case ReasonUnknownKey:
		return "the token is signed by an unknown key"
	case ReasonBadSignature:
		return "the token's signature is invalid"
	case ReasonAlgNotAllowed:
		return "the token's signing algorithm is not allowed"
	case ReasonMalformedToken:
		return "the token is malformed"
	case ReasonTokenTooLarge:
		return "the token is too large"
	case ReasonBadPermissions:
		return "the token's permissions claim is invalid"
	case ReasonTokenLifetime:
		return "the token's lifetime is longer than this issuer allows"
	}
	return "the token was not accepted"
}

func deny(reason string) authz.Decision {
	return authz.Denying(authz.Unauthenticated, reason, message(reason))
}

// leeway returns the configured leeway: the default when none was given, else exactly the value
// given, 0 included (a zero the user wrote must not become 10s).
func leeway(d *conf.Duration) time.Duration {
	if d == nil {
		return DefaultLeeway
	}
	return d.Std()
}
