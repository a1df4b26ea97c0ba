package srs

import (
	"bytes"
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz"
)

// switchable allows token abc until gone is set (a reload removed the grant), with an expiry.
type switchable struct {
	gone atomic.Bool
	exp  time.Time
}

func (s *switchable) Authorize(_ context.Context, req *authz.Request) authz.Decision {
	if req.Token == "abc" && !s.gone.Load() {
		return authz.Allowing("alice", s.exp)
	}
	return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no")
}

// TestSessionsRecheckedUntilTheirEnd: SRS never asks again about a running session: the handler
// keeps the request that admitted it until on_unpublish/on_stop, re-decides it on Recheck (a
// removed grant returns it, for a kick through SRS's API) and returns it from Expired when its
// grant ends.
func TestSessionsRecheckedUntilTheirEnd(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	auth := &switchable{exp: now.Add(time.Minute)}
	h := New(Config{Now: func() time.Time { return *clock.Load() }}, auth, nil, nil)
	hook := func(action, client string) {
		t.Helper()
		b := hookBody(action, "__defaultVhost__", "live", "alice", "?token=abc", "rtmp://127.0.0.1/live")
		b = []byte(string(b[:len(b)-1]) + `,"client_id":"` + client + `"}`) // last key wins in encoding/json
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/hooks/srs", bytes.NewReader(b)))
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", action, rec.Code, rec.Body)
		}
	}
	hook("on_publish", "c1")
	hook("on_play", "c2")
	hook("on_stop", "c2") // ended: forgotten with its credentials
	if n := h.sessions.Len(); n != 1 {
		t.Fatalf("remembered %d sessions, want 1", n)
	}
	if got := h.Recheck(context.Background()); len(got) != 0 {
		t.Fatalf("re-check with the grant in place ended %+v", got)
	}
	later := now.Add(time.Minute)
	clock.Store(&later)
	if got := h.Expired(); len(got) != 1 || got[0].ID != "vid-1/c1" || got[0].Source != Source || !got[0].Publish {
		t.Fatalf("expired: got %+v, want the publish session vid-1/c1", got)
	}

	hook("on_publish", "c3")
	auth.gone.Store(true)
	if got := h.Recheck(context.Background()); len(got) != 1 || got[0].ID != "vid-1/c3" || got[0].Path != "live/alice" {
		t.Fatalf("re-check after the grant was removed: got %+v, want vid-1/c3", got)
	}
	if n := h.sessions.Len(); n != 0 {
		t.Errorf("remembered %d sessions after the re-check, want 0", n)
	}
}
