package nginxrtmp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/hookio"
	"gatehouse/authz/live"
)

// guessEngine allows alice with the password "right" and counts failures with the default
// brute-force policy.
func guessEngine(clock func() time.Time) *authz.Engine {
	be := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		if r.User == "alice" && r.Pass == "right" {
			return authz.Allowing("alice", time.Time{}), nil
		}
		return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no"), nil
	})
	return authz.NewEngine(authz.NewChain(authz.Method{Name: "users", Backend: be}).
		WithPolicy(authz.Policy{BruteForce: authz.DefaultBruteForce()}), nil, authz.WithClock(clock))
}

// TestUpdateGuessesOverCrossSiteGET (from an outside review): a GET with no Origin and no
// Sec-Fetch-* (what a cross-site <img> to a hooks listener on a private IP over http carries)
// passes hookio.Guard. With GET answered by default, update_publish with made-up clientids was an
// uncounted, unbanned password oracle and a hit was announced as a live stream. GET is now off
// unless hooks.nginx_rtmp.allow_get.
func TestUpdateGuessesOverCrossSiteGET(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	eng := guessEngine(clock)
	rec := newRecorder()
	h := hookio.Guard(New(Config{Now: clock}, eng, rec, nil), nil, nil)
	get := func(q string) int {
		r := httptest.NewRequest(http.MethodGet, "/hooks/nginx-rtmp?"+q, nil)
		r.Host = "10.0.0.5:8090" // the hooks listener on a private address
		r.RemoteAddr = "10.0.0.77:40000"
		r.Header.Set("User-Agent", "Mozilla/5.0")
		r.Header.Set("Accept", "image/avif,image/webp,*/*")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for i := range 500 {
		code := get(fmt.Sprintf("call=update_publish&app=live&name=alice&addr=203.0.113.9&clientid=%d&user=alice&pass=guess%d", i, i))
		if code != http.StatusMethodNotAllowed {
			t.Fatalf("guess %d over GET: got %d, want 405", i, code)
		}
	}
	code := get("call=update_publish&app=live&name=alice&addr=203.0.113.9&clientid=9999&user=alice&pass=right")
	if code == 200 || has(rec, is(live.Published, "live/alice")) {
		t.Errorf("the right guess over GET got %d (announced: %v), want 405 and nothing announced", code, has(rec, is(live.Published, "live/alice")))
	}
}

// TestUntrackedUpdateIsCounted: an update for a session the handler never admitted (an unknown
// clientid) is a new attempt: wrong passwords count and earn a ban, which then refuses even the
// right one, and nothing is announced. A tracked session's update stays a re-check
// (TestUpdateSurvivesOthersBruteForceBans), and an untracked update with the right credentials
// and no ban is still allowed and relearned (TestRestartRelearnsSessions).
func TestUntrackedUpdateIsCounted(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	eng := guessEngine(clock)
	rec := newRecorder()
	h := New(Config{Now: clock}, eng, rec, nil)
	post := func(clientID, pass string) *httptest.ResponseRecorder {
		return hookPost(h, "app=live&addr=203.0.113.9&clientid="+clientID+"&call=update_publish&time=30&timestamp=1&name=alice&user=alice&pass="+pass)
	}
	banned := -1
	for i := range 100 {
		w := post(fmt.Sprint(i), fmt.Sprint("guess", i))
		if w.Code != http.StatusForbidden {
			t.Fatalf("guess %d: got %d, want 403", i, w.Code)
		}
		if strings.Contains(w.Body.String(), authz.ReasonBanned) {
			banned = i
			break
		}
	}
	if banned < 0 {
		t.Fatal("100 wrong passwords in untracked updates from one address: never banned (not counted)")
	}
	if w := post("9999", "right"); w.Code != http.StatusForbidden {
		t.Errorf("the right password after the ban (untracked update): got %d, want 403", w.Code)
	}
	if has(rec, is(live.Published, "live/alice")) {
		t.Errorf("a refused untracked update was announced as a live stream")
	}
}
