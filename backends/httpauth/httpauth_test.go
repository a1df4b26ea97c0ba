package httpauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// upstream is a real auth service on loopback that counts the requests it receives.
type upstream struct {
	*httptest.Server
	calls atomic.Int64
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// clock is an injected time source; tests advance it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newBackend(t *testing.T, cfg Config, opts ...Option) *Backend {
	t.Helper()
	b, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// publishReq is MediaMTX's TestAuthHTTP "ok" request.
func publishReq() *authz.Request {
	return &authz.Request{
		Action:    authz.ActionPublish,
		Path:      "teststream",
		Protocol:  "rtsp",
		IP:        netip.MustParseAddr("127.0.0.1"),
		User:      "testpublisher",
		Pass:      "testpass",
		Query:     "param=value",
		ID:        "0f8b54c4-5bd4-4c1c-9e2b-3b0d2a8c7a11",
		UserAgent: "testagent",
	}
}

func anonymous(r *authz.Request) *authz.Request {
	r.User, r.Pass, r.Token = "", "", ""
	return r
}

func reasonOf(err error) string {
	var re *authz.ReasonError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

func TestAuthorizeStatus(t *testing.T) {
	type want struct {
		outcome  authz.Outcome
		reason   string
		identity string
	}
	tests := []struct {
		name  string
		code  int
		anon  bool
		want  want
		isErr bool // want an upstream_unavailable error instead of a decision
	}{
		{name: "200 allows as the request user", code: 200, want: want{authz.Allow, authz.ReasonAllowed, "testpublisher"}},
		{name: "204 allows", code: 204, want: want{authz.Allow, authz.ReasonAllowed, "testpublisher"}},
		{name: "anonymous 200 allows with no identity", code: 200, anon: true, want: want{authz.Allow, authz.ReasonAllowed, ""}},
		{name: "401 with credentials", code: 401, want: want{authz.Unauthenticated, authz.ReasonBadCredentials, ""}},
		{name: "401 anonymous", code: 401, anon: true, want: want{authz.Unauthenticated, authz.ReasonNoCredentials, ""}},
		{name: "403 with credentials is forbidden", code: 403, want: want{authz.Forbidden, authz.ReasonNotPermitted, ""}},
		{name: "403 anonymous asks for credentials", code: 403, anon: true, want: want{authz.Unauthenticated, authz.ReasonNoCredentials, ""}},
		{name: "400 with credentials is forbidden", code: 400, want: want{authz.Forbidden, authz.ReasonNotPermitted, ""}},
		{name: "404 anonymous", code: 404, anon: true, want: want{authz.Unauthenticated, authz.ReasonNoCredentials, ""}},
		{name: "500 is an error", code: 500, isErr: true},
		{name: "502 is an error", code: 502, isErr: true},
		{name: "503 anonymous is an error", code: 503, anon: true, isErr: true},
		{name: "408 is an error", code: 408, isErr: true},
		{name: "429 is an error", code: 429, isErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, status(tc.code))
			b := newBackend(t, Config{Address: up.URL + "/auth"})
			req := publishReq()
			if tc.anon {
				anonymous(req)
			}
			d, err := b.Authorize(context.Background(), req)
			if tc.isErr {
				if err == nil {
					t.Fatalf("got decision %+v, want an error", d)
				}
				if got := reasonOf(err); got != authz.ReasonUpstream {
					t.Errorf("got reason %q, want %q", got, authz.ReasonUpstream)
				}
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("got %v, want errors.Is ErrUnavailable", err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("status %d", tc.code)) {
					t.Errorf("got %q, want the status code in it", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			got := want{d.Outcome, d.Reason, d.Identity}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if up.calls.Load() != 1 {
				t.Errorf("got %d upstream calls, want 1", up.calls.Load())
			}
		})
	}
}

// TestMediaMTXWire checks that the service receives exactly what MediaMTX's authHTTPAddress
// sends, using the fields and checks of MediaMTX's TestAuthHTTP.
func TestMediaMTXWire(t *testing.T) {
	type seen struct {
		method, path, rawQuery string
		header                 http.Header
		body                   []byte
	}
	var (
		mu   sync.Mutex
		last seen
	)
	// The handler is MediaMTX's TestAuthHTTP server: 400 unless every field is as expected.
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), raw}
		mu.Unlock()
		var in struct {
			IP        string  `json:"ip"`
			User      string  `json:"user"`
			Password  string  `json:"password"`
			Token     string  `json:"token"`
			Path      string  `json:"path"`
			Protocol  string  `json:"protocol"`
			ID        *string `json:"id"`
			Action    string  `json:"action"`
			Query     string  `json:"query"`
			UserAgent string  `json:"userAgent"`
		}
		if err := json.Unmarshal(raw, &in); err != nil || r.Method != http.MethodPost || r.URL.Path != "/auth" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if in.IP != "127.0.0.1" || in.User != "testpublisher" || in.Password != "testpass" ||
			in.Path != "teststream" || in.Protocol != "rtsp" || in.Action != "publish" ||
			in.UserAgent != "testagent" || in.Query != "param=value" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	})
	b := newBackend(t, Config{
		Address: up.URL + "/auth?site=1",
		Headers: map[string]string{"X-Gatehouse-Secret": "s3cret-value", "authorization": "Bearer svc"},
		Cache:   CacheConfig{}, // off: every request reaches the service
	})

	t.Run("ok", func(t *testing.T) {
		d, err := b.Authorize(context.Background(), publishReq())
		if err != nil {
			t.Fatalf("Authorize: %v", err)
		}
		if d.Outcome != authz.Allow || d.Identity != "testpublisher" {
			t.Fatalf("got %v identity %q, want allow identity testpublisher", d.Outcome, d.Identity)
		}
		mu.Lock()
		defer mu.Unlock()
		wantBody := `{"ip":"127.0.0.1","user":"testpublisher","password":"testpass","token":"testpass","action":"publish",` +
			`"path":"teststream","protocol":"rtsp","id":"0f8b54c4-5bd4-4c1c-9e2b-3b0d2a8c7a11","query":"param=value","userAgent":"testagent"}`
		if got := string(last.body); got != wantBody {
			t.Errorf("got body\n%s\nwant\n%s", got, wantBody)
		}
		if last.method != http.MethodPost || last.path != "/auth" || last.rawQuery != "site=1" {
			t.Errorf("got %s %s?%s, want POST /auth?site=1", last.method, last.path, last.rawQuery)
		}
		for name, want := range map[string]string{
			"Content-Type":       "application/json",
			"X-Gatehouse-Secret": "s3cret-value",
			"Authorization":      "Bearer svc",
			"User-Agent":         "gatehouse",
		} {
			if got := last.header.Get(name); got != want {
				t.Errorf("header %s: got %q, want %q", name, got, want)
			}
		}
	})
	t.Run("fail", func(t *testing.T) {
		req := publishReq()
		req.User = "invalid"
		d, err := b.Authorize(context.Background(), req)
		if err != nil {
			t.Fatalf("Authorize: %v", err)
		}
		if d.Outcome != authz.Forbidden || d.Identity != "" {
			t.Errorf("got %v identity %q, want forbidden with no identity", d.Outcome, d.Identity)
		}
	})
	t.Run("anonymous first attempt asks for credentials", func(t *testing.T) {
		d, err := b.Authorize(context.Background(), anonymous(publishReq()))
		if err != nil {
			t.Fatalf("Authorize: %v", err)
		}
		if d.Outcome != authz.Unauthenticated || d.HTTPStatus() != 401 {
			t.Errorf("got %v (%d), want unauthenticated (401), MediaMTX's challenge", d.Outcome, d.HTTPStatus())
		}
	})

	bodyTests := []struct {
		name string
		edit func(r *authz.Request)
		want string
	}{
		{
			name: "no id is null, token falls back to password",
			edit: func(r *authz.Request) { r.ID = "" },
			want: `{"ip":"127.0.0.1","user":"testpublisher","password":"testpass","token":"testpass","action":"publish","path":"teststream","protocol":"rtsp","id":null,"query":"param=value","userAgent":"testagent"}`,
		},
		{
			name: "a presented token is sent as token",
			edit: func(r *authz.Request) { r.User, r.Pass, r.Token, r.ID = "", "", "tok.en", "" },
			want: `{"ip":"127.0.0.1","user":"","password":"","token":"tok.en","action":"publish","path":"teststream","protocol":"rtsp","id":null,"query":"param=value","userAgent":"testagent"}`,
		},
		{
			name: "api has no path or protocol; mapped IPv4 is dotted; HTML escaped as MediaMTX",
			edit: func(r *authz.Request) {
				*r = authz.Request{Action: authz.ActionAPI, IP: netip.MustParseAddr("::ffff:203.0.113.7"), User: "a<b", Pass: "p&q"}
			},
			want: `{"ip":"203.0.113.7","user":"a\u003cb","password":"p\u0026q","token":"p\u0026q","action":"api","path":"","protocol":"","id":null,"query":"","userAgent":""}`,
		},
		{
			name: "unknown ip is empty",
			edit: func(r *authz.Request) { r.IP = netip.Addr{}; r.ID = "" },
			want: `{"ip":"","user":"testpublisher","password":"testpass","token":"testpass","action":"publish","path":"teststream","protocol":"rtsp","id":null,"query":"param=value","userAgent":"testagent"}`,
		},
	}
	for _, tc := range bodyTests {
		t.Run(tc.name, func(t *testing.T) {
			req := publishReq()
			tc.edit(req)
			if _, err := b.Authorize(context.Background(), req); err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := string(last.body); got != tc.want {
				t.Errorf("got body\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestSlowUpstream: a hanging service gives a denial with reason upstream_unavailable once the
// backend's timeout passes — before the service ever answers.
func TestSlowUpstream(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release) // only after Authorize has returned: it did not wait for the reply
	b := newBackend(t, Config{Address: up.URL, Timeout: conf.Duration(100 * time.Millisecond)})

	_, err := b.Authorize(context.Background(), publishReq())
	if got := reasonOf(err); got != authz.ReasonUpstream {
		t.Fatalf("got error %v (reason %q), want reason %q", err, got, authz.ReasonUpstream)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want errors.Is DeadlineExceeded and ErrUnavailable", err)
	}

	chain := authz.NewChain(authz.Method{Name: "http", Backend: b})
	d, _ := chain.Authorize(context.Background(), publishReq())
	if d.Allowed() || d.Reason != authz.ReasonUpstream || d.Message != "auth service unavailable" {
		t.Errorf("chain: got %v %q %q, want a denial upstream_unavailable with a safe message", d.Outcome, d.Reason, d.Message)
	}
}

func TestDownUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String() + "/auth"
	_ = ln.Close() // nothing listens there now: connection refused

	b := newBackend(t, Config{Address: addr, Cache: DefaultCache()})
	for i := range 2 { // errors are not cached: the second call tries again
		_, err := b.Authorize(context.Background(), publishReq())
		if got := reasonOf(err); got != authz.ReasonUpstream {
			t.Fatalf("call %d: got %v (reason %q), want reason %q", i, err, got, authz.ReasonUpstream)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("call %d: got %v, want errors.Is ECONNREFUSED", i, err)
		}
	}
	if n := b.cache.len(); n != 0 {
		t.Errorf("got %d cached entries, want 0: errors are never cached", n)
	}
}

// TestFlapping: a service alternating 500 and 200. Errors are never cached and never allow;
// the first 200 is cached.
func TestFlapping(t *testing.T) {
	var n atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	clk := newClock()
	b := newBackend(t, Config{Address: up.URL, Cache: DefaultCache()}, WithClock(clk.Now))

	steps := []struct {
		wantAllow bool
		wantCalls int64
	}{
		{false, 1}, // 500: error, not cached
		{true, 2},  // 200: allow, cached
		{true, 2},  // cache hit
	}
	for i, s := range steps {
		d, err := b.Authorize(context.Background(), publishReq())
		if got := err == nil && d.Allowed(); got != s.wantAllow {
			t.Errorf("step %d: got allow=%v (err %v), want %v", i, got, err, s.wantAllow)
		}
		if err != nil && reasonOf(err) != authz.ReasonUpstream {
			t.Errorf("step %d: got reason %q, want %q", i, reasonOf(err), authz.ReasonUpstream)
		}
		if got := up.calls.Load(); got != s.wantCalls {
			t.Errorf("step %d: got %d upstream calls, want %d", i, got, s.wantCalls)
		}
	}
	clk.Advance(DefaultAllowTTL) // expired: asks again, gets 500: error, never a stale allow
	if d, err := b.Authorize(context.Background(), publishReq()); err == nil || d.Allowed() {
		t.Errorf("after expiry: got %v %v, want an error", d.Outcome, err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	target := newUpstream(t, status(200))
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	var logs bytes.Buffer
	b := newBackend(t, Config{Address: up.URL}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for _, tc := range []struct {
		name string
		req  *authz.Request
		want authz.Outcome
	}{
		{"with credentials", publishReq(), authz.Forbidden},
		{"anonymous", anonymous(publishReq()), authz.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := b.Authorize(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if d.Outcome != tc.want {
				t.Errorf("got %v, want %v", d.Outcome, tc.want)
			}
		})
	}
	if n := target.calls.Load(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
	if !strings.Contains(logs.String(), "redirect") {
		t.Errorf("got log %q, want a warning about the redirect", logs.String())
	}
}

func TestFingerprint(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	sum := sha256.Sum256(ts.Certificate().Raw)
	pin := hex.EncodeToString(sum[:])
	colons := strings.ToUpper(strings.Join(splitEvery(pin, 2), ":")) // openssl's spelling
	other := sha256.Sum256([]byte("another certificate"))

	tests := []struct {
		name        string
		fingerprint string
		wantErr     error // nil: allowed
	}{
		{"pin matches", pin, nil},
		{"pin with colons and upper case", colons, nil},
		{"pin mismatch", hex.EncodeToString(other[:]), ErrFingerprint},
		{"no pin: chain verified, self-signed refused", "", ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, Config{Address: ts.URL + "/auth", Fingerprint: tc.fingerprint})
			d, err := b.Authorize(context.Background(), publishReq())
			if tc.wantErr == nil {
				if err != nil || !d.Allowed() || d.Identity != "testpublisher" {
					t.Fatalf("got %v %q %v, want allow testpublisher", d.Outcome, d.Identity, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || reasonOf(err) != authz.ReasonUpstream {
				t.Errorf("got %v, want errors.Is %v with reason %q", err, tc.wantErr, authz.ReasonUpstream)
			}
		})
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}

func TestCache(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ User, Password string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Password != "testpass" {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	clk := newClock()
	b := newBackend(t, Config{Address: up.URL, Cache: DefaultCache()}, WithClock(clk.Now))
	wrong := func() *authz.Request { r := publishReq(); r.Pass = "wrong"; return r }
	otherSession := func() *authz.Request { r := publishReq(); r.ID = "another-session"; return r }

	steps := []struct {
		name      string
		advance   time.Duration
		req       func() *authz.Request
		want      authz.Outcome
		wantCalls int64
	}{
		{"first allow asks", 0, publishReq, authz.Allow, 1},
		{"allow reused", 0, publishReq, authz.Allow, 1},
		{"another session id reuses it", 0, otherSession, authz.Allow, 1},
		{"another password is another key", 0, wrong, authz.Forbidden, 2},
		{"deny reused", 4 * time.Second, wrong, authz.Forbidden, 2},
		{"deny expires after deny_ttl", 1 * time.Second, wrong, authz.Forbidden, 3},
		{"allow still cached at 29s", 24 * time.Second, publishReq, authz.Allow, 3},
		{"allow expires after allow_ttl", 1 * time.Second, publishReq, authz.Allow, 4},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		d, err := b.Authorize(context.Background(), s.req())
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if d.Outcome != s.want {
			t.Errorf("%s: got %v, want %v", s.name, d.Outcome, s.want)
		}
		if got := up.calls.Load(); got != s.wantCalls {
			t.Errorf("%s: got %d upstream calls, want %d", s.name, got, s.wantCalls)
		}
	}
}

func TestCacheSettings(t *testing.T) {
	tests := []struct {
		name      string
		cache     CacheConfig
		code      int
		wantCalls int64 // after three identical requests
	}{
		{"disabled by size 0", CacheConfig{AllowTTL: 30e9, DenyTTL: 5e9}, 200, 3},
		{"allow_ttl 0 does not cache allows", CacheConfig{DenyTTL: 5e9, Size: 10}, 200, 3},
		{"allow_ttl 0 still caches denials", CacheConfig{DenyTTL: 5e9, Size: 10}, 403, 1},
		{"deny_ttl 0 does not cache denials", CacheConfig{AllowTTL: 30e9, Size: 10}, 403, 3},
		{"deny_ttl 0 still caches allows", CacheConfig{AllowTTL: 30e9, Size: 10}, 200, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, status(tc.code))
			b := newBackend(t, Config{Address: up.URL, Cache: tc.cache}, WithClock(newClock().Now))
			for range 3 {
				if _, err := b.Authorize(context.Background(), publishReq()); err != nil {
					t.Fatal(err)
				}
			}
			if got := up.calls.Load(); got != tc.wantCalls {
				t.Errorf("got %d upstream calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCache(2)
	now := newClock().Now()
	k := func(i byte) cacheKey { return cacheKey{i} }
	c.put(k(1), authz.Allowing("one", time.Time{}), now.Add(time.Minute))
	c.put(k(2), authz.Allowing("two", time.Time{}), now.Add(time.Minute))
	c.get(k(1), now) // 1 is now more recent than 2
	c.put(k(3), authz.Allowing("three", time.Time{}), now.Add(time.Minute))
	for _, tc := range []struct {
		key  byte
		want bool
	}{{1, true}, {2, false}, {3, true}} {
		if _, ok := c.get(k(tc.key), now); ok != tc.want {
			t.Errorf("key %d: got present=%v, want %v", tc.key, ok, tc.want)
		}
	}
	if got := c.len(); got != 2 {
		t.Errorf("got %d entries, want 2", got)
	}
}

func TestCacheKeysHoldNoSecret(t *testing.T) {
	up := newUpstream(t, status(200))
	b := newBackend(t, Config{Address: up.URL, Cache: DefaultCache()})
	req := publishReq()
	req.Pass = "hunter2-secret"
	if _, err := b.Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	for k := range b.cache.m {
		if bytes.Contains(k[:], []byte("hunter2")) {
			t.Errorf("cache key holds the password in clear")
		}
	}
	// Keys are salted per backend: the same request has different keys in two backends.
	b2 := newBackend(t, Config{Address: up.URL, Cache: DefaultCache()})
	if b.key(req) == b2.key(req) {
		t.Errorf("got equal keys in two backends, want per-backend salted keys")
	}
	if b.key(req) != b.key(publishReqWith(func(r *authz.Request) { r.Pass = "hunter2-secret" })) {
		t.Errorf("got different keys for identical requests")
	}
}

func publishReqWith(edit func(*authz.Request)) *authz.Request {
	r := publishReq()
	edit(r)
	return r
}

// TestCacheKeyFields: every field the service sees, except the session id, changes the key.
func TestCacheKeyFields(t *testing.T) {
	b := newBackend(t, Config{Address: "http://127.0.0.1:1", Cache: DefaultCache()})
	base := b.key(publishReq())
	for _, tc := range []struct {
		name     string
		edit     func(*authz.Request)
		wantSame bool
	}{
		{"action", func(r *authz.Request) { r.Action = authz.ActionRead }, false},
		{"path", func(r *authz.Request) { r.Path = "other" }, false},
		{"protocol", func(r *authz.Request) { r.Protocol = "rtmp" }, false},
		{"ip", func(r *authz.Request) { r.IP = netip.MustParseAddr("127.0.0.2") }, false},
		{"user", func(r *authz.Request) { r.User = "x" }, false},
		{"pass", func(r *authz.Request) { r.Pass = "x" }, false},
		{"token", func(r *authz.Request) { r.Token = "x" }, false},
		{"query", func(r *authz.Request) { r.Query = "x=1" }, false},
		{"user agent", func(r *authz.Request) { r.UserAgent = "x" }, false},
		{"fields do not run together", func(r *authz.Request) { r.User, r.Pass = "testpublishertest", "pass" }, false},
		{"id is not part of the key", func(r *authz.Request) { r.ID = "x" }, true},
		{"source is not part of the key", func(r *authz.Request) { r.Source = "sfu" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.key(publishReqWith(tc.edit)) == base; got != tc.wantSame {
				t.Errorf("got same=%v, want %v", got, tc.wantSame)
			}
		})
	}
}

// TestCollapse: N identical concurrent requests make one upstream call. The service blocks until
// every caller has joined the call in flight.
func TestCollapse(t *testing.T) {
	const n = 16
	var joined sync.WaitGroup
	joined.Add(n)
	allJoined := make(chan struct{})
	go func() { joined.Wait(); close(allJoined) }()

	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-allJoined:
		case <-r.Context().Done():
		}
	})
	b := newBackend(t, Config{Address: up.URL, Timeout: conf.Duration(30 * time.Second)}) // no cache: collapsing alone
	b.joined = joined.Done

	var wg sync.WaitGroup
	results := make([]authz.Decision, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = b.Authorize(context.Background(), publishReq()) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !results[i].Allowed() || results[i].Identity != "testpublisher" {
			t.Errorf("caller %d: got %v %q %v, want allow testpublisher", i, results[i].Outcome, results[i].Identity, errs[i])
		}
	}
	if got := up.calls.Load(); got != 1 {
		t.Errorf("got %d upstream calls, want 1", got)
	}
}

// TestCollapsedCallOutlivesFirstCaller: the caller that started the upstream call goes away; the
// call goes on for the others, and the caller that left returns at once with reason canceled.
func TestCollapsedCallOutlivesFirstCaller(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	b := newBackend(t, Config{Address: up.URL, Timeout: conf.Duration(30 * time.Second)})
	joined := make(chan struct{}, 2)
	b.joined = func() { joined <- struct{}{} }

	ctx, cancel := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		_, err := b.Authorize(ctx, publishReq())
		firstDone <- err
	}()
	<-joined // the first caller started the call
	secondDone := make(chan authz.Decision, 1)
	go func() {
		d, err := b.Authorize(context.Background(), publishReq())
		if err != nil {
			t.Errorf("second caller: %v", err)
		}
		secondDone <- d
	}()
	<-joined
	cancel()
	err := <-firstDone // returns while the service still holds the call
	if !errors.Is(err, context.Canceled) || reasonOf(err) != authz.ReasonCanceled {
		t.Errorf("first caller: got %v, want context.Canceled with reason %q", err, authz.ReasonCanceled)
	}
	close(release)
	if d := <-secondDone; !d.Allowed() {
		t.Errorf("second caller: got %v, want allow: the shared call must not be canceled with the first caller", d.Outcome)
	}
	if got := up.calls.Load(); got != 1 {
		t.Errorf("got %d upstream calls, want 1", got)
	}
}

func TestExclude(t *testing.T) {
	up := newUpstream(t, status(http.StatusForbidden))
	var cfg struct {
		HTTP Config `yaml:"http"`
	}
	src := "http:\n  address: " + up.URL + "\n  exclude:\n    - action: publish\n    - action: read\n      path: public/*\n"
	if err := conf.Decode("test.yml", []byte(src), nil, &cfg); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, cfg.HTTP)
	for _, tc := range []struct {
		name      string
		req       *authz.Request
		want      authz.Outcome
		wantCalls int64
	}{
		{"excluded action, anonymous", anonymous(publishReq()), authz.Allow, 0},
		{"excluded action, credentials ignored", publishReq(), authz.Allow, 0},
		{"excluded path", &authz.Request{Action: authz.ActionRead, Path: "public/cam"}, authz.Allow, 0},
		{"other path asks the service", &authz.Request{Action: authz.ActionRead, Path: "private/cam", User: "u", Pass: "p"}, authz.Forbidden, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := b.Authorize(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.want {
				t.Errorf("got %v, want %v", d.Outcome, tc.want)
			}
			if d.Allowed() && (d.Identity != "" || d.Reason != ReasonExcluded) {
				t.Errorf("got identity %q reason %q, want identity \"\" reason %q (MediaMTX: user \"\")", d.Identity, d.Reason, ReasonExcluded)
			}
			if got := up.calls.Load(); got != tc.wantCalls {
				t.Errorf("got %d upstream calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestReplyBody(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		wantIdentity string
		wantExpires  time.Duration // 0: no expiry
		wantCacheFor time.Duration // the entry is gone after this long
	}{
		{"empty body: the request user", "", "testpublisher", 0, DefaultAllowTTL},
		{"text body ignored", "OK", "testpublisher", 0, DefaultAllowTTL},
		{"identity replaces the user", `{"identity":"alice"}`, "alice", 0, DefaultAllowTTL},
		{"expires_in sets Expires and shortens caching", `{"identity":"alice","expires_in":10}`, "alice", 10 * time.Second, 10 * time.Second},
		{"long expires_in keeps allow_ttl", `{"expires_in":3600}`, "testpublisher", time.Hour, DefaultAllowTTL},
		{"invalid JSON ignored as a whole", `{"identity":"alice",`, "testpublisher", 0, DefaultAllowTTL},
		{"wrong types ignored as a whole", `{"identity":"alice","expires_in":"10"}`, "testpublisher", 0, DefaultAllowTTL},
		{"control characters drop the identity only", `{"identity":"al\nice","expires_in":10}`, "testpublisher", 10 * time.Second, 10 * time.Second},
		{"negative expires_in dropped", `{"identity":"bob","expires_in":-5}`, "bob", 0, DefaultAllowTTL},
		{"unknown fields ignored", `{"user":"mallory","allow":false,"identity":"carol"}`, "carol", 0, DefaultAllowTTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tc.body)
			})
			clk := newClock()
			start := clk.Now()
			b := newBackend(t, Config{Address: up.URL, Cache: DefaultCache()}, WithClock(clk.Now))
			d, err := b.Authorize(context.Background(), publishReq())
			if err != nil || !d.Allowed() {
				t.Fatalf("got %v %v, want allow", d.Outcome, err)
			}
			if d.Identity != tc.wantIdentity {
				t.Errorf("got identity %q, want %q", d.Identity, tc.wantIdentity)
			}
			var wantExp time.Time
			if tc.wantExpires > 0 {
				wantExp = start.Add(tc.wantExpires)
			}
			if !d.Expires.Equal(wantExp) {
				t.Errorf("got Expires %v, want %v", d.Expires, wantExp)
			}
			clk.Advance(tc.wantCacheFor - time.Millisecond)
			if d2, _ := b.Authorize(context.Background(), publishReq()); up.calls.Load() != 1 || d2.Identity != tc.wantIdentity {
				t.Errorf("just before expiry: got %d calls identity %q, want a cache hit with the same identity", up.calls.Load(), d2.Identity)
			}
			clk.Advance(time.Millisecond)
			_, _ = b.Authorize(context.Background(), publishReq())
			if got := up.calls.Load(); got != 2 {
				t.Errorf("at expiry: got %d upstream calls, want 2", got)
			}
		})
	}
}

func TestLargeReplyBodyIgnored(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"identity":"alice","pad":"`+strings.Repeat("x", maxReplyBody)+`"}`)
	})
	b := newBackend(t, Config{Address: up.URL})
	d, err := b.Authorize(context.Background(), publishReq())
	if err != nil || !d.Allowed() || d.Identity != "testpublisher" {
		t.Errorf("got %v %q %v, want allow as testpublisher (oversized body not parsed)", d.Outcome, d.Identity, err)
	}
}

func TestClose(t *testing.T) {
	started := make(chan struct{}, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client hanging up
		started <- struct{}{}
		<-r.Context().Done() // hangs until the client gives up
	})
	b, err := New(Config{Address: up.URL, Timeout: conf.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := b.Authorize(context.Background(), publishReq())
		errc <- err
	}()
	<-started
	if err := b.Close(); err != nil { // cancels the hanging call instead of waiting a minute
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("in-flight call: got %v, want ErrClosed", err)
	}
	if _, err := b.Authorize(context.Background(), publishReq()); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestNoSecretsInErrorsOrLogs: credentials, header values and secrets in the address never reach
// an error string or a log line.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	secrets := []string{"pw-secret-1", "tok-secret-2", "hdr-secret-3", "url-secret-4", "query-secret-5"}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"5xx echoing the request", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			_, _ = io.Copy(w, r.Body)
		}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, tc.handler)
			var logs bytes.Buffer
			addr := strings.Replace(up.URL, "http://", "http://svc:url-secret-4@", 1) + "/auth?key=query-secret-5"
			b := newBackend(t, Config{Address: addr, Headers: map[string]string{"X-Key": "hdr-secret-3"}},
				WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			req := publishReq()
			req.Pass, req.Token = "pw-secret-1", "tok-secret-2"
			_, err := b.Authorize(context.Background(), req)
			text := logs.String()
			if err != nil {
				text += err.Error()
			}
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("secret %q leaked into %q", s, text)
				}
			}
		})
	}
}

// TestHangingCallBlocksNobodyElse: while one request hangs upstream, other requests to the same
// backend are decided (no lock is held across the upstream call).
func TestHangingCallBlocksNobodyElse(t *testing.T) {
	release := make(chan struct{})
	hanging := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Path string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Path == "slow" {
			close(hanging)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	b := newBackend(t, Config{Address: up.URL, Timeout: conf.Duration(30 * time.Second), Cache: DefaultCache()})
	slowDone := make(chan error, 1)
	go func() {
		_, err := b.Authorize(context.Background(), publishReqWith(func(r *authz.Request) { r.Path = "slow" }))
		slowDone <- err
	}()
	<-hanging
	for i := range 3 {
		d, err := b.Authorize(context.Background(), publishReqWith(func(r *authz.Request) { r.Path = fmt.Sprint("fast", i) }))
		if err != nil || !d.Allowed() {
			t.Errorf("fast request %d: got %v %v, want allow while another call hangs", i, d.Outcome, err)
		}
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Errorf("slow request: %v", err)
	}
}

// TestKeepAlive: sequential calls reuse one connection, whatever the reply status and body.
func TestKeepAlive(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusForbidden)
		}
		_, _ = io.WriteString(w, strings.Repeat("x", 8<<10)) // a body to drain
	}))
	var conns atomic.Int64
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	b := newBackend(t, Config{Address: up.URL}) // no cache: every call goes upstream
	for i := range 10 {
		if _, err := b.Authorize(context.Background(), publishReq()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("got %d connections for 10 sequential calls, want 1", got)
	}
}
