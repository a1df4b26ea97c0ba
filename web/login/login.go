// Package login is gatehouse's browser login: a backend-for-frontend OpenID Connect client
// (Authorization Code with PKCE, state and nonce, through golang.org/x/oauth2 and
// github.com/coreos/go-oidc/v3) that keeps the login in a server-side session named by an
// HttpOnly, SameSite=Lax cookie. The provider's tokens stay in the process: pages get only
// short-lived gatehouse viewer tokens, scoped to what the user's roles allow.
package login

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
)

// Paths served by Handler.
const (
	LoginPath    = "/login"
	CallbackPath = "/login/callback"
	LogoutPath   = "/logout"
	TokenPath    = "/login/token"
)

// Limits on what the browser and the provider send.
const (
	maxCallbackQuery = 8 << 10
	maxCode          = 2 << 10
	maxState         = 128
	maxNext          = 512
	maxSessions      = 10_000
	maxFlows         = 2_000
	// maxClientFlows bounds the pending logins of one client (clientip.Key: an IPv4 address or
	// an IPv6 /64): past it, the client's own oldest flow makes room, so one address sending
	// GET /login in a loop can no longer push everyone else's logins out of the maxFlows table.
	// 20 is more tabs than anyone logs in from at once. The clients whose address is unknown
	// share one larger allowance (maxUnknownFlows): they are told apart from nobody, and a
	// proxy set up so that every client is unknown still leaves room for 200 logins at a time.
	maxClientFlows  = 20
	maxUnknownFlows = maxFlows / 10
	apiTokenTTL     = time.Minute
)

// Errors of package login.
var (
	// ErrConfig is wrapped by Validate's errors.
	ErrConfig = errors.New("login: invalid configuration")
	// ErrNoPermissions says a token was asked for a session whose roles grant nothing of the kind.
	ErrNoPermissions = errors.New("login: the session grants no such permission")
)

// Mapper returns the permissions that verified claims (ID token, userinfo) grant; cmd wires the
// jwt providers' role mapping (jwks.Provider.ClaimPermissions).
type Mapper func(claims map[string]json.RawMessage) (authz.Permissions, error)

// Minter mints gatehouse's own tokens; *tokens.Issuer implements it.
type Minter interface {
	Issue(subject string, perms []authz.Permission, ttl time.Duration) (string, error)
	MaxTTL() time.Duration
}

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sets the logger (default: discard). No line ever holds a code, token, secret or
// cookie.
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.log = l } }

// WithClock sets the time source (default time.Now).
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithTrustedProxy makes X-Forwarded-Proto: https from a peer that trusted reports mark cookies
// Secure (default: no proxy is trusted).
func WithTrustedProxy(trusted func(netip.Addr) bool) Option {
	return func(m *Manager) { m.trusted = trusted }
}

// WithHTTPClient sets the client used to talk to the provider (default: 10s timeout).
func WithHTTPClient(c *http.Client) Option { return func(m *Manager) { m.client = c } }

// Session is one logged-in browser.
type Session struct {
	id       string
	Issuer   string // the provider's iss ("" for a local login)
	Subject  string // the provider's sub: with Issuer, the only stable, unique key of a user
	Name     string // preferred_username, name or sub, for display
	Username string // the provider's preferred_username ("" without one), untrimmed; not unique (OIDC Core §5.1)
	// UsernameUnique says the operator vouches that Username is unique and immutable at the
	// provider (web.login.unique_usernames), so it may name the user on its own.
	UsernameUnique bool
	CSRF           string            // the token every state-changing request must carry
	Perms          authz.Permissions // what the user's claims grant
	Expires        time.Time
	idToken        string // for the provider's logout (id_token_hint); never leaves the process
	gen            uint64 // local logins: the engine generation the password was checked in
	mu             sync.Mutex
	viewer         string
	viewerTo       time.Time
}

// Can reports whether the session's permissions include action (on any path).
func (s *Session) Can(a authz.Action) bool {
	return slices.ContainsFunc(s.Perms, func(p authz.Permission) bool { return p.Action == a })
}

type flow struct {
	state, nonce, verifier, next string
	expires                      time.Time
	client                       netip.Prefix // clientip.Key of who started it; invalid: unknown
}

// Manager runs the login flow and holds the sessions (in memory: a restart logs everyone out).
// It starts no goroutines; expired sessions and flows are dropped as new ones arrive.
type Manager struct {
	cfg     Config
	mapper  Mapper
	mint    Minter
	log     *slog.Logger
	now     func() time.Time
	trusted func(netip.Addr) bool
	client  *http.Client

	discoverMu sync.Mutex
	disc       *discovered
	discErr    time.Time

	mu       sync.Mutex
	sessions map[string]*Session
	flows    map[string]*flow

	local  Authorizer // NewLocal: checks users and passwords; nil for OpenID Connect
	failMu sync.Mutex
	fails  map[netip.Addr]*failures // NewLocal: failed attempts per address
}

