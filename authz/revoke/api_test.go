package revoke

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/guard"
	"gatehouse/authz/live"
)

// apiAuth allows the api action to "Basic admin" (named) and to "Basic anon" as an anonymous
// grant (Identity "", like `user: any`), and refuses everyone else.
type apiAuth struct{}

func (apiAuth) Authorize(_ context.Context, req *authz.Request) authz.Decision {
	switch {
	case req.Action != authz.ActionAPI:
		return authz.Denying(authz.Forbidden, "wrong_action", "no")
	case req.User == "admin":
		return authz.Allowing("admin", time.Time{})
	case req.User == "anon":
		return authz.Allowing("", time.Time{})
	}
	return authz.Denying(authz.Unauthenticated, "no_credentials", "credentials required")
}

type banLog struct{ keys, ids []string }

func (b *banLog) Ban(keyID, identity string, _ time.Time) error {
	b.keys, b.ids = append(b.keys, keyID), append(b.ids, identity)
	return nil
}

// TestSessionsAPIAnswers: every answer of DELETE /api/v1/sessions/{id} (and the list), including
// the refusal of an anonymous api grant, which must neither kick nor ban.
func TestSessionsAPIAnswers(t *testing.T) {
	reg := live.NewRegistry()
	reg.Record(live.Event{Type: live.Published, Path: "live/a", Source: "srs", Session: "c1", KeyID: "key_a"})
	reg.Record(live.Event{Type: live.Published, Path: "live/b", Source: "srs", Session: "dup"})
	reg.Record(live.Event{Type: live.Published, Path: "live/c", Source: "mediamtx", Session: "dup", KeyID: "key_c"})
	k := &flaky{done: make(chan live.Session, 4)}
	rv := New(Config{}, map[string]Kicker{"srs": k, "mediamtx": k}, []Lister{reg}, reg, nil)
	bans := &banLog{}
	h := APIHandler(rv, apiAuth{}, bans, nil)

	tests := []struct {
		name, method, target, user string
		want                       int
		reason                     string
	}{
		{"no credentials", "DELETE", "/api/v1/sessions/c1?ban=10m", "", 401, "no_credentials"},
		{"anonymous grant cannot kick", "DELETE", "/api/v1/sessions/c1?ban=10m", "anon", 401, guard.ReasonIdentityRequired},
		{"anonymous grant cannot list", "GET", "/api/v1/sessions", "anon", 401, guard.ReasonIdentityRequired},
		{"bad ban", "DELETE", "/api/v1/sessions/c1?ban=forever", "admin", 400, ""},
		{"ban too long", "DELETE", "/api/v1/sessions/c1?ban=200h", "admin", 400, ""},
		{"negative ban", "DELETE", "/api/v1/sessions/c1?ban=-1m", "admin", 400, ""},
		{"unknown id", "DELETE", "/api/v1/sessions/nope", "admin", 404, ""},
		{"ambiguous id", "DELETE", "/api/v1/sessions/dup", "admin", 409, ""},
		{"ambiguous id resolved by source", "DELETE", "/api/v1/sessions/dup?source=mediamtx", "admin", 202, ""},
		{"list", "GET", "/api/v1/sessions", "admin", 200, ""},
		{"kick with ban", "DELETE", "/api/v1/sessions/c1?ban=10m", "admin", 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, "pw")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status: got %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
			var body struct{ Error, Reason string }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if body.Reason != tt.reason {
				t.Errorf("reason: got %q, want %q", body.Reason, tt.reason)
			}
			if tt.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without a challenge")
			}
		})
	}
	// Only the two admin kicks were queued, and only the admin's ban was recorded.
	if len(bans.keys) != 1 || bans.keys[0] != "key_a" {
		t.Errorf("bans: got %v, want only key_a's (by admin)", bans.keys)
	}
	rv.mu.Lock()
	queued := len(rv.queue)
	rv.mu.Unlock()
	if queued != 2 {
		t.Errorf("queued kicks: got %d, want 2 (the anonymous grant's must not be)", queued)
	}
}

// relay is a Broadcaster that hands each Order to another node's Apply (a fleet of two).
type relay struct {
	to  *Revoker
	ban Banner
	err error
}

func (r *relay) Broadcast(_ context.Context, o Order) error {
	if r.err != nil {
		return r.err
	}
	raw, _ := json.Marshal(o) // it travels as JSON
	var got Order
	if err := json.Unmarshal(raw, &got); err != nil {
		return err
	}
	r.to.Apply(got, r.ban)
	return nil
}

// TestSessionsAPIFleetKick: a kick on node A of a session that node B holds is announced and B
// ends it, applying the ban to the session's key; A's own sessions are kicked locally as
// before; without the fleet (or with the fleet unreachable) the unknown id is 404 (503).
func TestSessionsAPIFleetKick(t *testing.T) {
	regA, regB := live.NewRegistry(), live.NewRegistry()
	regB.Record(live.Event{Type: live.Published, Path: "live/b", Source: "sfu", Session: "on-b", KeyID: "key_b"})
	kA, kB := &flaky{done: make(chan live.Session, 4)}, &flaky{done: make(chan live.Session, 4)}
	rvA := New(Config{}, map[string]Kicker{"sfu": kA}, []Lister{regA}, regA, nil)
	rvB := New(Config{}, map[string]Kicker{"sfu": kB}, []Lister{regB}, regB, nil)
	run(t, rvA)
	run(t, rvB)
	bansB := &banLog{}
	do := func(h http.Handler, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("DELETE", target, nil)
		req.SetBasicAuth("admin", "x")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}

	if w := do(APIHandler(rvA, apiAuth{}, &banLog{}, nil), "/api/v1/sessions/on-b"); w.Code != 404 {
		t.Fatalf("without a fleet: %d, want 404", w.Code)
	}
	if w := do(APIHandler(rvA, apiAuth{}, &banLog{}, nil, WithBroadcaster(&relay{err: context.DeadlineExceeded})), "/api/v1/sessions/on-b"); w.Code != 503 {
		t.Fatalf("fleet unreachable: %d, want 503", w.Code)
	}
	h := APIHandler(rvA, apiAuth{}, &banLog{}, nil, WithBroadcaster(&relay{to: rvB, ban: bansB}))
	if w := do(h, "/api/v1/sessions/on-b?ban=10m"); w.Code != 202 {
		t.Fatalf("kick on A of B's session: %d %s, want 202", w.Code, w.Body)
	}
	select {
	case s := <-kB.done:
		if s.ID != "on-b" {
			t.Fatalf("B kicked %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B never ended its session")
	}
	if len(bansB.keys) != 1 || bansB.keys[0] != "key_b" {
		t.Fatalf("B's bans: %+v, want key_b", bansB.keys)
	}
	select {
	case s := <-kA.done:
		t.Fatalf("A kicked %+v", s)
	default:
	}
	// An order for a session B does not hold does nothing on B.
	if n := rvB.Apply(Order{Session: "elsewhere"}, bansB); n != 0 {
		t.Fatalf("Apply of an unknown session: %d", n)
	}
}
