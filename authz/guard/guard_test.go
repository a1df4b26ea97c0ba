package guard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gatehouse/authz"
)

type authFunc func(*authz.Request) authz.Decision

func (f authFunc) Authorize(_ context.Context, req *authz.Request) authz.Decision { return f(req) }

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		outcome   authz.Outcome
		wantOK    bool
		challenge string
	}{
		{"allow", authz.Allow, true, ""},
		{"unauthenticated gets a Basic challenge", authz.Unauthenticated, false, Challenge},
		{"forbidden gets none", authz.Forbidden, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *authz.Request
			auth := authFunc(func(req *authz.Request) authz.Decision {
				got = req
				return authz.Decision{Outcome: tc.outcome}
			})
			r := httptest.NewRequest(http.MethodGet, "/api/v1/keys", nil)
			r.SetBasicAuth("admin", "pw")
			r.Header.Set("User-Agent", "curl")
			w := httptest.NewRecorder()
			d, ok := Check(w, r, auth, authz.ActionAPI, "api")
			if ok != tc.wantOK || d.Outcome != tc.outcome {
				t.Fatalf("got %v %v, want %v %v", d.Outcome, ok, tc.outcome, tc.wantOK)
			}
			if h := w.Header().Get("WWW-Authenticate"); h != tc.challenge {
				t.Errorf("WWW-Authenticate: got %q, want %q", h, tc.challenge)
			}
			if got.Action != authz.ActionAPI || got.Source != "api" || got.User != "admin" || got.Pass != "pw" || got.UserAgent != "curl" {
				t.Errorf("request: got %+v", got)
			}
			if !got.IP.IsValid() {
				t.Errorf("request without a client address")
			}
		})
	}
}

// TestCheckNamed: an anonymous allow (user: any) is not enough where credentials are managed.
func TestCheckNamed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		d        authz.Decision
		wantOK   bool
		wantCode int
	}{
		{"named allow", authz.Allowing("admin", time.Time{}), true, 0},
		{"anonymous allow", authz.Allowing("", time.Time{}), false, http.StatusUnauthorized},
		{"denial", authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "no"), false, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := authFunc(func(*authz.Request) authz.Decision { return tc.d })
			w := httptest.NewRecorder()
			d, ok := CheckNamed(w, httptest.NewRequest(http.MethodPost, "/api/v1/keys", nil), auth, authz.ActionAPI, "api")
			if ok != tc.wantOK || (!ok && d.HTTPStatus() != tc.wantCode) {
				t.Fatalf("got %v %d, want %v %d", ok, d.HTTPStatus(), tc.wantOK, tc.wantCode)
			}
			if !ok && tc.wantCode == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") != Challenge {
				t.Errorf("no Basic challenge for an anonymous grant")
			}
		})
	}
}

// TestSetRetryAfter: whole seconds, rounded up, at least 1.
func TestSetRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "1"},
		{-time.Second, "1"},
		{time.Millisecond, "1"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{90 * time.Second, "90"},
		{time.Hour, "3600"},
	} {
		h := http.Header{}
		SetRetryAfter(h, tt.d)
		if got := h.Get("Retry-After"); got != tt.want {
			t.Errorf("SetRetryAfter(%v): got %q, want %q", tt.d, got, tt.want)
		}
	}
}