type discovered struct {
	provider   *oidc.Provider
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	atVerifier *oidc.IDTokenVerifier // access tokens that are JWTs of the same issuer
	endSession string
}

// New returns a Manager for cfg. The provider is discovered on the first login (and again after
// a failure, at most every 10 seconds), so gatehouse starts while the provider is down.
func New(cfg Config, mapper Mapper, mint Minter, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mapper == nil || mint == nil {
		return nil, fmt.Errorf("%w: a mapper and a minter are required", ErrConfig)
	}
	m := &Manager{cfg: cfg, mapper: mapper, mint: mint, now: time.Now, sessions: map[string]*Session{}, flows: map[string]*flow{}}
	for _, o := range opts {
		o(m)
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.client == nil {
		m.client = &http.Client{Timeout: 10 * time.Second}
	}
	return m, nil
}

func (m *Manager) discover(ctx context.Context) (*discovered, error) {
	m.discoverMu.Lock()
	defer m.discoverMu.Unlock()
	if m.disc != nil {
		return m.disc, nil
	}
	if !m.discErr.IsZero() && m.now().Sub(m.discErr) < 10*time.Second {
		return nil, errors.New("login: the identity provider was unreachable moments ago")
	}
	// The key set outlives this request: its fetches use a context that is never cancelled.
	ctx = oidc.ClientContext(context.WithoutCancel(ctx), m.client)
	p, err := oidc.NewProvider(ctx, m.cfg.Issuer)
	if err != nil {
		m.discErr = m.now()
		return nil, fmt.Errorf("login: discovery at %s: %w", m.cfg.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&extra)
	d := &discovered{
		provider: p,
		oauth: oauth2.Config{
			ClientID: m.cfg.ClientID, ClientSecret: string(m.cfg.ClientSecret),
			Endpoint: p.Endpoint(), RedirectURL: m.cfg.RedirectURL, Scopes: m.cfg.scopes(),
		},
		verifier:   p.VerifierContext(ctx, &oidc.Config{ClientID: m.cfg.ClientID, Now: m.now}),
		atVerifier: p.VerifierContext(ctx, &oidc.Config{SkipClientIDCheck: true, Now: m.now}),
		endSession: extra.EndSession,
	}
	m.disc = d
	return d, nil
}

// random returns n random bytes, base64url.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Secure reports whether r reached gatehouse over TLS: the redirect URL is https, the
// connection is TLS, or a trusted proxy says X-Forwarded-Proto: https.
func (m *Manager) Secure(r *http.Request) bool {
	if strings.HasPrefix(m.cfg.RedirectURL, "https:") || r.TLS != nil {
		return true
	}
	if m.trusted != nil && m.trusted(clientip.Parse(r.RemoteAddr)) {
		return strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
	}
	return false
}

func (m *Manager) cookieName(secure bool) string {
	if secure {
		return "__Host-gatehouse-session"
	}
	return "gatehouse-session"
}

const flowCookie = "gatehouse-login"

func (m *Manager) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: m.Secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// Current returns r's session, or nil. stale reports a session cookie that names no live
// session (expired, logged out, another gatehouse's, or from before a restart).
func (m *Manager) Current(r *http.Request) (s *Session, stale bool) {
	names := []string{m.cookieName(true), m.cookieName(false)}
	if m.Secure(r) {
		names = names[:1] // over HTTPS only the __Host- cookie, which a sibling subdomain cannot plant
	}
	for _, name := range names {
		c, err := r.Cookie(name)
		if err != nil || c.Value == "" {
			continue
		}
		if len(c.Value) > 64 {
			return nil, true
		}
		m.mu.Lock()
		s = m.sessions[c.Value]
		if s != nil && (!m.now().Before(s.Expires) || m.outdated(s)) {
			delete(m.sessions, c.Value)
			s = nil
		}
		m.mu.Unlock()
		if s != nil {
			return s, false
		}
		stale = true
	}
	return nil, stale
}

// ViewerToken returns a gatehouse token for the session's read permissions, valid for
// viewer_token_ttl (capped by the issuer's max_ttl and the session's end), reusing one that has
// more than half its life left. ErrNoPermissions: the user may read nothing.
func (m *Manager) ViewerToken(s *Session) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now()
	ttl := m.viewerTTL()
	if s.viewer != "" && s.viewerTo.Sub(now) > ttl/2 {
		return s.viewer, s.viewerTo, nil
	}
	tok, exp, err := m.token(s, ttl, authz.ActionRead)
	if err != nil {
		return "", time.Time{}, err
	}
	s.viewer, s.viewerTo = tok, exp
	return tok, exp, nil
}

// PublishToken returns a gatehouse token that may publish on exactly path over WebRTC (and nothing
// else), valid like a viewer token, when the session's permissions allow publishing path over
// WebRTC.
// ErrNoPermissions: they do not. The caller picks the path; it is the caller's job that it is
// the user's own (web's rooms: room/<name>/<the user's participant name>).
func (m *Manager) PublishToken(s *Session, path string) (string, time.Time, error) {
	if authz.CheckPath(path) != nil || strings.HasPrefix(path, "~") || strings.Contains(path, "*") {
		return "", time.Time{}, ErrNoPermissions // not an exact path: it would grant more than one
	}
	if !s.Perms.Match(&authz.Request{Action: authz.ActionPublish, Path: path, Protocol: "webrtc"}) {
		return "", time.Time{}, ErrNoPermissions
	}
	exact, err := authz.ParsePathPattern(path)
	if err != nil {
		return "", time.Time{}, ErrNoPermissions
	}
	// The protocol limit is minted too: the role may allow webrtc only, and the room page
	// publishes over WHIP alone, so the token must not publish path over RTMP, SRT or RTSP.
	return m.issue(s, m.viewerTTL(), []authz.Permission{{Action: authz.ActionPublish, Path: exact, Protocols: []string{"webrtc"}}})
}

// APIToken returns a one-minute gatehouse token holding only the session's api permission, for
// requests gatehouse makes to its own API on the user's behalf. It never reaches the browser.
func (m *Manager) APIToken(s *Session) (string, error) {
	tok, _, err := m.token(s, apiTokenTTL, authz.ActionAPI)
	return tok, err
}

func (m *Manager) viewerTTL() time.Duration {
	ttl := m.cfg.ViewerTokenTTL.Or(DefaultViewerTokenTTL)
	if max := m.mint.MaxTTL(); max > 0 && ttl > max {
		ttl = max
	}
	return ttl
}

func (m *Manager) token(s *Session, ttl time.Duration, action authz.Action) (string, time.Time, error) {
	var perms []authz.Permission
	for _, p := range s.Perms {
		if p.Action == action && len(p.Protocols) == 0 && !slices.ContainsFunc(perms, func(q authz.Permission) bool { return q.String() == p.String() }) {
			perms = append(perms, p)
		}
	}
	return m.issue(s, ttl, perms)
}

// issue mints perms for s, for ttl capped by the session's end.
func (m *Manager) issue(s *Session, ttl time.Duration, perms []authz.Permission) (string, time.Time, error) {
	if len(perms) == 0 {
		return "", time.Time{}, ErrNoPermissions
	}
	now := m.now()
	if left := s.Expires.Sub(now); left < ttl {
		ttl = left
	}
	if ttl < time.Second {
		return "", time.Time{}, ErrNoPermissions
	}
	ttl = ttl.Truncate(time.Second)
	tok, err := m.mint.Issue(s.Subject, perms, ttl)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, now.Add(ttl), nil
}

// SameOrigin reports whether a state-changing request comes from gatehouse's own pages: its
// Origin header (required) is the redirect URL's origin or this request's own origin.
func (m *Manager) SameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	if u, err := url.Parse(m.cfg.RedirectURL); err == nil && o == u.Scheme+"://"+u.Host {
		return true
	}
	scheme := "http"
	if m.Secure(r) {
		scheme = "https"
	}
	return o == scheme+"://"+r.Host
}

