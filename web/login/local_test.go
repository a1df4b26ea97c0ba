package login

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz"
)

// users allows api to admin/admin-pw by name and, like the built-in loopback grant, to anyone
// anonymously; it counts its calls.
type users struct{ calls atomic.Int32 }

func (u *users) Authorize(_ context.Context, r *authz.Request) authz.Decision {
	u.calls.Add(1)
	switch {
	case r.Action != authz.ActionAPI || r.Source != LocalSource:
		return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "no")
	case r.User == "admin" && r.Pass == "admin-pw":
		return authz.Allowing("admin", time.Time{})
	case r.User == "viewer" && r.Pass == "viewer-pw":
		return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "no")
	}
	return authz.Allowing("", time.Time{}) // user: any from loopback
}

type nopMinter struct{}

func (nopMinter) Issue(string, []authz.Permission, time.Duration) (string, error) { return "tok", nil }
func (nopMinter) MaxTTL() time.Duration                                           { return time.Hour }

func localPost(h http.Handler, origin, user, pass, next string) *httptest.ResponseRecorder {
	form := url.Values{"username": {user}, "password": {pass}, "next": {next}}
	r := httptest.NewRequest(http.MethodPost, "http://gh.test/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	r.RemoteAddr = "192.0.2.9:5000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestLocalLogin: only a named user allowed api gets a session (an anonymous api grant, a
// user without api and a wrong password get the form again and no cookie); the session cookie
// is HttpOnly and SameSite=Lax; a cross-site post is refused; the password is never logged.
func TestLocalLogin(t *testing.T) {
	for _, tc := range []struct {
		name, origin, user, pass string
		wantStatus               int
		wantSession              bool
	}{
		{"admin", "http://gh.test", "admin", "admin-pw", http.StatusSeeOther, true},
		{"wrong password", "http://gh.test", "admin", "nope-pw-123", http.StatusUnauthorized, false},
		{"anonymous api grant is not a login", "http://gh.test", "whoever", "anything-pw", http.StatusUnauthorized, false},
		{"user without api", "http://gh.test", "viewer", "viewer-pw", http.StatusUnauthorized, false},
		{"cross-site post", "http://evil.test", "admin", "admin-pw", http.StatusForbidden, false},
		{"no origin", "", "admin", "admin-pw", http.StatusForbidden, false},
		{"empty password", "http://gh.test", "admin", "", http.StatusBadRequest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			m, err := NewLocal(&users{}, nopMinter{}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err != nil {
				t.Fatal(err)
			}
			w := localPost(m.Handler(), tc.origin, tc.user, tc.pass, "/manage")
			if w.Code != tc.wantStatus {
				t.Fatalf("status: got %d, want %d\n%s", w.Code, tc.wantStatus, w.Body)
			}
			var session *http.Cookie
			for _, c := range w.Result().Cookies() {
				if c.Name == "gatehouse-session" && c.Value != "" {
					session = c
				}
			}
			if (session != nil) != tc.wantSession {
				t.Fatalf("session cookie: got %v, want %v", session, tc.wantSession)
			}
			if tc.pass != "" && strings.Contains(logs.String(), tc.pass) {
				t.Errorf("the log holds the password: %s", logs.String())
			}
			if !tc.wantSession {
				return
			}
			if !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" {
				t.Errorf("cookie: got %+v, want HttpOnly, SameSite=Lax, Path=/", session)
			}
			if loc := w.Header().Get("Location"); loc != "/manage" {
				t.Errorf("redirect: got %q, want /manage", loc)
			}
			r := httptest.NewRequest(http.MethodGet, "http://gh.test/manage", nil)
			r.AddCookie(session)
			s, _ := m.Current(r)
			if s == nil || s.Name != "admin" || !s.Can(authz.ActionAPI) || s.Can(authz.ActionRead) || s.CSRF == "" {
				t.Fatalf("session: got %+v", s)
			}
			if tok, err := m.APIToken(s); err != nil || tok == "" {
				t.Errorf("api token: %q %v", tok, err)
			}
		})
	}
}

// TestLocalLoginForm: GET /login shows the form with the (safe) next path; the callback of the
// OIDC flow is not served.
func TestLocalLoginForm(t *testing.T) {
	m, _ := NewLocal(&users{}, nopMinter{})
	for _, tc := range []struct{ url, want string }{
		{"/login?next=/manage", `name="next" value="/manage"`},
		{"/login?next=https://evil.test/", `name="next" value="/"`},
	} {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.url, nil))
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), tc.want) || !strings.Contains(w.Body.String(), `type="password"`) {
			t.Errorf("%s: got %d, want the form with %s", tc.url, w.Code, tc.want)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self';") {
			t.Errorf("CSP: %q", csp)
		}
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login/callback?code=x&state=y", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("callback: got %d, want 404", w.Code)
	}
}

