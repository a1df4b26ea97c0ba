package forwardauth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/conf"
	"gatehouse/authz/live"
	"gatehouse/authz/live/livetest"
	"gatehouse/backends/users"
)

type recorder = livetest.Recorder

// backend: token viewer may read live/cam only (bob); user/pass carol/secret may read anything;
// public/* is readable anonymously; everything else abstains.
type backend struct {
	mu     sync.Mutex
	last   authz.Request
	calls  int
	expire time.Time
}

func (b *backend) Authorize(_ context.Context, req *authz.Request) (authz.Decision, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.calls = *req, b.calls+1
	switch {
	case req.Token == "viewer" && req.Path == "live/cam":
		return authz.Allowing("bob", b.expire), nil
	case req.Token == "viewer":
		return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted on this path"), nil
	case req.User == "carol" && req.Pass == "secret":
		return authz.Allowing("carol", b.expire), nil
	case !req.HasCredentials() && strings.HasPrefix(req.Path, "public/"):
		return authz.Allowing("", time.Time{}), nil
	}
	return authz.Decision{}, nil
}

func (b *backend) lastRequest() (authz.Request, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.calls
}

func newHandler(t testing.TB, cfg Config) (*Handler, *backend, *recorder) {
	t.Helper()
	be := &backend{}
	var h *Handler // the engine refuses expired grants by the handler's (test) clock
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: be}).WithPolicy(queryTokens), nil,
		authz.WithClock(func() time.Time { return h.now() }))
	rec := &recorder{}
	h = New(cfg, eng, rec, nil)
	return h, be, rec
}

