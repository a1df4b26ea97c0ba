// Package httpauth delegates decisions to an external HTTP service that speaks MediaMTX's
// authHTTPAddress protocol: gatehouse POSTs the same JSON body MediaMTX sends, fields in the same
// order (ip, user, password, token, action, path, protocol, id, query, userAgent; id is null
// without a session; token is the presented token, else the password), so an auth server written
// for MediaMTX works unchanged.
//
// Replies map to decisions:
//   - 2xx: Allow. The identity is the request's user, unless the body is a JSON object with a
//     non-empty "identity" (1–256 printable UTF-8 bytes); a positive "expires_in" (seconds, up to
//     366 days) sets Decision.Expires and caps how long the allow is cached. Any other body,
//     including invalid JSON, is ignored: the status code alone decides.
//   - 401: Unauthenticated (reason bad_credentials, or no_credentials for an anonymous request).
//   - 408, 429, 5xx and anything else: an error, reason upstream_unavailable (never cached).
//   - other 3xx and 4xx: Forbidden (not_permitted) when the request carried credentials, else
//     Unauthenticated (no_credentials), so that MediaMTX-style anonymous first attempts still get
//     a 401 challenge. Redirects are never followed.
//
// Transport errors and timeouts are errors with reason upstream_unavailable: the chain fails
// closed, and fast, because every call is bounded by Config.Timeout (default 2 s).
//
// Unlike MediaMTX, the backend keeps connections alive, caches decisions briefly (allows and
// denials with separate TTLs; a revoked grant may therefore live up to allow_ttl), and collapses
// identical concurrent requests into one upstream call. The cache and the collapsing key cover
// every field the service sees except the session id, so a service that decides per session id
// should run with the cache disabled (size 0), which also restores one call per request.
package httpauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"gatehouse/authz"
)

// Sentinel errors of package httpauth.
var (
	// ErrConfig is wrapped by New's errors for an invalid Config.
	ErrConfig = errors.New("httpauth: invalid configuration")
	// ErrUnavailable is wrapped (inside an *authz.ReasonError with reason upstream_unavailable)
	// when the service gave no usable answer: transport error, timeout, 5xx, 408 or 429.
	ErrUnavailable = errors.New("httpauth: no usable answer from the auth service")
	// ErrFingerprint is wrapped when the server's certificate does not match Config.Fingerprint.
	ErrFingerprint = errors.New("httpauth: server certificate does not match the configured fingerprint")
	// ErrClosed is returned by Authorize after Close.
	ErrClosed = errors.New("httpauth: backend closed")
)

// ReasonExcluded is the Decision reason for a request matched by Config.Exclude.
const ReasonExcluded = "excluded"

// Limits on what is read from the service.
const (
	maxReplyBody   = 64 << 10 // bytes of a reply body read (and parsed, for 2xx)
	maxDrain       = 64 << 10 // further bytes discarded so the connection can be reused
	maxReplyHeader = 64 << 10
	idleConns      = 64 // MaxIdleConnsPerHost: Go's default of 2 would reconnect under load
)

// Backend asks an external HTTP service to decide. It is safe for concurrent use. New starts no
// goroutines; each upstream call runs on its own goroutine (singleflight's) bounded by the
// timeout. The owner calls Close, which cancels calls in flight, waits for them and closes idle
// connections.
type Backend struct {
	address  string // as configured; used for requests only
	safeAddr string // scheme://host/path, for logs and errors
	headers  http.Header
	timeout  time.Duration
	client   *http.Client
	tr       *http.Transport
	exclude  authz.Permissions
	cache    *cache // nil: disabled
	allowTTL time.Duration
	denyTTL  time.Duration
	salt     [32]byte // keys the cache hash, so keys are useless outside this process
	group    singleflight.Group
	log      *slog.Logger
	now      func() time.Time
	obs      Observer // nil: none

	closing context.Context // cancelled by Close; aborts upstream calls
	stop    context.CancelFunc
	mu      sync.RWMutex // orders wg.Add against Close's wg.Wait; never held across I/O
	closed  atomic.Bool
	wg      sync.WaitGroup // upstream calls in flight

	joined func() // test hook: called once a caller has joined the upstream call
}

// Option configures New.
type Option func(*Backend)

// Observer is told about every call to the auth service, for metrics; err is non-nil when the
// call could not decide (unreachable, timeout, bad reply).
type Observer interface {
	Upstream(took time.Duration, err error)
}

// WithObserver reports every upstream call to o (default none).
func WithObserver(o Observer) Option {
	return func(b *Backend) { b.obs = o }
}

