package sfu

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
)

// bannedAuth refuses everything as a brute-force ban does.
type bannedAuth struct{}

func (bannedAuth) Authorize(context.Context, *authz.Request) authz.Decision {
	d := authz.Denying(authz.Forbidden, authz.ReasonBanned, "too many failed attempts from this address; try again later")
	d.RetryAfter = 41*time.Second + 500*time.Millisecond // not whole seconds: rounded up, never down
	return d
}

// TestBannedRetryAfter: a banned client's WHIP and WHEP requests are refused at once with
// Retry-After (in whole seconds rounded up: guard.SetRetryAfter), before any PeerConnection
// exists.
func TestBannedRetryAfter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UDPPort = 0
	s, err := New(cfg, bannedAuth{}, &recorder{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{"/whip/live/cam", "/whep/live/cam"} {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader("v=0\r\n"))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer guess")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Retry-After") != "42" {
			t.Errorf("%s: got %d Retry-After %q, want 403 and 42", path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if n := s.pcs.Load(); n != 0 {
		t.Errorf("%d PeerConnections created for a banned client, want 0", n)
	}
}
