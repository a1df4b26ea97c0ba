// Package forwardauth is the /hooks/forward-auth endpoint that reverse proxies call before serving
// HLS or DASH files: nginx auth_request, Traefik ForwardAuth and Caddy forward_auth (and
// ingress-nginx's auth-url). The proxy sends a body-less subrequest carrying the original method
// and URI in headers; gatehouse answers 2xx to let the file through, 401 or 403 to refuse. Those are
// the only statuses it ever sends: nginx turns anything else, 405 and 3xx included, into a 500.
//
// Each request is mapped to (read, stream path, hls|dash) with Config.Rules. Credentials come from
// the Authorization header or from token/jwt/user/pass in the original URI's query. The original
// method only tells reads (GET, HEAD, OPTIONS, all authenticated alike) from other methods (403):
// it may come from the client. After a request with credentials is allowed, a signed cookie (path,
// identity, expiry ≤ the grant's, configuration generation) is set, so the segments and variant
// playlists that follow — fetched by relative URLs, which never carry the playlist's ?token= —
// need no credentials; a reload or restart ends it. With nginx the cookie must be copied to the
// client explicitly (auth_request_set $auth_cookie $upstream_http_set_cookie; add_header
// Set-Cookie $auth_cookie;); with Traefik list it in addAuthCookiesToResponse.
package forwardauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/creds"
	"gatehouse/authz/guard"
	"gatehouse/authz/live"
)

// Source is the value of authz.Request.Source and live.Event.Source for this adapter.
const Source = "forward-auth"

// Headers set on an allowed reply, for auth_request_set, authResponseHeaders or copy_headers.
// HeaderUser is absent when the grant is anonymous (`user: any`, a public path, a backend that
// names nobody), whatever user name the client sent: nginx's $upstream_http_x_auth_user is then
// empty (and proxy_set_header with an empty value sends nothing), and Traefik's
// authResponseHeaders removes a client-sent X-Auth-User before copying ours.
const (
	HeaderUser   = "X-Auth-User"
	HeaderStream = "X-Auth-Stream"
)

// Sentinel errors of package forwardauth.
var (
	// ErrConfig is wrapped by configuration errors.
	ErrConfig = errors.New("forwardauth: invalid configuration")
	// ErrNoTarget is returned by Original when the proxy sent no original URI.
	ErrNoTarget = errors.New("forwardauth: no X-Forwarded-Uri, X-Original-URI or X-Original-URL")
	// ErrAmbiguous is returned by Original when two original-URI or method headers disagree: one
	// of them was sent by the client through a proxy that copies client headers.
	ErrAmbiguous = errors.New("forwardauth: original request headers disagree")
	// ErrBadCookie means a cookie value is malformed or its signature does not verify.
	ErrBadCookie = errors.New("forwardauth: invalid cookie")
	// ErrCookieExpired means a cookie verified but its grant has ended.
	ErrCookieExpired = errors.New("forwardauth: cookie expired")
)

// Authorizer decides requests and numbers the configurations it decides them with;
// *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
	// Generation changes whenever what is granted may have changed (every reload). A request
	// that reads it before Authorize is decided by that generation's configuration or a later one.
	Generation() uint64
}

// Recorder receives viewer events; the live registry implements it. HLS has no "stop" signal, so
// the adapter reports Joined and Alive on each allowed playlist fetch of a cookie session and never
// Left: the registry expires the viewer after its stale time without playlist fetches. Anonymous
// grants are not reported: nothing tells one anonymous viewer from another, and each request
// would otherwise be a new session (the registry is also bounded: live.Config.MaxViewers).
type Recorder interface {
	Record(live.Event)
}

// Handler serves /hooks/forward-auth (any method: the original method is read from headers). It
// starts no goroutines and is safe for concurrent use.
type Handler struct {
	auth      Authorizer
	rec       Recorder
	log       *slog.Logger
	rules     []Rule
	trusted   clientip.Proxies
	challenge string
	cookie    cookieSettings
	now       func() time.Time
	instance  string                // random id of this Handler, put in its cookies
	epoch     atomic.Pointer[epoch] // the newest generation seen, and since when
	revoked   revokedKeys           // stream keys revoked while their cookies may live (revoked.go)
}