// ask builds a subrequest as nginx's template sends it, from loopback.
func ask(uri string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/hooks/forward-auth", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("X-Original-URI", uri)
	r.Header.Set("X-Original-Method", http.MethodGet)
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMap(t *testing.T) {
	hls := []Rule{{Prefix: "/hls/", StripSuffix: true}}
	flat := []Rule{{Prefix: "/hls/", SegmentSeparator: "-", PathPrefix: "live/"}}
	dash := []Rule{{Prefix: "/dash/", SegmentSeparator: "-", PathPrefix: "live/"}, {Prefix: "/", StripSuffix: true}}
	tests := []struct {
		name     string
		rules    []Rule
		urlPath  string
		want     Target
		wantNoOK bool
	}{
		{"playlist", hls, "/hls/live/cam/index.m3u8", Target{Path: "live/cam", Protocol: "hls", Playlist: true, Dir: "/hls/live/cam/"}, false},
		{"segment", hls, "/hls/live/cam/seg12.ts", Target{Path: "live/cam", Protocol: "hls", Dir: "/hls/live/cam/"}, false},
		{"ll-hls part m4s is dash by extension", hls, "/hls/live/cam/part3.m4s", Target{Path: "live/cam", Protocol: "dash", Dir: "/hls/live/cam/"}, false},
		{"directory", hls, "/hls/live/cam/", Target{Path: "live/cam", Protocol: "hls", Dir: "/hls/live/cam/"}, false},
		{"dot-dot is cleaned like nginx", hls, "/hls/live/other/../cam/seg0.ts", Target{Path: "live/cam", Protocol: "hls", Dir: "/hls/live/cam/"}, false},
		{"double slash is cleaned", hls, "/hls//live/cam//seg0.ts", Target{Path: "live/cam", Protocol: "hls", Dir: "/hls/live/cam/"}, false},
		{"escape above the prefix", hls, "/hls/../secret/cam/x.ts", Target{}, true},
		{"file directly under prefix", hls, "/hls/index.m3u8", Target{}, true},
		{"other prefix", hls, "/dash/live/cam/index.mpd", Target{}, true},
		{"not absolute", hls, "hls/live/cam/x.ts", Target{}, true},
		{"nul byte", hls, "/hls/live/cam\x00/x.ts", Target{}, true},
		{"flat playlist", flat, "/hls/cam.m3u8", Target{Path: "live/cam", Protocol: "hls", Playlist: true, Dir: "/hls/"}, false},
		{"flat segment", flat, "/hls/cam-12.ts", Target{Path: "live/cam", Protocol: "hls", Dir: "/hls/"}, false},
		{"flat playlist with dash in name", flat, "/hls/my-cam.m3u8", Target{Path: "live/my-cam", Protocol: "hls", Playlist: true, Dir: "/hls/"}, false},
		{"flat segment with dash in name", flat, "/hls/my-cam-3.ts", Target{Path: "live/my-cam", Protocol: "hls", Dir: "/hls/"}, false},
		{"dash manifest", dash, "/dash/cam.mpd", Target{Path: "live/cam", Protocol: "dash", Playlist: true, Dir: "/dash/"}, false},
		{"dash segment", dash, "/dash/cam-1234.m4s", Target{Path: "live/cam", Protocol: "dash", Dir: "/dash/"}, false},
		{"fallback rule", dash, "/cam/index.m3u8", Target{Path: "cam", Protocol: "hls", Playlist: true, Dir: "/cam/"}, false},
		{"protocol override", []Rule{{Prefix: "/", StripSuffix: true, Protocol: "llhls"}}, "/a/b/c.m4s", Target{Path: "a/b", Protocol: "llhls", Dir: "/a/b/"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mapPath(tt.rules, tt.urlPath)
			if ok == tt.wantNoOK {
				t.Fatalf("got ok=%v (%+v), want %v", ok, got, !tt.wantNoOK)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("default rule", func(t *testing.T) {
		h, _, _ := newHandler(t, Config{})
		got, ok := h.Map("/live/cam/index.m3u8")
		if !ok || got.Path != "live/cam" {
			t.Errorf("got %+v %v, want live/cam", got, ok)
		}
	})
}

func TestOriginal(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		header     []string
		wantMethod string
		wantURI    string
		wantErr    error
	}{
		{"nginx", "GET", []string{"X-Original-URI", "/a/b.m3u8?token=x", "X-Original-Method", "GET"}, "GET", "/a/b.m3u8?token=x", nil},
		{"traefik", "GET", []string{"X-Forwarded-Uri", "/a/b.m3u8", "X-Forwarded-Method", "HEAD"}, "HEAD", "/a/b.m3u8", nil},
		{"traefik preserveRequestMethod", "OPTIONS", []string{"X-Forwarded-Uri", "/a/b.m3u8"}, "OPTIONS", "/a/b.m3u8", nil},
		{"ingress both agree", "GET", []string{"X-Original-URL", "https://h/a/b.m3u8?t=1", "X-Original-URI", "/a/b.m3u8?t=1"}, "GET", "/a/b.m3u8?t=1", nil},
		{"no method header uses subrequest method", "HEAD", []string{"X-Original-URI", "/a/b.ts"}, "HEAD", "/a/b.ts", nil},
		{"none", "GET", nil, "", "", ErrNoTarget},
		{"client-added forwarded uri under nginx", "GET", []string{"X-Original-URI", "/private/cam/seg.ts", "X-Forwarded-Uri", "/public/x/index.m3u8"}, "", "", ErrAmbiguous},
		{"client-added original uri under traefik", "GET", []string{"X-Forwarded-Uri", "/private/cam/seg.ts", "X-Original-URI", "/public/x/index.m3u8"}, "", "", ErrAmbiguous},
		{"repeated header", "GET", []string{"X-Original-URI", "/a/b.ts", "X-Original-URI", "/c/d.ts"}, "", "", ErrAmbiguous},
		{"methods disagree", "GET", []string{"X-Original-URI", "/a/b.ts", "X-Original-Method", "GET", "X-Forwarded-Method", "DELETE"}, "", "", ErrAmbiguous},
		{"absolute uri", "GET", []string{"X-Original-URI", "http://evil/a/b.ts"}, "", "", ErrAmbiguous},
		{"not a uri", "GET", []string{"X-Original-URI", "a b"}, "", "", ErrAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/hooks/forward-auth", nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Add(tt.header[i], tt.header[i+1])
			}
			m, u, err := Original(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if m != tt.wantMethod || u.RequestURI() != tt.wantURI {
				t.Errorf("got %s %s, want %s %s", m, u.RequestURI(), tt.wantMethod, tt.wantURI)
			}
		})
	}
}

// TestProxyHeaderSets replays the subrequests nginx (this package's template), Traefik, Caddy and
// ingress-nginx send (reference §5), then the segment that follows with the cookie.
func TestProxyHeaderSets(t *testing.T) {
	tests := []struct {
		file   string
		peer   string
		cfg    Config
		wantIP string
	}{
		{"nginx_auth_request.http", "127.0.0.1:51000", Config{}, "203.0.113.7"},
		{"traefik.http", "[::1]:51000", Config{}, "203.0.113.7"},
		{"caddy.http", "127.0.0.1:51000", Config{}, "203.0.113.7"},
		{"ingress_nginx.http", "10.244.1.9:51000", Config{TrustedProxies: proxies("10.244.0.0/16")}, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".http"), func(t *testing.T) {
			tt.cfg.Rules = []Rule{{Prefix: "/hls/", StripSuffix: true}}
			h, be, rec := newHandler(t, tt.cfg)
			r := readRequest(t, tt.file)
			r.RemoteAddr = tt.peer
			w := serve(h, r)
			if w.Code != http.StatusNoContent {
				t.Fatalf("playlist: got %d %q, want 204", w.Code, w.Body)
			}
			got, _ := be.lastRequest()
			want := authz.Request{Action: authz.ActionRead, Path: "live/cam", Protocol: "hls", IP: netip.MustParseAddr(tt.wantIP),
				Token: "viewer", TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "token=viewer", UserAgent: r.Header.Get("User-Agent"), Source: Source}
			if got != want {
				t.Errorf("got request %+v, want %+v", got, want)
			}
			if u := w.Header().Get(HeaderUser); u != "bob" {
				t.Errorf("got %s %q, want bob", HeaderUser, u)
			}
			cookies := w.Result().Cookies()
			if len(cookies) != 1 {
				t.Fatalf("got %d cookies, want 1", len(cookies))
			}
			c := cookies[0]
			if c.Name != DefaultCookieName || c.Path != "/hls/live/cam/" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 {
				t.Errorf("got cookie %s, want %s with Path=/hls/live/cam/ Secure HttpOnly SameSite=Lax Max-Age>0", c, DefaultCookieName)
			}
			if events := rec.Events(); len(events) != 2 || events[0].Type != live.Joined || events[1].Type != live.Alive || events[0].Remote != tt.wantIP {
				t.Errorf("got events %+v, want Joined and Alive from %s", events, tt.wantIP)
			}

			// The segment: same headers, the segment's URI without the token, the cookie.
			seg := readRequest(t, tt.file)
			seg.RemoteAddr = tt.peer
			for _, k := range []string{"X-Original-Uri", "X-Forwarded-Uri", "X-Original-Url", "X-Auth-Request-Redirect"} {
				if v := seg.Header.Get(k); v != "" {
					seg.Header.Set(k, strings.Replace(v, "index.m3u8?token=viewer", "seg0.ts", 1))
				}
			}
			_, callsBefore := be.lastRequest()
			if w := serve(h, seg); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Bearer realm="gatehouse"` {
				t.Errorf("segment without cookie: got %d %q, want 401 with a Bearer challenge", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			seg.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			if w := serve(h, seg); w.Code != http.StatusNoContent || w.Header().Get(HeaderUser) != "bob" {
				t.Errorf("segment with cookie: got %d user %q, want 204 bob", w.Code, w.Header().Get(HeaderUser))
			}
			if _, calls := be.lastRequest(); calls != callsBefore+1 {
				t.Errorf("got %d engine calls for two segments, want 1 (the cookie one needs none)", calls-callsBefore)
			}
		})
	}
}

func readRequest(t *testing.T, name string) *http.Request {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "proxies", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := http.ReadRequest(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	r.RequestURI = ""
	return r
}

func TestDecisions(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		req        *http.Request
		wantStatus int
		wantCookie bool
	}{
		{"no credentials", Config{}, ask("/live/cam/index.m3u8"), 401, false},
		{"token in query", Config{}, ask("/live/cam/index.m3u8?token=viewer"), 204, true},
		{"bearer header", Config{}, ask("/live/cam/index.m3u8", "Authorization", "Bearer viewer"), 204, true},
		{"basic header", Config{}, ask("/live/cam/index.m3u8", "Authorization", "Basic Y2Fyb2w6c2VjcmV0"), 204, true},
		{"obs style bearer user:pass", Config{}, ask("/live/cam/index.m3u8", "Authorization", "Bearer carol:secret"), 204, true},
		{"token for another path", Config{}, ask("/live/other/index.m3u8?token=viewer"), 403, false},
		{"wrong token", Config{}, ask("/live/cam/index.m3u8?token=nope"), 401, false},
		{"repeated token", Config{}, ask("/live/cam/index.m3u8?token=viewer&token=viewer"), 401, false},
		{"malformed query", Config{}, ask("/live/cam/index.m3u8?token=%zz"), 401, false},
		{"anonymous public stream", Config{}, ask("/public/cam/index.m3u8"), 204, false},
		{"cookie disabled", Config{Cookie: CookieConfig{Disable: true}}, ask("/live/cam/index.m3u8?token=viewer"), 204, false},
		{"method headers disagree", Config{}, ask("/live/cam/index.m3u8?token=viewer", "X-Forwarded-Method", "HEAD"), 403, false},
		{"cors preflight is authenticated", Config{}, withoutHeader(ask("/live/cam/index.m3u8", "X-Forwarded-Method", "OPTIONS"), "X-Original-Method"), 401, false},
		{"client-sent method header does not skip authentication", Config{}, withHeader(ask("/live/cam/index.m3u8"), "X-Original-Method", "OPTIONS"), 401, false},
		{"post", Config{}, withMethod(ask("/live/cam/index.m3u8?token=viewer"), "POST"), 403, false},
		{"options is authenticated", Config{}, withMethod(ask("/live/cam/index.m3u8"), "OPTIONS"), 401, false},
		{"options with credentials", Config{}, withMethod(ask("/live/cam/index.m3u8?token=viewer"), "OPTIONS"), 204, true},
		{"options on a public stream", Config{}, withMethod(ask("/public/cam/index.m3u8"), "OPTIONS"), 204, false},
		{"head alone", Config{}, withMethod(ask("/live/cam/seg0.ts?token=viewer"), "HEAD"), 204, true},
		{"no rule", Config{Rules: []Rule{{Prefix: "/hls/", StripSuffix: true}}}, ask("/admin/index.m3u8?token=viewer"), 403, false},
		{"untrusted peer", Config{}, withPeer(ask("/live/cam/index.m3u8?token=viewer"), "192.0.2.1:1234"), 403, false},
		{"trusted peer by config", Config{TrustedProxies: proxies("192.0.2.1")}, withPeer(ask("/live/cam/index.m3u8?token=viewer"), "192.0.2.1:1234"), 204, true},
		{"loopback no longer trusted", Config{TrustedProxies: proxies("192.0.2.0/24")}, ask("/live/cam/index.m3u8?token=viewer"), 403, false},
		{"no original uri", Config{}, withoutHeader(ask("/x"), "X-Original-Uri"), 403, false},
		{"spoofed forwarded uri", Config{}, ask("/live/other/seg0.ts", "X-Forwarded-Uri", "/public/x/index.m3u8"), 403, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := newHandler(t, tt.cfg)
			w := serve(h, tt.req)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %q, want %d", w.Code, w.Body, tt.wantStatus)
			}
			if got := len(w.Result().Cookies()) == 1; got != tt.wantCookie {
				t.Errorf("got cookie %v, want %v", got, tt.wantCookie)
			}
			if tt.wantStatus == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("got WWW-Authenticate %q on 401, want a Bearer challenge", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func withMethod(r *http.Request, m string) *http.Request {
	r.Header.Del("X-Original-Method")
	r.Method = m
	return r
}

func withPeer(r *http.Request, peer string) *http.Request { r.RemoteAddr = peer; return r }

func withoutHeader(r *http.Request, k string) *http.Request { r.Header.Del(k); return r }

// withHeader replaces header k: a client's own header, passed through by a proxy block that does
// not set k.
func withHeader(r *http.Request, k, v string) *http.Request { r.Header.Set(k, v); return r }

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted clientip.Proxies
		xff     []string
		realIP  string
		want    string
	}{
		{"xff single", nil, []string{"203.0.113.7"}, "", "203.0.113.7"},
		{"client-forged left entries ignored", nil, []string{"1.2.3.4, 203.0.113.7"}, "", "203.0.113.7"},
		{"trusted hops skipped", proxies("127.0.0.0/8", "10.0.0.0/8"), []string{"203.0.113.7, 10.0.0.5"}, "", "203.0.113.7"},
		{"repeated headers", proxies("127.0.0.0/8", "10.0.0.0/8"), []string{"1.2.3.4", "203.0.113.7", "10.0.0.5"}, "", "203.0.113.7"},
		{"mapped v4", nil, []string{"::ffff:203.0.113.7"}, "", "203.0.113.7"},
		{"x-real-ip without xff", nil, nil, "198.51.100.9", "198.51.100.9"},
		{"xff and x-real-ip disagree: unknown", nil, []string{"203.0.113.7"}, "1.2.3.4", "invalid IP"},
		{"garbage hop: unknown, never the proxy's loopback address", nil, []string{"203.0.113.7, bogus"}, "", "invalid IP"},
		{"nothing", nil, nil, "", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := newHandler(t, Config{TrustedProxies: tt.trusted})
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				r.Header.Set("X-Real-Ip", tt.realIP)
			}
			if got := h.clientIP(r, netip.MustParseAddr("127.0.0.1")); got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCookieLifetime(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		maxAge  time.Duration
		expires time.Time
		want    int // Max-Age seconds; 0: no cookie
	}{
		{"default max age", 0, time.Time{}, int(DefaultCookieMaxAge / time.Second)},
		{"configured max age", time.Hour, time.Time{}, 3600},
		{"bounded by the grant", time.Hour, now.Add(10*time.Minute + 500*time.Millisecond), 600},
		{"grant about to end", time.Hour, now.Add(300 * time.Millisecond), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, be, _ := newHandler(t, Config{Cookie: CookieConfig{MaxAge: conf.Duration(tt.maxAge)}})
			h.now = func() time.Time { return now }
			be.expire = tt.expires
			w := serve(h, ask("/live/cam/index.m3u8?token=viewer"))
			if w.Code != http.StatusNoContent {
				t.Fatalf("got %d, want 204", w.Code)
			}
			cs := w.Result().Cookies()
			if tt.want == 0 {
				if len(cs) != 0 {
					t.Errorf("got cookie %s, want none", cs[0])
				}
				return
			}
			if len(cs) != 1 || cs[0].MaxAge != tt.want {
				t.Fatalf("got cookies %v, want one with Max-Age=%d", cs, tt.want)
			}
			g, err := h.cookie.sealer.open(cs[0].Value, now)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.expires.IsZero() && g.Expires.After(tt.expires) {
				t.Errorf("got cookie expiry %v after the grant's %v", g.Expires, tt.expires)
			}
			// Past the cookie's expiry the segment is refused.
			h.now = func() time.Time { return g.Expires }
			seg := ask("/live/cam/seg0.ts")
			seg.AddCookie(cs[0])
			if w := serve(h, seg); w.Code != http.StatusUnauthorized {
				t.Errorf("expired cookie: got %d, want 401", w.Code)
			}
			h.now = func() time.Time { return g.Expires.Add(-time.Second) }
			if w := serve(h, seg); w.Code != http.StatusNoContent {
				t.Errorf("cookie a second before expiry: got %d, want 204", w.Code)
			}
		})
	}
}

func TestCookieMisuse(t *testing.T) {
	h, _, _ := newHandler(t, Config{Cookie: CookieConfig{Secret: strings.Repeat("k", 32)}})
	w := serve(h, ask("/live/cam/index.m3u8?token=viewer"))
	c := w.Result().Cookies()[0]
	other, _, _ := newHandler(t, Config{Cookie: CookieConfig{Secret: strings.Repeat("j", 32)}})
	g, err := h.cookie.sealer.open(c.Value, time.Now())
	if err != nil {
		t.Fatalf("open the issued cookie: %v", err) // the forgeries below start from a valid grant
	}
	g.Path = "live/other"
	forged := sealer{key: []byte(strings.Repeat("j", 32))}.seal(g)
	parts := strings.Split(c.Value, ".")
	tests := []struct {
		name  string
		h     *Handler
		uri   string
		value string
		want  int
	}{
		{"valid", h, "/live/cam/seg0.ts", c.Value, 204},
		{"another path", h, "/live/other/seg0.ts", c.Value, 401},
		{"another path, public stream still allowed", h, "/public/cam/seg0.ts", c.Value, 204},
		{"other instance key", other, "/live/cam/seg0.ts", c.Value, 401},
		{"payload swapped", h, "/live/other/seg0.ts", strings.Join([]string{parts[0], strings.Split(forged, ".")[1], parts[2]}, "."), 401},
		{"signed with a wrong key", h, "/live/other/seg0.ts", forged, 401},
		{"truncated", h, "/live/cam/seg0.ts", c.Value[:len(c.Value)-3], 401},
		{"garbage", h, "/live/cam/seg0.ts", "v1.!!.!!", 401},
		{"huge", h, "/live/cam/seg0.ts", "v1." + strings.Repeat("A", 5000) + "." + parts[2], 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask(tt.uri)
			r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: tt.value})
			if w := serve(tt.h, r); w.Code != tt.want {
				t.Errorf("got %d, want %d", w.Code, tt.want)
			}
		})
	}
}

// TestCookieEndsWithReload: a reload that removes a user ends the cookies it granted, as it ends
// the user's password (the cookie used to stay valid for max_age).
func TestCookieEndsWithReload(t *testing.T) {
	secret := strings.Repeat("k", 32)
	be := &backend{}
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: be}).WithPolicy(queryTokens), nil)
	h := New(Config{Cookie: CookieConfig{Secret: secret}}, eng, &recorder{}, nil)

	w := serve(h, ask("/live/cam/index.m3u8", "Authorization", "Basic Y2Fyb2w6c2VjcmV0")) // carol:secret
	if w.Code != http.StatusNoContent || len(w.Result().Cookies()) != 1 {
		t.Fatalf("with the password: got %d and %d cookies, want 204 and a cookie", w.Code, len(w.Result().Cookies()))
	}
	c := w.Result().Cookies()[0]
	segment := func(h *Handler) int {
		r := ask("/live/cam/seg0.ts")
		r.AddCookie(c)
		return serve(h, r).Code
	}
	if got := segment(h); got != http.StatusNoContent {
		t.Fatalf("segment with the cookie before the reload: got %d, want 204", got)
	}

	// A restart (a new Handler with the same secret) refuses the cookie too: the generation
	// counter starts again at 0, so the cookie's own generation would otherwise match.
	restarted := New(Config{Cookie: CookieConfig{Secret: secret}}, eng, &recorder{}, nil)
	if got := segment(restarted); got != http.StatusUnauthorized {
		t.Errorf("segment with the cookie after a restart: got %d, want 401", got)
	}

	// The reload: carol is gone from the new configuration.
	eng.Swap(authz.NewChain(authz.Method{Name: "test", Backend: authz.BackendFunc(
		func(context.Context, *authz.Request) (authz.Decision, error) { return authz.Decision{}, nil })}))
	if got := segment(h); got != http.StatusUnauthorized {
		t.Errorf("segment with the cookie after the reload: got %d, want 401", got)
	}
	if w := serve(h, ask("/live/cam/seg0.ts", "Authorization", "Basic Y2Fyb2w6c2VjcmV0")); w.Code != http.StatusUnauthorized {
		t.Errorf("the password after the reload: got %d, want 401", w.Code)
	}
}

func TestCookieCurrent(t *testing.T) {
	h, _, _ := newHandler(t, Config{})
	ep := epoch{gen: 3, since: 1_000}
	tests := []struct {
		name string
		g    Grant
		want bool
	}{
		{"this instance, this generation", Grant{Instance: h.instance, Generation: 3, Issued: 1}, true},
		{"this instance, an earlier generation", Grant{Instance: h.instance, Generation: 2, Issued: 5_000}, false},
		{"another instance, issued after this one saw the generation", Grant{Instance: "other", Generation: 0, Issued: 1_001}, true},
		{"another instance, issued as it saw it", Grant{Instance: "other", Generation: 3, Issued: 1_000}, false},
		{"another instance or a restart, issued before", Grant{Instance: "other", Generation: 3, Issued: 999}, false},
		{"no binding (an empty instance)", Grant{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.current(tt.g, ep); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("observe never goes back", func(t *testing.T) {
		h.epoch.Store(&epoch{gen: 7, since: 42})
		if got := h.observe(); got.gen != 7 || got.since != 42 {
			t.Errorf("engine at generation 0 after the handler saw 7: got %+v, want {7 42}", got)
		}
	})
}

func TestSessionsAndEvents(t *testing.T) {
	h, _, rec := newHandler(t, Config{})
	first := serve(h, ask("/live/cam/index.m3u8?token=viewer"))
	c := first.Result().Cookies()[0]

	reload := ask("/live/cam/index.m3u8?token=viewer") // hls.js reloads the playlist with its token
	reload.AddCookie(c)
	second := serve(h, reload)
	seg := ask("/live/cam/seg0.ts")
	seg.AddCookie(c)
	serve(h, seg)
	variant := ask("/live/cam/index.m3u8") // a variant playlist fetched by relative URL: cookie only
	variant.AddCookie(c)
	serve(h, variant)
	other := serve(h, ask("/live/cam/index.m3u8?token=viewer")) // another viewer (no cookie)

	events := rec.Events()
	if len(events) != 8 { // Joined+Alive for each of the four playlist fetches; none for the segment
		t.Fatalf("got %d events, want 8: %+v", len(events), events)
	}
	s1 := events[0].Session
	for i, ev := range events[:6] {
		if ev.Session != s1 || ev.Identity != "bob" || ev.Path != "live/cam" || ev.Source != Source {
			t.Errorf("event %d: got %+v, want session %s bob live/cam", i, ev, s1)
		}
	}
	if events[6].Session == s1 {
		t.Errorf("another viewer got the same session %s", s1)
	}
	var gs [3]Grant
	for i, v := range []string{c.Value, second.Result().Cookies()[0].Value, other.Result().Cookies()[0].Value} {
		var err error
		if gs[i], err = h.cookie.sealer.open(v, time.Now()); err != nil {
			t.Fatalf("cookie %d: %v", i+1, err)
		}
	}
	g1, g2, g3 := gs[0], gs[1], gs[2]
	if g1.Session != g2.Session || g1.Session == g3.Session {
		t.Errorf("got sessions %s, %s, %s; want the first two equal and the third different", g1.Session, g2.Session, g3.Session)
	}
}

func TestConfigYAML(t *testing.T) {
	type file struct {
		ForwardAuth Config `yaml:"forward_auth"`
	}
	t.Run("valid", func(t *testing.T) {
		src := "forward_auth:\n  rules:\n    - prefix: /hls/\n      strip_suffix: true\n    - {prefix: /flat/, segment_separator: \"-\", path_prefix: live/}\n" +
			"  trusted_proxies: [127.0.0.1, 10.0.0.0/8]\n  cookie:\n    secret: " + strings.Repeat("s", 32) + "\n    max_age: 2h\n"
		var f file
		if err := conf.Decode("test.yml", []byte(src), nil, &f); err != nil {
			t.Fatal(err)
		}
		if len(f.ForwardAuth.Rules) != 2 || f.ForwardAuth.Cookie.MaxAge.Std() != 2*time.Hour || f.ForwardAuth.Validate() != nil {
			t.Errorf("got %+v", f.ForwardAuth)
		}
	})
	tests := []struct {
		name, src, want string
	}{
		{"unknown key", "forward_auth:\n  rulez: []\n", `unknown key "rulez"`},
		{"bad prefix", "forward_auth:\n  rules:\n    - prefix: hls\n", "prefix \"hls\" must start and end with /"},
		{"bad proxy", "forward_auth:\n  trusted_proxies: [localhost]\n", `"localhost" is not an IP address or CIDR network`},
		{"short secret", "forward_auth:\n  cookie:\n    secret: abc\n", "secret must be at least 32 bytes"},
		{"conflicting rule", "forward_auth:\n  rules:\n    - {prefix: /a/, strip_suffix: true, segment_separator: \"-\"}\n", "segment_separator applies only without strip_suffix"},
		{"bad duration", "forward_auth:\n  cookie:\n    max_age: soon\n", "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := conf.Decode("test.yml", []byte(tt.src), nil, &f)
			if !errors.Is(err, conf.ErrInvalid) {
				t.Fatalf("got %v, want conf.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "test.yml:") {
				t.Errorf("got %q, want it to contain %q and a file:line", err, tt.want)
			}
			if strings.Contains(err.Error(), "abc") && tt.name == "short secret" {
				t.Errorf("error %q leaks the secret", err)
			}
		})
	}
}

func TestInvalidConfigFailsClosed(t *testing.T) {
	h, _, _ := newHandler(t, Config{
		Rules:          []Rule{{Prefix: "nope"}},
		TrustedProxies: clientip.Proxies{},
		Cookie:         CookieConfig{Name: "bad name;", Secret: "short"},
	})
	if w := serve(h, ask("/live/cam/index.m3u8?token=viewer")); w.Code != http.StatusForbidden {
		t.Errorf("got %d, want 403: an empty trusted_proxies trusts nobody", w.Code)
	}
	if h.cookie.name != DefaultCookieName || len(h.cookie.sealer.key) != 32 {
		t.Errorf("got cookie name %q key %d bytes, want defaults", h.cookie.name, len(h.cookie.sealer.key))
	}
}

func FuzzForwardAuth(f *testing.F) {
	for _, s := range []struct{ method, uri, auth, cookie string }{
		{"GET", "/hls/live/cam/index.m3u8?token=viewer", "", ""},
		{"GET", "/hls/live/cam/seg12.ts", "", "v1.eyJwIjoibGl2ZS9jYW0iLCJzIjoiIiwiZSI6MX0.AAAA"},
		{"HEAD", "/hls/live/../../etc/passwd", "Bearer viewer", ""},
		{"OPTIONS", "/dash/cam-1.m4s?token=a&token=b", "Basic Y2Fyb2w6c2VjcmV0", ""},
		{"GET", "//evil/x.m3u8", "", ""},
		{"GET", "/cam.m3u8?%zz", "Bearer carol:secret", "garbage"},
	} {
		f.Add(s.method, s.uri, s.auth, s.cookie)
	}
	be := &backend{}
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: be}).WithPolicy(queryTokens), nil)
	h := New(Config{Rules: []Rule{{Prefix: "/hls/", StripSuffix: true}, {Prefix: "/", SegmentSeparator: "-"}}}, eng, &recorder{}, nil)
	f.Fuzz(func(t *testing.T, method, uri, auth, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/hooks/forward-auth", nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header["X-Forwarded-Method"] = []string{method}
		r.Header["X-Forwarded-Uri"] = []string{uri}
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		if cookie != "" {
			r.Header["Cookie"] = []string{DefaultCookieName + "=" + cookie}
		}
		w := serve(h, r)
		switch w.Code {
		case http.StatusNoContent, http.StatusUnauthorized, http.StatusForbidden:
		default:
			t.Fatalf("got status %d: nginx would turn it into 500", w.Code)
		}
		if w.Code == http.StatusNoContent {
			if _, u, err := Original(r); err != nil {
				t.Fatalf("allowed a request whose original URI does not parse: %v", err)
			} else if tg, ok := h.Map(u.Path); !ok || strings.Contains(tg.Path, "..") || strings.HasPrefix(tg.Path, "/") {
				t.Fatalf("allowed %q mapped to %+v", uri, tg)
			}
		}
	})
}

func FuzzCookie(f *testing.F) {
	s := sealer{key: []byte(strings.Repeat("k", 32))}
	now := time.Unix(1_800_000_000, 0)
	valid := s.seal(Grant{Path: "live/cam", Identity: "bob", Session: "fa-1", Instance: "i", Generation: 2, Issued: 1, Expires: now.Add(time.Hour)})
	f.Add(valid)
	f.Add("v1..")
	f.Add("v1.e30.")
	f.Add(strings.Replace(valid, cookieVersion+".", "v1.", 1))
	f.Fuzz(func(t *testing.T, v string) {
		g, err := s.open(v, now)
		if err != nil {
			if !errors.Is(err, ErrBadCookie) && !errors.Is(err, ErrCookieExpired) {
				t.Fatalf("got error %v, want ErrBadCookie or ErrCookieExpired", err)
			}
			return
		}
		g2, err := s.open(s.seal(g), now)
		if err != nil || g2.Path != g.Path || g2.Identity != g.Identity || g2.Session != g.Session || !g2.Expires.Equal(g.Expires) ||
			g2.Instance != g.Instance || g2.Generation != g.Generation || g2.Issued != g.Issued {
			t.Fatalf("grant %+v does not round-trip: %+v, %v", g, g2, err)
		}
		if g.Path == "" || !now.Before(g.Expires) {
			t.Fatalf("open accepted %+v", g)
		}
	})
}

func BenchmarkHandler(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	h, _, _ := newHandler(b, Config{Rules: []Rule{{Prefix: "/hls/", StripSuffix: true}}})
	h.rec = nil
	w := serve(h, ask("/hls/live/cam/index.m3u8?token=viewer"))
	cookie := w.Result().Cookies()[0]
	for _, bc := range []struct {
		name string
		h    http.Handler
		uri  string
		ck   bool
	}{
		{"bare", bare, "/hls/live/cam/seg0.ts", false},
		{"playlist_token", h, "/hls/live/cam/index.m3u8?token=viewer", false},
		{"segment_cookie", h, "/hls/live/cam/seg0.ts", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := ask(bc.uri)
				if bc.ck {
					r.AddCookie(cookie)
				}
				if w := serve(bc.h, r); w.Code != http.StatusNoContent {
					b.Fatalf("got %d", w.Code)
				}
			}
		})
	}
}

// usersEngine is the engine over the real users backend with cfg (a `users:` list in YAML).
func usersEngine(t testing.TB, src string) *authz.Engine {
	t.Helper()
	var cfg struct {
		Users users.Config `yaml:"users"`
	}
	if err := conf.Decode("test.yml", []byte(src), nil, &cfg); err != nil {
		t.Fatal(err)
	}
	return authz.NewEngine(authz.NewChain(authz.Method{Name: "users", Backend: users.New(cfg.Users)}), nil)
}

// anyRead lets anyone read live/*, first; admin's password is never needed for a read.
const anyRead = `
users:
  users:
  - user: any
    permissions: [{action: read, path: ~^live/}]
  - user: admin
    pass: admin-secret
    permissions: [{action: publish}, {action: read}]
`

// TestAnonymousGrantCarriesNoIdentity: under `user: any`, `curl -u admin:whatever` used to get
// X-Auth-User: admin, a cookie for admin and a viewer listed as admin. The grant is anonymous:
// no header, no identity in the cookie, nothing in the registry.
func TestAnonymousGrantCarriesNoIdentity(t *testing.T) {
	reg := live.NewRegistry()
	reg.Record(live.Event{Type: live.Published, Path: "live/cam", Source: "nginx-rtmp", Session: "pub", Identity: "studio"})
	h := New(Config{}, usersEngine(t, anyRead), reg, nil)

	for _, r := range []*http.Request{
		ask("/live/cam/index.m3u8", "Authorization", "Basic YWRtaW46d2hhdGV2ZXI="), // -u admin:whatever
		ask("/live/cam/index.m3u8?user=admin&pass=whatever"),
	} {
		w := serve(h, r)
		if w.Code != http.StatusNoContent {
			t.Fatalf("got %d %q, want 204 (any may read)", w.Code, w.Body)
		}
		if v, ok := w.Header()[HeaderUser]; ok {
			t.Errorf("got %s %q, want no such header for an anonymous grant", HeaderUser, v)
		}
		cs := w.Result().Cookies()
		if len(cs) != 1 {
			t.Fatalf("got %d cookies, want 1", len(cs))
		}
		g, err := h.cookie.sealer.open(cs[0].Value, time.Now())
		if err != nil || g.Identity != "" {
			t.Errorf("got cookie grant %+v (%v), want no identity", g, err)
		}
		seg := ask("/live/cam/seg0.ts")
		seg.AddCookie(cs[0])
		if w := serve(h, seg); w.Code != http.StatusNoContent || w.Header().Get(HeaderUser) != "" {
			t.Errorf("segment with the cookie: got %d user %q, want 204 and no user", w.Code, w.Header().Get(HeaderUser))
		}
	}
	st, ok := reg.Get("live/cam")
	if !ok || st.Identity != "studio" {
		t.Fatalf("got %+v %v, want live/cam published by studio", st, ok)
	}
	for _, rd := range st.Readers {
		if rd.Identity == "admin" {
			t.Errorf("the registry lists a viewer as admin: %+v", rd)
		}
	}
	if n := reg.Viewers(); n != 0 {
		t.Errorf("got %d viewer sessions, want 0: anonymous grants are not recorded per request", n)
	}
}

// TestRegistryBounded: anonymous requests with made-up user names (each used to be a new viewer
// session, held for stale_after) leave the registry empty, and named viewers stop at the bound.
func TestRegistryBounded(t *testing.T) {
	t.Run("anonymous", func(t *testing.T) {
		reg := live.NewRegistry()
		h := New(Config{}, usersEngine(t, anyRead), reg, nil)
		for i := range 20_000 {
			if w := serve(h, ask(fmt.Sprintf("/live/cam/index.m3u8?user=u%d&pass=x", i))); w.Code != http.StatusNoContent {
				t.Fatalf("request %d: got %d, want 204", i, w.Code)
			}
		}
		if n := reg.Viewers(); n != 0 {
			t.Errorf("got %d viewer sessions after 20000 anonymous requests, want 0", n)
		}
	})
	t.Run("named beyond the bound", func(t *testing.T) {
		reg := live.NewRegistry(live.WithConfig(live.Config{MaxViewers: 100}))
		be := &backend{}
		h := New(Config{}, authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: be}).WithPolicy(queryTokens), nil), reg, nil)
		for i := range 1_000 { // every request without a cookie is a new viewer session of bob
			if w := serve(h, ask("/live/cam/index.m3u8?token=viewer")); w.Code != http.StatusNoContent {
				t.Fatalf("request %d: got %d, want 204 (a full registry refuses nobody)", i, w.Code)
			}
		}
		if n := reg.Viewers(); n != 100 {
			t.Errorf("got %d viewer sessions, want the bound 100", n)
		}
	})
}

func proxies(s ...string) clientip.Proxies {
	var p clientip.Proxies
	for _, x := range s {
		pfx, err := clientip.ParsePrefix(x)
		if err != nil {
			panic(err)
		}
		p = append(p, pfx)
	}
	return p
}

// queryTokens is the engine policy of these tests: an HLS URL's ?token= is accepted (as with
// jwt.query_token_on_http: true), so that they exercise the cookie that replaces it. The default
// policy, which refuses it, is proven by the conformance suite.
var queryTokens = authz.Policy{QueryTokenOnHTTP: true}
