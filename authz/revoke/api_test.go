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