// epoch is a configuration generation of the Authorizer and when this Handler first saw it
// (Unix nanoseconds).
type epoch struct {
	gen   uint64
	since int64
}

type cookieSettings struct {
	enabled bool
	name    string
	maxAge  time.Duration
	secure  bool
	sealer  sealer
}

// New returns a Handler asking auth and reporting viewers to rec (nil: not reported), logging to log
// (nil: discard). cfg should have passed Validate (YAML decoding does it); New drops invalid rules
// and proxy entries with an error log rather than trusting them, and replaces a short secret with
// a random key.
func New(cfg Config, auth Authorizer, rec Recorder, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{auth: auth, rec: rec, log: log, now: time.Now}
	var id [9]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	h.instance = base64.RawURLEncoding.EncodeToString(id[:])
	h.epoch.Store(&epoch{gen: auth.Generation(), since: h.now().UnixNano()})
	for i, rl := range cfg.Rules {
		if err := rl.validate(); err != nil {
			log.Error("forwardauth: rule ignored", "index", i, "error", err)
			continue
		}
		rl.Protocol = strings.ToLower(rl.Protocol)
		h.rules = append(h.rules, rl)
	}
	if len(cfg.Rules) == 0 {
		h.rules = []Rule{{Prefix: "/", StripSuffix: true}}
	}
	h.trusted = cfg.TrustedProxies
	if h.trusted == nil {
		h.trusted = clientip.Proxies{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	realm := cfg.Realm
	if realm == "" || strings.ContainsAny(realm, "\"\\\r\n") {
		realm = DefaultRealm
	}
	h.challenge = `Bearer realm="` + realm + `"`

	cc := cfg.Cookie
	key := []byte(cc.Secret)
	if len(key) < MinSecretLen {
		if len(key) > 0 {
			log.Error("forwardauth: cookie secret too short, using a random key")
		}
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails (crypto/rand)
	}
	h.cookie = cookieSettings{
		enabled: !cc.Disable,
		name:    cc.Name,
		maxAge:  cc.MaxAge.Or(DefaultCookieMaxAge),
		secure:  !cc.InsecureNoSecure,
		sealer:  sealer{key: key},
	}
	if !validCookieName(h.cookie.name) {
		h.cookie.name = DefaultCookieName
	}
	return h
}

// Target is a mapped original request.
type Target struct {
	Path     string // stream path, e.g. live/cam
	Protocol string // hls or dash (or the rule's override)
	Playlist bool   // .m3u8 or .mpd
	Dir      string // URL directory of the file ("/hls/live/cam/"), the cookie's Path
}

// Map applies the first matching rule to an URL path. The path is percent-decoded and cleaned
// first (as nginx normalises $uri before serving), so /hls/a/../b/x.ts is judged as /hls/b/x.ts.
func (h *Handler) Map(urlPath string) (Target, bool) {
	return mapPath(h.rules, urlPath)
}

func mapPath(rules []Rule, urlPath string) (Target, bool) {
	if !strings.HasPrefix(urlPath, "/") || strings.ContainsAny(urlPath, "\x00\r\n\\") {
		return Target{}, false
	}
	clean := urlPath // what the lines below give for a path that is already clean
	if !isClean(urlPath) {
		clean = path.Clean(urlPath)
		if strings.HasSuffix(urlPath, "/") && clean != "/" {
			clean += "/"
		}
	}
	dir, file := path.Split(clean)
	ext := strings.ToLower(path.Ext(file))
	for _, rl := range rules {
		if !strings.HasPrefix(clean, rl.Prefix) {
			continue
		}
		rest := clean[len(rl.Prefix):]
		var p string
		if rl.StripSuffix {
			p, _ = path.Split(rest)
		} else {
			d, f := path.Split(rest)
			stem := strings.TrimSuffix(f, path.Ext(f))
			if sep := rl.SegmentSeparator; sep != "" && ext != ".m3u8" && ext != ".mpd" {
				if i := strings.LastIndex(stem, sep); i > 0 {
					stem = stem[:i]
				}
			}
			p = d + stem
		}
		inner := strings.Trim(p, "/")
		if inner == "" {
			continue // nothing left to name a stream
		}
		p = strings.Trim(rl.PathPrefix+inner, "/")
		t := Target{Path: p, Protocol: rl.Protocol, Playlist: ext == ".m3u8" || ext == ".mpd", Dir: dir}
		if t.Protocol == "" {
			t.Protocol = "hls"
			if ext == ".mpd" || ext == ".m4s" {
				t.Protocol = "dash"
			}
		}
		return t, true
	}
	return Target{}, false
}

// isClean reports whether p (starting with '/') is its own path.Clean, but for a trailing '/':
// no empty, "." or ".." segment except the empty one after a trailing slash.
func isClean(p string) bool {
	start := 1 // the current segment is p[start:i]
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch p[start:i] {
		case "":
			if i != len(p) || len(p) == 1 { // "//" inside, or "/" (clean, but left to path.Clean)
				return false
			}
		case ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// Original returns the method and URI of the request the proxy is asking about, from
// X-Forwarded-Method/-Uri (Traefik, Caddy), X-Original-Method/-URI (nginx convention) and
// X-Original-URL (ingress-nginx). Every header present must agree, else ErrAmbiguous: proxies copy
// client headers into the subrequest, so a client could otherwise add the header the proxy does
// not set and have another URL judged. Without a method header the subrequest's own method is used.
func Original(r *http.Request) (method string, u *url.URL, err error) {
	// The header keys below are in canonical form, so indexing r.Header is what Header.Values
	// does after canonicalising them. Every value is compared with the first one as it comes,
	// with the same errors in the same order as collecting them all first would give.
	h := r.Header
	var first string
	n, differ := 0, false
	see := func(v string) {
		if n == 0 {
			first = v
		} else if v != first {
			differ = true
		}
		n++
	}
	for _, v := range h["X-Forwarded-Uri"] {
		see(v)
	}
	for _, v := range h["X-Original-Uri"] {
		see(v)
	}
	for _, v := range h["X-Original-Url"] {
		full, err := url.Parse(v)
		if err != nil {
			return "", nil, fmt.Errorf("%w: X-Original-URL is not a URL", ErrAmbiguous)
		}
		see(full.RequestURI())
	}
	if n == 0 {
		return "", nil, ErrNoTarget
	}
	if differ {
		return "", nil, fmt.Errorf("%w: original URI", ErrAmbiguous)
	}
	u, err = parseRequestURI(first)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "", nil, fmt.Errorf("%w: original URI is not a path", ErrAmbiguous)
	}
	method = r.Method
	m1, m2 := h["X-Forwarded-Method"], h["X-Original-Method"]
	switch {
	case len(m1) > 0:
		method = m1[0]
	case len(m2) > 0:
		method = m2[0]
	}
	for _, ms := range [2][]string{m1, m2} {
		for _, m := range ms {
			if !strings.EqualFold(m, method) {
				return "", nil, fmt.Errorf("%w: original method", ErrAmbiguous)
			}
		}
	}
	return strings.ToUpper(method), u, nil
}

// parseRequestURI is url.ParseRequestURI. The common original URI — a path of bytes that
// url.URL.EscapedPath would not escape (so RawPath stays empty), then optionally '?' and a
// non-empty query without control bytes — is built directly; anything else goes to
// url.ParseRequestURI (FuzzParseRequestURI holds the two to the same answer).
func parseRequestURI(s string) (*url.URL, error) {
	if s == "" || s[0] != '/' {
		return url.ParseRequestURI(s)
	}
	i := 1
	for ; i < len(s) && plainPathByte(s[i]); i++ {
	}
	if i == len(s) {
		return &url.URL{Path: s}, nil
	}
	if s[i] != '?' || i+1 == len(s) {
		return url.ParseRequestURI(s)
	}
	for j := i + 1; j < len(s); j++ {
		if c := s[j]; c < 0x20 || c == 0x7f {
			return url.ParseRequestURI(s)
		}
	}
	return &url.URL{Path: s[:i], RawQuery: s[i+1:]}, nil
}

// plainPathByte reports whether c stands for itself in a URL path: it needs no unescaping and
// url.URL.EscapedPath leaves it as is.
func plainPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return true
	}
	return false
}

// ServeHTTP implements http.Handler. It answers only 204, 401 and 403.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer := clientip.Parse(r.RemoteAddr)
	if !h.trusted.Trusts(peer) {
		h.log.Warn("forwardauth: request from an untrusted address refused", "remote", r.RemoteAddr)
		h.deny(w, http.StatusForbidden, "not a trusted proxy")
		return
	}
	method, u, err := Original(r)
	if err != nil {
		h.log.Warn("forwardauth: refused", "error", err)
		h.deny(w, http.StatusForbidden, "original request unknown")
		return
	}
	// The method is never a reason to skip authentication: a proxy block that sets only
	// X-Original-URI passes the client's own X-Original-Method through. OPTIONS is judged as a
	// read like GET, so a CORS preflight (no credentials, no cookie) passes only where an
	// anonymous read does; browsers do not preflight same-origin HLS.
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		h.deny(w, http.StatusForbidden, "method not allowed")
		return
	}
	t, ok := h.Map(u.Path)
	if !ok {
		h.log.Debug("forwardauth: no rule maps the URL", "path", u.Path)
		h.deny(w, http.StatusForbidden, "not a stream URL")
		return
	}
	ip := h.clientIP(r, peer)
	issued := h.now().UnixNano() // before the generation is read: see current
	ep := h.observe()

	var q url.Values // nil reads as url.ParseQuery("")'s empty map
	if u.RawQuery != "" {
		q, err = url.ParseQuery(u.RawQuery)
	}
	var c creds.Credentials
	if err == nil {
		c, err = creds.FromRequest(headerGet(r.Header, "Authorization"), q)
	}
	if err != nil {
		h.deny(w, http.StatusUnauthorized, "malformed or repeated credential parameter")
		return
	}
	var prior *Grant // a verified, unexpired cookie for this path, if any
	fresh := false   // prior was issued under the configuration in force: it grants access
	if h.cookie.enabled {
		if ck, err := r.Cookie(h.cookie.name); err == nil {
			g, err := h.cookie.sealer.open(ck.Value, h.now())
			switch {
			case err != nil:
				h.log.Debug("forwardauth: cookie ignored", "error", err)
			case g.Path != t.Path:
				h.log.Debug("forwardauth: cookie for another path ignored", "path", t.Path)
			default:
				prior, fresh = &g, h.current(g, ep)
				if !fresh {
					h.log.Debug("forwardauth: cookie from before the last reload ignored", "path", t.Path)
				} else if h.keyRevoked(g, h.now()) {
					prior, fresh = nil, false
					h.log.Debug("forwardauth: cookie earned with a revoked stream key ignored", "path", t.Path)
				}
			}
		}
	}
	if c.Empty() && fresh {
		h.allow(w, t, ip, prior.Identity, prior.Session)
		return
	}

	req := &authz.Request{
		Action:    authz.ActionRead,
		Path:      t.Path,
		Protocol:  t.Protocol,
		IP:        ip,
		Query:     u.RawQuery,
		UserAgent: headerGet(r.Header, "User-Agent"),
		Source:    Source,
		// A proxy cannot serve another stream than the URL names, nor end a download at a time.
	}
	c.Apply(req)
	d := h.auth.Authorize(r.Context(), req)
	if !d.Allowed() {
		if d.RetryAfter > 0 { // banned; Traefik and Caddy pass it on (nginx auth_request does not)
			guard.SetRetryAfter(w.Header(), d.RetryAfter)
		}
		h.deny(w, d.HTTPStatus(), d.Message)
		return
	}
	session := ""
	if h.cookie.enabled && !c.Empty() {
		if prior != nil && prior.Identity == d.Identity {
			session = prior.Session // a playlist reload with its token: same viewer
		}
		session = h.setCookie(w, t, d, Grant{Session: session, Generation: ep.gen, Issued: issued})
	}
	h.allow(w, t, ip, d.Identity, session)
}