// CheckCSRF reports whether r carries s's CSRF token (form field csrf or header X-CSRF-Token)
// and comes from gatehouse's own origin.
func (m *Manager) CheckCSRF(r *http.Request, s *Session) bool {
	if s == nil || !m.SameOrigin(r) {
		return false
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

// sweep drops expired sessions and flows (m.mu held) and, when a table is still full, its
// entries closest to their end.
func (m *Manager) sweep(now time.Time) {
	for id, s := range m.sessions {
		if !now.Before(s.Expires) {
			delete(m.sessions, id)
		}
	}
	for id, f := range m.flows {
		if !now.Before(f.expires) {
			delete(m.flows, id)
		}
	}
	evict(m.sessions, maxSessions, func(s *Session) time.Time { return s.Expires })
	evict(m.flows, maxFlows, func(f *flow) time.Time { return f.expires })
}

// capClient makes room for one more flow of client (m.mu held): while it holds its allowance,
// its own flow closest to expiry goes.
func (m *Manager) capClient(client netip.Prefix) {
	limit := maxClientFlows
	if !client.IsValid() {
		limit = maxUnknownFlows
	}
	var mine []string
	for id, f := range m.flows {
		if f.client == client {
			mine = append(mine, id)
		}
	}
	if len(mine) < limit {
		return
	}
	slices.SortFunc(mine, func(a, b string) int { return m.flows[a].expires.Compare(m.flows[b].expires) })
	for _, id := range mine[:len(mine)-limit+1] {
		delete(m.flows, id)
	}
}

func evict[V any](m map[string]V, max int, end func(V) time.Time) {
	for len(m) >= max {
		var oldest string
		var at time.Time
		for id, v := range m {
			if oldest == "" || end(v).Before(at) {
				oldest, at = id, end(v)
			}
		}
		delete(m, oldest)
	}
}
