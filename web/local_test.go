package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
	"gatehouse/web"
	"gatehouse/web/login"
)

// operators allows api to admin by name; reading public/ to anyone.
type operators struct{}

func (operators) Authorize(_ context.Context, r *authz.Request) authz.Decision {
	switch {
	case r.Action == authz.ActionAPI && r.User == "admin" && r.Pass == "admin-pw":
		return authz.Allowing("admin", time.Time{})
	case r.Action == authz.ActionRead && strings.HasPrefix(r.Path, "public/"):
		return authz.Allowing("", time.Time{})
	}
	return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no")
}

type minter struct{}

func (minter) Issue(sub string, _ []authz.Permission, _ time.Duration) (string, error) {
	return "api-token-for-" + sub, nil
}
func (minter) MaxTTL() time.Duration { return time.Hour }

// TestLocalLoginOpensManage: without an identity provider, viewers see no "Log in"; /manage
// sends to the local form; an operator's login opens /manage, whose decisions API is proxied
// with a token for the operator, never the cookie.
func TestLocalLoginOpensManage(t *testing.T) {
	m, err := login.NewLocal(operators{}, minter{})
	if err != nil {
		t.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.Path+" "+r.Header.Get("Authorization")+" cookie="+r.Header.Get("Cookie"))
	})
	app := web.New(web.Options{Registry: live.NewRegistry(), Auth: operators{}, Login: m, API: api})
	mux := http.NewServeMux()
	for _, p := range app.Paths() {
		mux.Handle(p, app.Handler())
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { app.Close(); srv.Close() })
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) (int, string, string) {
		t.Helper()
		res, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Request.URL.Path, string(b)
	}
	if _, _, body := get("/"); strings.Contains(body, `href="/login`) {
		t.Errorf("the grid offers viewers a login that only operators can use")
	}
	if code, at, body := get("/manage"); code != http.StatusOK || at != "/login" || !strings.Contains(body, `name="password"`) {
		t.Fatalf("/manage logged out: got %d at %s, want the login form", code, at)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"username": {"admin"}, "password": {"admin-pw"}, "next": {"/manage"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.URL)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Request.URL.Path != "/manage" || !strings.Contains(string(b), "Recent decisions") || !strings.Contains(string(b), `data-user="admin"`) {
		t.Fatalf("after login: at %s, body:\n%s", res.Request.URL.Path, b)
	}
	if code, _, body := get("/manage/api/decisions"); code != http.StatusOK || body != "/api/v1/decisions Bearer api-token-for-admin cookie=" {
		t.Errorf("decisions through /manage/api: got %d %q", code, body)
	}
}
