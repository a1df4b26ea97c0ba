package forwardauth

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"gatehouse/authz"
)

// keyBackend allows ?key=k1 and ?key=k2 (managed stream keys, as the keys method answers: a
// KeyID) and the token "viewer" (no key) to read live/cam.
func keyBackend(_ context.Context, r *authz.Request) (authz.Decision, error) {
	switch {
	case r.Key == "k1" || r.Key == "k2":
		d := authz.Allowing("alice", time.Time{})
		d.KeyID = "id-" + r.Key
		return d, nil
	case r.Token == "viewer":
		return authz.Allowing("bob", time.Time{}), nil
	}
	return authz.Decision{}, nil
}

// TestCookieEndsWithKeyRevocation: an HLS viewer admitted by a managed stream key holds a
// segment cookie; revoking the key (RevokeKey, wired to the key store's revocations) refuses the
// cookie alone from then on (it used to work for max_age: a revocation is neither a reload nor a
// ban). A rotation's old key keeps its cookies through the grace period. Cookies earned with
// other keys or a token are untouched.
func TestCookieEndsWithKeyRevocation(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "keys", Backend: authz.BackendFunc(keyBackend)}).WithPolicy(queryTokens), nil,
		authz.WithClock(func() time.Time { return now }))
	h := New(Config{}, eng, &recorder{}, nil)
	h.now = func() time.Time { return now }
	cookieFor := func(query string) *http.Cookie {
		t.Helper()
		w := serve(h, ask("/live/cam/index.m3u8?"+query))
		if w.Code != http.StatusNoContent || len(w.Result().Cookies()) != 1 {
			t.Fatalf("playlist with %s: got %d and %d cookies, want 204 and one", query, w.Code, len(w.Result().Cookies()))
		}
		return w.Result().Cookies()[0]
	}
	segment := func(c *http.Cookie) int {
		r := ask("/live/cam/seg0.ts")
		r.AddCookie(c)
		return serve(h, r).Code
	}
	k1, k2, tok := cookieFor("key=k1"), cookieFor("key=k2"), cookieFor("token=viewer")

	h.RevokeKey("id-k1", now)
	h.RevokeKey("id-k2", now.Add(time.Minute)) // a rotation with a minute of grace
	for _, tt := range []struct {
		name string
		c    *http.Cookie
		at   time.Duration
		want int
	}{
		{"revoked key's cookie", k1, 0, http.StatusUnauthorized},
		{"rotated key's cookie in the grace period", k2, 30 * time.Second, http.StatusNoContent},
		{"rotated key's cookie after the grace period", k2, time.Minute, http.StatusUnauthorized},
		{"token's cookie", tok, time.Minute, http.StatusNoContent},
	} {
		now = time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC).Add(tt.at)
		if got := segment(tt.c); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestRevokedKeysBounded: the revoked set forgets keys whose cookies have all expired, and past
// its bound refuses every key-earned cookie issued until then rather than forgetting a
// revocation.
func TestRevokedKeysBounded(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	h, _, _ := newHandler(t, Config{})
	h.now = func() time.Time { return now }
	for i := range maxRevokedKeys {
		h.RevokeKey(fmt.Sprint("old", i), now)
	}
	now = now.Add(DefaultCookieMaxAge + 2*time.Minute)
	h.RevokeKey("new", now)
	if n := len(h.revoked.at); n != 1 {
		t.Errorf("after max_age: %d revoked keys held, want 1", n)
	}
	for i := range maxRevokedKeys + 1 {
		h.RevokeKey(fmt.Sprint("flood", i), now)
	}
	if n := len(h.revoked.at); n > maxRevokedKeys {
		t.Errorf("%d revoked keys held, want at most %d", n, maxRevokedKeys)
	}
	issued := Grant{KeyID: "new", Issued: now.Add(-time.Second).UnixNano()}
	if !h.keyRevoked(issued, now) {
		t.Error("a revoked key's cookie after the set overflowed: accepted, want refused")
	}
	if h.keyRevoked(Grant{KeyID: "other", Issued: now.Add(time.Second).UnixNano()}, now.Add(time.Second)) {
		t.Error("a cookie issued after the overflow with a live key: refused, want accepted")
	}
}
