package jwks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
)

// provider is one trusted issuer at run time. Its keys are an atomic snapshot: request paths
// never take a lock that a fetch holds, so a hanging JWKS endpoint stalls nobody whose kid is
// already known. All fetching happens in the provider's own goroutine (run), which requests wake
// through kick.
type provider struct {
	conf        *Provider      // the config it was built from (nil: built-in issuer), for WithPrevious
	clientOpt   *http.Client   // the WithHTTPClient it was built with, for WithPrevious
	src         *tokens.Issuer // gatehouse's own issuer it verifies (keys from src.KeySet)
	name        string
	url         string // "" for HMAC-only and in-process providers
	issuer      string
	audience    string
	matchAZP    bool
	claimKey    string
	rolesClient string
	roles       map[string]authz.Permissions // by realm or resource role
	scopes      map[string]authz.Permissions // by scope value
	maxLifetime time.Duration                // >0: iat required and exp - iat at most this
	algs        []string
	hmac        []byte
	leeway      time.Duration
	requireExp  bool
	parser      *jwt.Parser

	refreshEvery time.Duration
	unknownEvery time.Duration
	fetchTimeout time.Duration
	client       *http.Client
	tr           *http.Transport // own transport (nil: the WithHTTPClient client); idled on stop
	log          *slog.Logger
	now          func() time.Time

	keys   *atomic.Pointer[keySet] // nil snapshot: never fetched successfully; read with keySet
	static bool                    // keys are maintained in process (src); never fetched

	kick      chan struct{} // cap 1: ask run to fetch now
	firstDone chan struct{} // closed when the first fetch attempt has finished
	stopped   chan struct{} // closed when run returns

	refMu  sync.Mutex
	refs   int                // Backends holding the provider; the goroutine stops at 0
	cancel context.CancelFunc // stops run; nil for providers without a goroutine

	mu        sync.Mutex
	waiters   chan struct{} // closed when the next fetch attempt finishes; nil: none requested
	inflight  chan struct{} // closed when the fetch under way finishes; nil: none under way
	lastKick  time.Time     // last fetch requested by a request path (rate limit)
	waitUntil time.Time     // wall clock: requests waiting for the last requested refresh give up then
	lastError error

	fetches, fetchErrors atomic.Uint64
	lastFetch            atomic.Int64 // Unix nanoseconds of the last successful fetch; 0: none
	gen                  atomic.Uint64
}

// remote reports whether keys come from a URL.
func (p *provider) remote() bool { return p.url != "" && !p.static }

// hasKeys reports whether the provider can verify tokens now.
func (p *provider) hasKeys() bool {
	return p.static || p.url == "" || p.keySet() != nil
}

// start begins the provider's life with one reference (the Backend that built it): a remote
// provider's run goroutine starts; the others have none, so they are ready and stopped at once.
func (p *provider) start() {
	p.refs = 1
	if !p.remote() {
		close(p.firstDone)
		close(p.stopped)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.run(ctx)
}

// acquire takes a reference for another Backend. It fails once the last reference was released
// (the goroutine is stopping or stopped; a stopped provider is never restarted).
func (p *provider) acquire() bool {
	p.refMu.Lock()
	defer p.refMu.Unlock()
	if p.refs == 0 {
		return false
	}
	p.refs++
	return true
}

// release drops a reference; the last one stops run, waits for it and idles the transport.
func (p *provider) release() {
	p.refMu.Lock()
	p.refs--
	last := p.refs == 0
	p.refMu.Unlock()
	if !last {
		return
	}
	if p.cancel != nil {
		p.cancel()
	}
	<-p.stopped
	if p.tr != nil {
		p.tr.CloseIdleConnections()
	}
}

// run fetches the key set now and then every refreshEvery, or sooner when kicked, until ctx ends.
// After a failed fetch it retries with backoff (1s doubling, at most min(refreshEvery, 2m)) and
// keeps the last good key set (stale-if-error).
func (p *provider) run(ctx context.Context) {
	defer close(p.stopped)
	defer p.releaseWaiters()
	var backoff time.Duration
	for {
		ok := p.fetchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := p.refreshEvery
		if !ok {
			backoff = max(time.Second, 2*backoff)
			backoff = min(backoff, p.refreshEvery, 2*time.Minute)
			wait = backoff
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-p.kick:
			t.Stop()
		}
	}
}

// fetchOnce performs one fetch attempt and wakes the requests that asked for it, or that joined
// it while it was under way.
func (p *provider) fetchOnce(ctx context.Context) bool {
	p.mu.Lock()
	done := p.waiters
	if done == nil {
		done = make(chan struct{})
	}
	p.waiters = nil
	p.inflight = done
	p.mu.Unlock()

	ks, skipped, err := p.fetch(ctx)
	if err == nil {
		if old := p.keys.Load(); old != nil && old.digest == ks.digest {
			ks = old // unchanged: keep the generation so cached tokens stay cached
		} else {
			ks.gen = p.gen.Add(1)
			p.log.Info("jwks: key set loaded", "provider", p.name, "keys", len(ks.all), "ignored", skipped)
		}
		p.keys.Store(ks)
		p.fetches.Add(1)
		p.lastFetch.Store(time.Now().UnixNano())
	} else if ctx.Err() == nil {
		p.fetchErrors.Add(1)
		stale := p.keys.Load() != nil
		p.log.Warn("jwks: key set fetch failed", "provider", p.name, "error", err, "keeping_previous_keys", stale)
	}
	p.mu.Lock()
	p.lastError = err
	p.inflight = nil
	p.mu.Unlock()
	select {
	case <-p.firstDone:
	default:
		close(p.firstDone)
	}
	close(done)
	return err == nil
}

func (p *provider) releaseWaiters() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiters != nil {
		close(p.waiters)
		p.waiters = nil
	}
	select {
	case <-p.firstDone:
	default:
		close(p.firstDone)
	}
}