// observe returns the Authorizer's current generation and when this Handler first saw it.
// Generations only advance, so a stale read never replaces a newer epoch.
func (h *Handler) observe() epoch {
	g := h.auth.Generation()
	for {
		cur := h.epoch.Load()
		if g <= cur.gen {
			return *cur
		}
		next := &epoch{gen: g, since: h.now().UnixNano()}
		if h.epoch.CompareAndSwap(cur, next) {
			return *next
		}
	}
}

// current reports whether a verified cookie was issued under the configuration in force (ep), so
// that a reload that removed a user or a permission ends the cookies it granted:
//   - issued by this Handler: only if in the same generation (exact; no clock involved);
//   - issued by another process sharing the secret, or before a restart: only if its decision
//     started after this Handler first saw the current generation. Issued is taken before the
//     generation is read and the generation advances after the chain is swapped, so a decision
//     by an older chain always has Issued < since (with clocks in step between instances).
func (h *Handler) current(g Grant, ep epoch) bool {
	if g.Instance == h.instance {
		return g.Generation == ep.gen
	}
	return g.Issued > ep.since
}

// setCookie issues a grant cookie for t, with g's Session (empty: a new one), Generation and
// Issued, and returns its session id ("" if none was set because the grant ends within a second).
func (h *Handler) setCookie(w http.ResponseWriter, t Target, d authz.Decision, g Grant) string {
	now := h.now()
	exp := now.Add(h.cookie.maxAge)
	if !d.Expires.IsZero() && d.Expires.Before(exp) {
		exp = d.Expires
	}
	exp = exp.Truncate(time.Second) // the wire form has seconds; never outlive the grant
	if exp.Sub(now) < time.Second {
		return ""
	}
	if g.Session == "" {
		var b [12]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		g.Session = "fa-" + hex.EncodeToString(b[:])
	}
	g.Path, g.Identity, g.KeyID, g.Instance, g.Expires = t.Path, d.Identity, d.KeyID, h.instance, exp
	http.SetCookie(w, &http.Cookie{
		Name:     h.cookie.name,
		Value:    h.cookie.sealer.seal(g),
		Path:     t.Dir,
		Expires:  exp,
		MaxAge:   int(exp.Sub(now) / time.Second),
		Secure:   h.cookie.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	return g.Session
}

func (h *Handler) allow(w http.ResponseWriter, t Target, ip netip.Addr, identity, session string) {
	// As Header().Set with canonical keys, with one allocation for both values.
	hdr := w.Header()
	if identity != "" && !strings.ContainsAny(identity, "\r\n") {
		v := []string{identity, t.Path}
		hdr[HeaderUser], hdr[HeaderStream] = v[0:1:1], v[1:2:2]
	} else {
		hdr[HeaderStream] = []string{t.Path}
	}
	w.WriteHeader(http.StatusNoContent)
	if h.rec == nil || session == "" || identity == "" || !t.Playlist {
		return
	}
	// Playlist fetches are the HLS/DASH viewer's heartbeat (every target duration).
	ev := live.Event{Type: live.Joined, Path: t.Path, Source: Source, Session: session, Identity: identity, Protocol: t.Protocol}
	if ip.IsValid() {
		ev.Remote = ip.String()
	}
	h.rec.Record(ev)
	ev.Type = live.Alive
	h.rec.Record(ev)
}

// deny answers 401 (with a Bearer challenge) or 403, the only refusals nginx passes on.
func (h *Handler) deny(w http.ResponseWriter, status int, msg string) {
	if status != http.StatusForbidden {
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", h.challenge)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if msg == "" {
		msg = http.StatusText(status)
	}
	_, _ = w.Write([]byte(strings.ToValidUTF8(msg, "") + "\n"))
}

// headerGet is h.Get(key) for a key already in canonical form (TestHeaderKeysCanonical), without
// canonicalising it again on every request.
func headerGet(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// clientIP is the right-most X-Forwarded-For entry that is not a trusted proxy (proxies append
// the address they saw, so entries left of it may be forged), else X-Real-IP, else the peer.
func (h *Handler) clientIP(r *http.Request, peer netip.Addr) netip.Addr {
	return h.trusted.From(peer, r.Header)
}
