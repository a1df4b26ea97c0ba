package login_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/logtest"
	"gatehouse/authz/tokens"
	"gatehouse/backends/jwks"
	"gatehouse/web/login"
	"gatehouse/web/login/oidctest"
)

const (
	clientID     = "gatehouse"
	clientSecret = "client-secret-never-logged-0123456789"
)

type fixture struct {
	t      *testing.T
	op     *oidctest.Provider
	m      *login.Manager
	srv    *httptest.Server
	logBuf *logtest.Buffer
	iss    *tokens.Issuer
	now    time.Time
}

func perm(t *testing.T, s string) authz.Permission {
	t.Helper()
	p, err := tokens.ParseAllow(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newFixture starts the provider (clients gatehouse and other; users alice with realm role
// viewer and client role admin, bob with no role) and a gatehouse login in front of it.
func newFixture(t *testing.T, opts ...login.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, logBuf: &logtest.Buffer{}, now: time.Now()}
	f.srv = httptest.NewUnstartedServer(nil)
	base := "http://" + f.srv.Listener.Addr().String()
	f.op = oidctest.Start(t, "stream", []oidctest.Client{
		{ID: clientID, Secret: clientSecret, RedirectURL: base + login.CallbackPath, PostLogoutURL: base + "/"},
		{ID: "other", Secret: "other-secret-0123456789", RedirectURL: base + login.CallbackPath},
	},
		oidctest.User{ID: "u1", Username: "alice", Password: "alice-pass", RealmRoles: []string{"viewer"}, ClientRoles: map[string][]string{clientID: {"admin"}}},
		oidctest.User{ID: "u2", Username: "bob", Password: "bob-pass"},
	)
	var err error
	f.iss, err = tokens.LoadIssuer(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	roles := jwks.Provider{RolesClient: clientID, Roles: map[string][]authz.Permission{
		"viewer": {perm(t, "read:private/*")},
		"admin":  {perm(t, "api"), perm(t, "publish:live/*")},
	}}
	cfg := login.Config{Issuer: f.op.Issuer, ClientID: clientID, ClientSecret: clientSecret, RedirectURL: base + login.CallbackPath}
	opts = append([]login.Option{login.WithLogger(slog.New(slog.NewTextHandler(f.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)
	f.m, err = login.New(cfg, roles.ClaimPermissions, f.iss, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", f.m.Handler())
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		s, stale := f.m.Current(r)
		if s == nil {
			if stale {
				_, _ = io.WriteString(w, "stale")
				return
			}
			_, _ = io.WriteString(w, "anonymous")
			return
		}
		_, _ = io.WriteString(w, s.Name+" "+s.CSRF)
	})
	f.srv.Config.Handler = mux
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { f.checkLog() })
	return f
}

// checkLog fails when a secret reached the log.
func (f *fixture) checkLog() {
	log := f.logBuf.String()
	for _, secret := range []string{clientSecret, "alice-pass", "code=", "id_token_hint", "eyJ"} {
		if strings.Contains(log, secret) {
			f.t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
}

func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// authorize starts a login at gatehouse and logs in at the provider; it returns the callback URL
// the provider sends the browser to, not yet visited.
func (f *fixture) authorize(c *http.Client, user, pass string) string {
	f.t.Helper()
	return f.authorizeAt(c, f.srv.URL+login.LoginPath+"?next=/watch/x", user, pass)
}

func (f *fixture) authorizeAt(c *http.Client, start, user, pass string) string {
	f.t.Helper()
	next := start
	for range 10 {
		res, err := c.Get(next)
		if err != nil {
			f.t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(next, "/login/username") && res.StatusCode == http.StatusOK {
			u, _ := url.Parse(next)
			res, err = c.PostForm(u.Scheme+"://"+u.Host+"/login/username", url.Values{
				"id": {u.Query().Get("authRequestID")}, "username": {user}, "password": {pass}})
			if err != nil {
				f.t.Fatal(err)
			}
			res.Body.Close()
		}
		loc := res.Header.Get("Location")
		if loc == "" {
			f.t.Fatalf("no redirect from %s: %d %s", next, res.StatusCode, body)
		}
		lu, err := res.Request.URL.Parse(loc)
		if err != nil {
			f.t.Fatal(err)
		}
		next = lu.String()
		if strings.HasPrefix(next, f.srv.URL+login.CallbackPath) {
			return next
		}
	}
	f.t.Fatal("too many redirects")
	return ""
}

type answer struct {
	status int
	body   string
	res    *http.Response
}

func get(t *testing.T, c *http.Client, u string) answer {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, string(b), res}
}

func (f *fixture) whoami(c *http.Client) string { return get(f.t, c, f.srv.URL+"/whoami").body }

func sessionCookie(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if strings.HasSuffix(c.Name, "gatehouse-session") {
			return c
		}
	}
	return nil
}

func TestLoginFlow(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	cb := f.authorize(c, "alice", "alice-pass")
	a := get(t, c, cb)
	if a.status != http.StatusSeeOther || a.res.Header.Get("Location") != "/watch/x" {
		t.Fatalf("callback: got %d to %q, want 303 to /watch/x; body %s", a.status, a.res.Header.Get("Location"), a.body)
	}
	sc := sessionCookie(a.res)
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Secure {
		t.Fatalf("session cookie: got %+v, want HttpOnly, SameSite=Lax, Path=/, not Secure over http", sc)
	}
	who := f.whoami(c)
	name, csrf, _ := strings.Cut(who, " ")
	if name != "alice" || csrf == "" {
		t.Fatalf("whoami: got %q, want alice and a CSRF token", who)
	}

	// The viewer token: only with the CSRF token and our Origin; only read permissions.
	tokenReq := func(origin, csrf string) answer {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+login.TokenPath, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return answer{res.StatusCode, string(b), res}
	}
	for _, tt := range []struct{ name, origin, csrf string }{
		{"no CSRF token", f.srv.URL, ""},
		{"wrong CSRF token", f.srv.URL, "x" + csrf},
		{"another origin", "https://evil.example", csrf},
		{"no origin", "", csrf},
	} {
		if a := tokenReq(tt.origin, tt.csrf); a.status != http.StatusForbidden {
			t.Errorf("token with %s: got %d, want 403", tt.name, a.status)
		}
	}
	a = tokenReq(f.srv.URL, csrf)
	if a.status != http.StatusOK {
		t.Fatalf("token: got %d %s", a.status, a.body)
	}
	var tj struct {
		Token   string
		Expires time.Time
	}
	if err := json.Unmarshal([]byte(a.body), &tj); err != nil || tj.Token == "" {
		t.Fatalf("token answer %q: %v", a.body, err)
	}
	claims := payload(t, tj.Token)
	if claims["iss"] != "gatehouse" || claims["sub"] != "u1" || claims["aud"] != f.iss.Audience() {
		t.Errorf("viewer token claims: %v", claims)
	}
	perms, _ := json.Marshal(claims[tokens.ClaimKey])
	if string(perms) != `[{"action":"read","path":"private/*"}]` {
		t.Errorf("viewer token permissions: got %s, want only the role's read", perms)
	}
	if left := time.Until(tj.Expires); left > login.DefaultViewerTokenTTL+time.Second || left < time.Minute {
		t.Errorf("viewer token lifetime: %v, want about %v", left, login.DefaultViewerTokenTTL)
	}

	// Logout: refused cross-site, then ends the session and goes to the provider's logout.
	res, err := c.PostForm(f.srv.URL+login.LogoutPath, url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || f.whoami(c) == "anonymous" {
		t.Errorf("logout without Origin: got %d, want 403 and the session kept", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+login.LogoutPath, strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, f.op.Issuer+"/end_session?") || !strings.Contains(loc, "id_token_hint=") {
		t.Errorf("logout: got %d to %q, want the provider's end_session with id_token_hint", res.StatusCode, loc)
	}
	if got := f.whoami(c); got != "anonymous" {
		t.Errorf("after logout: got %q, want anonymous", got)
	}
	if a := get(t, c, loc); a.status >= 400 {
		t.Errorf("provider logout: %d %s", a.status, a.body)
	}
	if f.op.EndSessions() != 1 {
		t.Errorf("provider end_session calls: %d, want 1", f.op.EndSessions())
	}
}

func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUserWithoutRoleGetsNoToken(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	get(t, c, f.authorize(c, "bob", "bob-pass"))
	_, csrf, _ := strings.Cut(f.whoami(c), " ")
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+login.TokenPath, nil)
	req.Header.Set("Origin", f.srv.URL)
	req.Header.Set("X-CSRF-Token", csrf)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"token":""}` {
		t.Errorf("bob's token: got %d %s, want an empty token (he watches what anyone may)", res.StatusCode, b)
	}
}

// TestCallbackRefusals: every bad answer gets an error page and no session.
func TestCallbackRefusals(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		mangle func(c *http.Client, cb string) string // returns the URL to visit
		tamper func(map[string]any)
		want   string // in the page
	}{
		{"tampered state", func(_ *http.Client, cb string) string { return setParam(cb, "state", "forged-state") }, nil, "does not belong to this browser"},
		{"no flow cookie (another browser)", func(_ *http.Client, cb string) string { return cb }, nil, "expired or was already used"},
		{"code for another client", func(c *http.Client, cb string) string {
			other := f.otherClientCode(c)
			return setParam(cb, "code", other)
		}, nil, "did not accept this login"},
		{"wrong nonce", nil, func(m map[string]any) { m["nonce"] = "another-nonce" }, "could not be verified"},
		{"wrong audience", nil, func(m map[string]any) { m["aud"] = []string{"other"}; m["azp"] = "other" }, "could not be verified"},
		{"wrong issuer", nil, func(m map[string]any) { m["iss"] = "http://127.0.0.1:1/realms/evil" }, "could not be verified"},
		{"azp of another client", nil, func(m map[string]any) { m["azp"] = "other" }, "could not be verified"},
		{"expired ID token", nil, func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }, "could not be verified"},
		{"oversized code", func(_ *http.Client, cb string) string { return setParam(cb, "code", strings.Repeat("a", 5000)) }, nil, "not valid"},
		{"oversized query", func(_ *http.Client, cb string) string { return cb + "&x=" + strings.Repeat("b", 9000) }, nil, "not valid"},
		{"repeated state", func(_ *http.Client, cb string) string { return cb + "&state=again" }, nil, "not valid"},
		{"malformed query", func(_ *http.Client, cb string) string { return cb + "&%zz" }, nil, "not valid"},
		{"provider error", func(_ *http.Client, cb string) string {
			return f.srv.URL + login.CallbackPath + "?error=access_denied&error_description=%3Cscript%3E"
		}, nil, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient()
			f.op.Tamper(tt.tamper)
			defer f.op.Tamper(nil)
			cb := f.authorize(c, "alice", "alice-pass")
			visit := cb
			if tt.mangle != nil {
				if tt.name == "no flow cookie (another browser)" {
					visit = cb
					c = newClient()
				} else {
					visit = tt.mangle(c, cb)
				}
			}
			a := get(t, c, visit)
			if a.status < 400 || !strings.Contains(a.body, tt.want) {
				t.Errorf("got %d, want an error page saying %q:\n%s", a.status, tt.want, a.body)
			}
			if strings.Contains(a.body, "<script>") {
				t.Errorf("the page holds unescaped input")
			}
			if sc := sessionCookie(a.res); sc != nil && sc.Value != "" {
				t.Errorf("a session cookie was set: %v", sc)
			}
			if got := f.whoami(c); got != "anonymous" {
				t.Errorf("whoami: got %q, want anonymous", got)
			}
			if a.res.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("error page without Content-Security-Policy")
			}
		})
	}
}

func TestCallbackReplay(t *testing.T) {
	f := newFixture(t)
	c := newClient()
	cb := f.authorize(c, "alice", "alice-pass")
	// Keep the flow cookie to replay it with the same callback after the first use.
	u, _ := url.Parse(f.srv.URL + login.LoginPath)
	flow := c.Jar.Cookies(u)
	if a := get(t, c, cb); a.status != http.StatusSeeOther {
		t.Fatalf("first callback: %d %s", a.status, a.body)
	}
	c2 := newClient()
	c2.Jar.SetCookies(u, flow)
	a := get(t, c2, cb)
	if a.status < 400 || !strings.Contains(a.body, "expired or was already used") {
		t.Errorf("replayed callback: got %d, want an error page:\n%s", a.status, a.body)
	}
	if got := f.whoami(c2); got != "anonymous" {
		t.Errorf("replay gave a session: %q", got)
	}
}

// TestLoginFloodSparesOthersFlows: one address (here rotating within one IPv6 /64), or the
// clients whose address is unknown, starting logins in a loop must not evict a login another
// client has under way: the pending flows are capped per client (clientip.Key). Before the cap,
// about 2,000 unauthenticated GET /login from anywhere pushed every other login out.
func TestLoginFloodSparesOthersFlows(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header func(i int) http.Header
	}{
		{"one /64", func(i int) http.Header {
			return http.Header{"X-Forwarded-For": {fmt.Sprintf("2001:db8:1:2::%x", i+1)}}
		}},
		{"unknown addresses", func(i int) http.Header { // contradictory headers: the address is unknown
			return http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Real-Ip": {fmt.Sprintf("203.0.113.%d", i%250+1)}}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			victim := newClient()
			cb := f.authorize(victim, "alice", "alice-pass") // started from 127.0.0.1, not yet finished
			// The flood comes through a trusted proxy that forwards its clients' addresses.
			proxied := httptest.NewServer(clientip.Proxies{netip.MustParsePrefix("127.0.0.0/8")}.Handler(f.m.Handler()))
			t.Cleanup(proxied.Close)
			flooder := newClient()
			for i := range 2_100 {
				req, _ := http.NewRequest("GET", proxied.URL+login.LoginPath, nil)
				req.Header = tt.header(i)
				res, err := flooder.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusFound {
					t.Fatalf("flood request %d: got %d, want 302 to the provider", i, res.StatusCode)
				}
			}
			if a := get(t, victim, cb); a.status != http.StatusSeeOther {
				t.Fatalf("the victim's callback after the flood: got %d, want 303 (its flow was evicted):\n%s", a.status, a.body)
			}
			if got := f.whoami(victim); !strings.HasPrefix(got, "alice ") {
				t.Errorf("whoami after the flood: %q, want alice", got)
			}
		})
	}
}

// otherClientCode logs in through the provider for client "other" and returns its code.
func (f *fixture) otherClientCode(c *http.Client) string {
	f.t.Helper()
	q := url.Values{"client_id": {"other"}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {f.srv.URL + login.CallbackPath}, "state": {"s"}, "nonce": {"n"}}
	cb := f.authorizeAt(newClient(), f.op.Issuer+"/auth?"+q.Encode(), "alice", "alice-pass")
	u, _ := url.Parse(cb)
	return u.Query().Get("code")
}

func setParam(raw, k, v string) string {
	u, _ := url.Parse(raw)
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestSessionExpiryAndForeignCookies(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	f := newFixture(t, login.WithClock(clock))
	c := newClient()
	get(t, c, f.authorize(c, "alice", "alice-pass"))
	if got := f.whoami(c); !strings.HasPrefix(got, "alice ") {
		t.Fatalf("whoami: %q", got)
	}
	// A cookie of another gatehouse (same name, a session this one never made).
	other := newClient()
	u, _ := url.Parse(f.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		other.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: "AAAA" + ck.Value[4:], Path: "/"}})
	}
	if got := f.whoami(other); got != "stale" {
		t.Errorf("foreign cookie: got %q, want stale (no session)", got)
	}
	now = now.Add(login.DefaultSessionTTL + time.Second)
	if got := f.whoami(c); got != "stale" {
		t.Errorf("expired session: got %q, want stale (no session)", got)
	}
}

func TestSecureCookieBehindTrustedProxy(t *testing.T) {
	trusted := func(a netip.Addr) bool { return a.IsLoopback() }
	for _, tt := range []struct {
		name    string
		trust   bool
		proto   string
		secure  bool
		cookieN string
	}{
		{"trusted proxy says https", true, "https", true, "__Host-gatehouse-session"},
		{"untrusted peer says https", false, "https", false, "gatehouse-session"},
		{"trusted proxy says http", true, "http", false, "gatehouse-session"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []login.Option
			if tt.trust {
				opts = append(opts, login.WithTrustedProxy(trusted))
			}
			f := newFixture(t, opts...)
			c := newClient()
			cb := f.authorize(c, "alice", "alice-pass")
			req, _ := http.NewRequest(http.MethodGet, cb, nil)
			req.Header.Set("X-Forwarded-Proto", tt.proto)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			sc := sessionCookie(res)
			if sc == nil || sc.Secure != tt.secure || sc.Name != tt.cookieN {
				t.Errorf("cookie: got %+v, want %s Secure=%v", sc, tt.cookieN, tt.secure)
			}
		})
	}
}