// fetch downloads and parses the key set, reading at most MaxJWKSBody bytes within fetchTimeout.
func (p *provider) fetch(ctx context.Context) (*keySet, int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: fetch keys: GET %s: invalid URL", safeURL(p.url))
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, whose query or user info may hold a secret
		}
		return nil, 0, fmt.Errorf("jwks: fetch keys: GET %s: %w", safeURL(p.url), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		// An error status says the IdP is down or misrouted, not that its document is wrong.
		return nil, 0, fmt.Errorf("jwks: fetch keys: HTTP %d from the key set URL %s: %w", resp.StatusCode, safeURL(p.url), ErrJWKSUnavailable)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBody+1))
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: fetch keys: %w", err)
	}
	if len(body) > MaxJWKSBody {
		return nil, 0, fmt.Errorf("jwks: fetch keys: %w: larger than %d bytes", ErrMalformedJWKS, MaxJWKSBody)
	}
	ks, skipped, err := parseKeySet(bytes.TrimSpace(body))
	if err != nil {
		return nil, skipped, fmt.Errorf("jwks: fetch keys: %w", err)
	}
	return ks, skipped, nil
}

// safeURL renders a JWKS URL for logs and errors: scheme, host and path, without the user info,
// query or fragment, any of which may carry a secret.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return c.String()
}

// awaitFirst waits, bounded by ctx and fetchTimeout, for the first fetch attempt to finish, so
// requests that arrive while gatehouse is starting are not refused needlessly.
func (p *provider) awaitFirst(ctx context.Context) {
	if !p.remote() {
		return
	}
	t := time.NewTimer(p.fetchTimeout)
	defer t.Stop()
	select {
	case <-p.firstDone:
	case <-ctx.Done():
	case <-t.C:
	case <-p.stopped:
	}
}

// unknownKIDWait bounds how long requests with an unknown kid wait, together, for the refresh
// they triggered or joined (capped by fetchTimeout). A fetch slower than that goes on in the
// background and serves the next requests; a hanging IdP holds each request at most this long,
// not the fetch timeout (issue 12: unknown-kid requests must not each wait the full timeout).
const unknownKIDWait = time.Second

// refreshForUnknownKID asks run for a fetch and waits for it, bounded by ctx and a deadline
// shared by every request waiting for that refresh: unknownKIDWait (at most fetchTimeout) after
// it was requested. It joins a fetch already requested; otherwise at most one fetch per
// unknownEvery is requested (MediaMTX #4451 without the DoS), and while rate-limited it joins
// the fetch under way, if any, until the same shared deadline. It reports whether a fetch
// completed, after which the caller looks the kid up again.
func (p *provider) refreshForUnknownKID(ctx context.Context) bool {
	if !p.remote() {
		return false
	}
	p.mu.Lock()
	ch, until := p.waiters, p.waitUntil
	if ch == nil {
		now := p.now()
		if !p.lastKick.IsZero() && now.Sub(p.lastKick) < p.unknownEvery {
			ch = p.inflight
			p.mu.Unlock()
			if ch == nil {
				return false
			}
			return p.await(ctx, ch, until)
		}
		p.lastKick = now
		ch = make(chan struct{})
		p.waiters = ch
		until = time.Now().Add(min(unknownKIDWait, p.fetchTimeout))
		p.waitUntil = until
		p.mu.Unlock()
		select {
		case p.kick <- struct{}{}:
		default: // a kick is already pending
		}
		return p.await(ctx, ch, until)
	}
	p.mu.Unlock() // join the fetch already requested
	return p.await(ctx, ch, until)
}

// await waits for ch, bounded by ctx, the wall-clock deadline until and the provider stopping.
func (p *provider) await(ctx context.Context, ch <-chan struct{}, until time.Time) bool {
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-t.C:
	case <-p.stopped:
	}
	return false
}

// nudge requests a fetch without waiting, at most once per unknownEvery (used when no key set
// was ever fetched, so recovery does not wait for the backoff).
func (p *provider) nudge() {
	if !p.remote() {
		return
	}
	p.mu.Lock()
	now := p.now()
	if !p.lastKick.IsZero() && now.Sub(p.lastKick) < p.unknownEvery {
		p.mu.Unlock()
		return
	}
	p.lastKick = now
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// unavailable is the error returned when the provider has no key set.
func (p *provider) unavailable() error {
	p.mu.Lock()
	last := p.lastError
	p.mu.Unlock()
	err := ErrJWKSUnavailable
	if last != nil {
		err = fmt.Errorf("%w: %w", ErrJWKSUnavailable, last)
	}
	return &authz.ReasonError{
		Reason:  ReasonJWKSUnavailable,
		Message: fmt.Sprintf("jwks: signing keys of provider %q are not available", p.name),
		Err:     err,
	}
}

// pinnedTransport returns a transport that accepts exactly the TLS leaf certificate whose
// SHA-256 is pin (nil: normal chain verification).
func pinnedTransport(pin []byte) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if pin == nil {
		return tr
	}
	tr.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below, as MediaMTX's fingerprint option
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrFingerprint
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return ErrFingerprint
			}
			return nil
		},
	}
	return tr
}