// WithLogger sets the logger for upstream problems (default: discard). Lines name the service's
// scheme, host and path, status codes and transport errors; never credentials, header values or
// the service's reply body.
func WithLogger(l *slog.Logger) Option {
	return func(b *Backend) {
		if l != nil {
			b.log = l
		}
	}
}

// WithClock sets the clock used for cache expiry and Decision.Expires (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(b *Backend) {
		if now != nil {
			b.now = now
		}
	}
}

// New checks cfg and returns a Backend with its own connection pool. The caller must Close it.
func New(cfg Config, opts ...Option) (*Backend, error) {
	s, err := cfg.check()
	if err != nil {
		return nil, err
	}
	b := &Backend{
		address:  s.url.String(),
		safeAddr: safeAddress(s.url),
		headers:  s.headers,
		timeout:  s.timeout,
		exclude:  cfg.Exclude,
		allowTTL: s.cache.AllowTTL.Std(),
		denyTTL:  s.cache.DenyTTL.Std(),
		log:      slog.New(slog.DiscardHandler),
		now:      time.Now,
	}
	b.headers.Set("Content-Type", "application/json")
	if b.headers.Get("User-Agent") == "" {
		b.headers.Set("User-Agent", "gatehouse")
	}
	if s.cache.Size > 0 && (b.allowTTL > 0 || b.denyTTL > 0) {
		b.cache = newCache(s.cache.Size)
	}
	if _, err := rand.Read(b.salt[:]); err != nil {
		return nil, fmt.Errorf("httpauth: cache key salt: %w", err)
	}
	for _, o := range opts {
		o(b)
	}

	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if fp := s.fingerprint; fp != nil {
		// MediaMTX's authHTTPFingerprint: the pin replaces chain and name verification.
		tlsConf.InsecureSkipVerify = true
		tlsConf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrFingerprint
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], fp) != 1 {
				return fmt.Errorf("%w (server sent %x)", ErrFingerprint, got)
			}
			return nil
		}
	}
	b.tr = &http.Transport{
		Proxy:                  nil, // as MediaMTX: the auth service is reached directly
		DialContext:            (&net.Dialer{Timeout: s.timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    s.timeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           idleConns,
		MaxIdleConnsPerHost:    idleConns,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxReplyHeader,
		DisableCompression:     true, // replies are tiny; no decompression of untrusted input
	}
	b.client = &http.Client{
		Transport: b.tr,
		// A redirect is answered as a denial, never followed: following would re-send the
		// credentials in the body to wherever the service points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	b.closing, b.stop = context.WithCancel(context.Background())
	return b, nil
}

// Close cancels upstream calls in flight, waits for them to end and closes idle connections.
// Authorize returns ErrClosed afterwards. Close is idempotent and always returns nil.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed.Store(true)
	b.mu.Unlock()
	b.stop()
	b.wg.Wait()
	b.tr.CloseIdleConnections()
	return nil
}

// BoundByContext implements authz.ContextBound: a caller waits for the upstream call (which
// runs on singleflight's goroutine, bounded by the timeout) only until its context ends.
func (b *Backend) BoundByContext() bool { return true }

// Authorize implements authz.Backend. A request matching Config.Exclude is allowed at once with
// identity "". Otherwise a cached decision for an identical request is returned, or the service
// is asked; identical concurrent requests share one upstream call, which runs to the backend's
// timeout even if the caller that started it goes away, while each caller still returns as soon
// as its own ctx is done. Errors are ErrClosed after Close, or *authz.ReasonError values:
// upstream_unavailable wrapping ErrUnavailable, or canceled wrapping ctx.Err().
func (b *Backend) Authorize(ctx context.Context, req *authz.Request) (authz.Decision, error) {
	if b.closed.Load() {
		return authz.Decision{}, ErrClosed
	}
	if b.exclude.Match(req) {
		return authz.Decision{Outcome: authz.Allow, Reason: ReasonExcluded, Message: "allowed without authentication (excluded)"}, nil
	}
	if err := ctx.Err(); err != nil {
		return authz.Decision{}, canceled(err)
	}
	key := b.key(req)
	if b.cache != nil {
		if d, ok := b.cache.get(key, b.now()); ok {
			return d, nil
		}
	}
	// A miss from here on: the copies below escape to the heap; the hit path allocates nothing.
	r, k := *req, key // the upstream call may outlive this caller and its req
	ch := b.group.DoChan(string(k[:]), func() (any, error) {
		return b.fetch(ctx, &r, k)
	})
	if b.joined != nil {
		b.joined()
	}
	select {
	case res := <-ch:
		if res.Err != nil {
			return authz.Decision{}, res.Err
		}
		return res.Val.(authz.Decision), nil
	case <-ctx.Done():
		return authz.Decision{}, canceled(ctx.Err())
	}
}

func canceled(err error) error {
	return &authz.ReasonError{Reason: authz.ReasonCanceled, Message: "request canceled before the auth service answered", Err: err}
}

// fetch makes one upstream call on behalf of every caller collapsed onto key, and caches its
// decision. It runs on singleflight's goroutine.
func (b *Backend) fetch(parent context.Context, req *authz.Request, key cacheKey) (authz.Decision, error) {
	b.mu.RLock()
	if b.closed.Load() {
		b.mu.RUnlock()
		return authz.Decision{}, ErrClosed
	}
	b.wg.Add(1)
	b.mu.RUnlock()
	defer b.wg.Done()

	if b.cache != nil { // a call that just finished may have stored it
		if d, ok := b.cache.get(key, b.now()); ok {
			return d, nil
		}
	}
	// Detached from the first caller's cancellation (others may be waiting on this call), but
	// bounded by the timeout and by Close.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), b.timeout)
	defer cancel()
	defer context.AfterFunc(b.closing, cancel)()

	start := time.Now()
	d, ttl, err := b.call(ctx, req)
	if b.obs != nil {
		b.obs.Upstream(time.Since(start), err)
	}
	if err != nil {
		return authz.Decision{}, err
	}
	if b.cache != nil && ttl > 0 {
		b.cache.put(key, d, b.now().Add(ttl))
	}
	return d, nil
}

// call POSTs req to the service and maps the reply. ttl is how long the decision may be cached.
func (b *Backend) call(ctx context.Context, req *authz.Request) (d authz.Decision, ttl time.Duration, err error) {
	body, err := encodeBody(req)
	if err != nil {
		return authz.Decision{}, 0, fmt.Errorf("httpauth: encode request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, b.address, bytes.NewReader(body))
	if err != nil {
		return authz.Decision{}, 0, fmt.Errorf("httpauth: build request: %w", err)
	}
	hreq.Header = b.headers.Clone()

	resp, err := b.client.Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the address, which may hold a secret query
		}
		if b.closing.Err() != nil {
			return authz.Decision{}, 0, ErrClosed
		}
		return authz.Decision{}, 0, b.unavailable(err)
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain) // lets the connection be reused
		_ = resp.Body.Close()
	}()

	code := resp.StatusCode
	switch {
	case code >= 200 && code <= 299:
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody+1))
		if err != nil {
			return authz.Decision{}, 0, b.unavailable(fmt.Errorf("reading the %d reply: %w", code, err))
		}
		now := b.now()
		d = authz.Allowing(req.User, time.Time{})
		ttl = b.allowTTL
		if len(raw) <= maxReplyBody {
			if rep, ok := parseReply(raw); ok {
				if rep.Identity != "" {
					d.Identity = rep.Identity
				}
				if rep.ExpiresIn > 0 {
					d.Expires = now.Add(rep.ExpiresIn)
					ttl = min(ttl, rep.ExpiresIn)
				}
			}
		}
		return d, ttl, nil
	case code == http.StatusUnauthorized:
		if req.HasCredentials() {
			return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "credentials not accepted"), b.denyTTL, nil
		}
		return authz.Denying(authz.Unauthenticated, authz.ReasonNoCredentials, "credentials required"), b.denyTTL, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return authz.Decision{}, 0, b.unavailable(fmt.Errorf("status %d", code))
	case code >= 300 && code <= 499:
		if code < 400 {
			b.log.LogAttrs(ctx, slog.LevelWarn, "auth service redirected; redirects are not followed, treating as denial",
				slog.String("address", b.safeAddr), slog.Int("status", code))
		}
		if req.HasCredentials() {
			return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted"), b.denyTTL, nil
		}
		return authz.Denying(authz.Unauthenticated, authz.ReasonNoCredentials, "credentials required"), b.denyTTL, nil
	}
	return authz.Decision{}, 0, b.unavailable(fmt.Errorf("status %d", code))
}

// unavailable logs cause and wraps it for the chain: a safe message, reason upstream_unavailable.
func (b *Backend) unavailable(cause error) error {
	err := fmt.Errorf("%w: POST %s: %w", ErrUnavailable, b.safeAddr, cause)
	b.log.LogAttrs(context.Background(), slog.LevelWarn, "auth service unavailable; denying",
		slog.String("address", b.safeAddr), slog.String("error", cause.Error()))
	return &authz.ReasonError{Reason: authz.ReasonUpstream, Message: "auth service unavailable", Err: err}
}

// safeAddress renders u without user info or query, either of which may carry a secret.
func safeAddress(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	return c.String()
}