// TestLocalLoginThrottle: after 5 failures an address must wait 30 s (not even the right
// password is checked meanwhile), then 60 s after the next failure; a success clears it; another
// address is not affected.
func TestLocalLoginThrottle(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	u := &users{}
	m, _ := NewLocal(u, nopMinter{}, WithClock(func() time.Time { return now }))
	h := m.Handler()
	for i := range freeFailures {
		if w := localPost(h, "http://gh.test", "admin", "guess-pw", "/"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i+1, w.Code)
		}
	}
	calls := u.calls.Load()
	w := localPost(h, "http://gh.test", "admin", "admin-pw", "/")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "30" {
		t.Fatalf("locked out: got %d Retry-After %q, want 429 and 30", w.Code, w.Header().Get("Retry-After"))
	}
	if u.calls.Load() != calls {
		t.Errorf("a locked-out attempt was checked")
	}
	other := url.Values{"username": {"admin"}, "password": {"admin-pw"}}
	r := httptest.NewRequest(http.MethodPost, "http://gh.test/login", strings.NewReader(other.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "http://gh.test")
	r.RemoteAddr = "198.51.100.1:5000"
	ow := httptest.NewRecorder()
	h.ServeHTTP(ow, r)
	if ow.Code != http.StatusSeeOther {
		t.Errorf("another address: got %d, want 303", ow.Code)
	}

	now = now.Add(31 * time.Second)
	if w := localPost(h, "http://gh.test", "admin", "guess-pw", "/"); w.Code != http.StatusUnauthorized {
		t.Fatalf("after the wait: got %d, want 401", w.Code)
	}
	if w := localPost(h, "http://gh.test", "admin", "admin-pw", "/"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("second lockout: got %d Retry-After %q, want 429 and 60", w.Code, w.Header().Get("Retry-After"))
	}
	now = now.Add(61 * time.Second)
	if w := localPost(h, "http://gh.test", "admin", "admin-pw", "/"); w.Code != http.StatusSeeOther {
		t.Fatalf("right password after the wait: got %d, want 303", w.Code)
	}
	if w := localPost(h, "http://gh.test", "admin", "guess-pw", "/"); w.Code != http.StatusUnauthorized {
		t.Errorf("after a success the count starts again: got %d, want 401", w.Code)
	}
}

// genUsers is users with a configuration generation, as the engine has.
type genUsers struct {
	users
	gen atomic.Uint64
}

func (g *genUsers) Generation() uint64 { return g.gen.Load() }

// TestLocalSessionEndsWhenAuthChanges: a local session's password cannot be checked again, so a
// reload that changes auth (the engine's generation advances) ends it; it used to keep minting
// api tokens for 8 hours after the user was removed.
func TestLocalSessionEndsWhenAuthChanges(t *testing.T) {
	u := &genUsers{}
	m, err := NewLocal(u, nopMinter{})
	if err != nil {
		t.Fatal(err)
	}
	w := localPost(m.Handler(), "http://gh.test", "admin", "admin-pw", "/manage")
	cs := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || len(cs) == 0 {
		t.Fatalf("login: got %d with %d cookies, want 303 and a session", w.Code, len(cs))
	}
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://gh.test/manage", nil)
		r.AddCookie(cs[0])
		return r
	}
	if s, _ := m.Current(req()); s == nil {
		t.Fatal("no session right after the login")
	}
	u.gen.Add(1) // a reload changed auth
	if s, stale := m.Current(req()); s != nil || !stale {
		t.Errorf("after a reload that changed auth: got session %v stale %v, want none and stale", s != nil, stale)
	}
}
