package mediamtx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

var errGone = errors.New("gone")

// fakeAPI is MediaMTX's control API as its documentation (api/openapi.yaml, internal/api) gives
// it: POST /v3/<kind>/kick/{id}, 200 when kicked, 404 for an unknown id; Basic auth checked.
type fakeAPI struct {
	mu     sync.Mutex
	known  map[string]bool // "<path>" that exists
	got    []string
	badReq []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, p, ok := r.BasicAuth()
	if !ok || u != "gatehouse" || p != "api-pass" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		f.badReq = append(f.badReq, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	f.got = append(f.got, r.URL.Path)
	if !f.known[r.URL.Path] {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// TestKick: the exact requests MediaMTX's API expects, per protocol, with the id its auth request
// carried; rtmps/rtsps (named rtmp/rtsp by MediaMTX) are found at their second path; an id
// nowhere is gone; bad credentials are an error (retried), never "done".
func TestKick(t *testing.T) {
	const id = "1c6b2f8e-3f5c-4a0e-9d43-7d7b8a9b0c11"
	api := &fakeAPI{known: map[string]bool{
		"/v3/rtmpconns/kick/" + id:      true,
		"/v3/rtspssessions/kick/" + id:  true,
		"/v3/srtconns/kick/" + id:       true,
		"/v3/webrtcsessions/kick/" + id: true,
		"/v3/hlssessions/kick/" + id:    true,
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	ep := conf.Endpoint{URL: srv.URL, User: "gatehouse", Password: "api-pass"}
	k := NewKicker(ep, srv.Client(), errGone, nil)
	for _, tt := range []struct {
		protocol, wantPath string
		wantErr            error
	}{
		{"rtmp", "/v3/rtmpconns/kick/" + id, nil},
		{"rtsp", "/v3/rtspssessions/kick/" + id, nil}, // after /v3/rtspsessions/kick/ answered 404
		{"srt", "/v3/srtconns/kick/" + id, nil},
		{"webrtc", "/v3/webrtcsessions/kick/" + id, nil},
		{"hls", "/v3/hlssessions/kick/" + id, nil},
		{"moq", "/v3/moqsessions/kick/" + id, errGone},
	} {
		t.Run(tt.protocol, func(t *testing.T) {
			api.mu.Lock()
			api.got = nil
			api.mu.Unlock()
			err := k.Kick(context.Background(), live.Session{Source: Source, ID: id, Protocol: tt.protocol})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			if last := api.got[len(api.got)-1]; last != tt.wantPath {
				t.Errorf("got POST %v, want last POST %s", api.got, tt.wantPath)
			}
		})
	}
	bad := NewKicker(conf.Endpoint{URL: srv.URL, User: "gatehouse", Password: "wrong"}, srv.Client(), errGone, nil)
	err := bad.Kick(context.Background(), live.Session{ID: id, Protocol: "rtmp"})
	if err == nil || errors.Is(err, errGone) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("bad credentials: got %v, want an error (not gone) without the password", err)
	}
	if len(api.badReq) > 0 {
		t.Errorf("requests with the wrong method: %v", api.badReq)
	}
}

// TestHandlerRemembersSessions: an allowed publish or read with an id is listed with its key id
// (for revocation); a denied one, or one without an id, is not; a kick forgets it.
func TestHandlerRemembersSessions(t *testing.T) {
	allow := authz.Allowing("alice", time.Time{})
	allow.KeyID, allow.KeyLabel = "key_a", "OBS"
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "keys", Backend: authz.BackendFunc(
		func(_ context.Context, r *authz.Request) (authz.Decision, error) {
			if r.Path == "live/alice" {
				return allow, nil
			}
			return authz.Denying(authz.Forbidden, "no", "no"), nil
		})}), nil)
	h := New(Config{MaxSessions: 2}, eng)
	for _, body := range []string{
		`{"action":"publish","path":"live/alice","protocol":"rtmp","id":"u1","ip":"192.0.2.1"}`,
		`{"action":"read","path":"live/bob","protocol":"rtsp","id":"u2"}`,
		`{"action":"read","path":"live/alice","protocol":"rtsp","id":null}`,
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/hooks/mediamtx", strings.NewReader(body)))
	}
	got := h.Sessions()
	want := live.Session{Source: Source, ID: "u1", Path: "live/alice", Protocol: "rtmp", Identity: "alice",
		Remote: "192.0.2.1", KeyID: "key_a", KeyLabel: "OBS", Publish: true}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v, want [%+v]", got, want)
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer api.Close()
	if err := NewKicker(conf.Endpoint{URL: api.URL}, api.Client(), errGone, h).Kick(context.Background(), got[0]); err != nil {
		t.Fatal(err)
	}
	if got := h.Sessions(); len(got) != 0 {
		t.Errorf("after the kick: got %+v, want none", got)
	}
}

// TestHandlerRechecksAndExpires: MediaMTX never asks again about a session, so the handler keeps
// the request that admitted it: a re-check after the grant is gone returns it (for a kick), and
// a grant with an expiry returns it from Expired when the (injected) clock passes it.
func TestHandlerRechecksAndExpires(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	removed := map[string]bool{}
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "users", Backend: authz.BackendFunc(
		func(_ context.Context, r *authz.Request) (authz.Decision, error) {
			mu.Lock()
			defer mu.Unlock()
			if r.User == "" || removed[r.User] {
				return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no"), nil
			}
			exp := time.Time{}
			if r.User == "carol" {
				exp = now.Add(time.Minute) // a short grant
			}
			return authz.Allowing(r.User, exp), nil
		})}), nil, authz.WithClock(clock))
	h := New(Config{Now: clock}, eng)
	for _, u := range []string{"alice", "bob", "carol"} {
		body := `{"action":"publish","path":"live/` + u + `","protocol":"rtmp","id":"` + u + `","user":"` + u + `","password":"pw-` + u + `"}`
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/hooks/mediamtx", strings.NewReader(body)))
		if rec.Code != 200 {
			t.Fatalf("%s: %d", u, rec.Code)
		}
	}
	if got := h.Expired(); len(got) != 0 {
		t.Fatalf("expired before its time: %+v", got)
	}
	mu.Lock()
	removed["bob"] = true // a reload removed bob
	mu.Unlock()
	if got := h.Recheck(context.Background()); len(got) != 1 || got[0].ID != "bob" {
		t.Fatalf("re-check: got %+v, want bob's session", got)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if got := h.Expired(); len(got) != 1 || got[0].ID != "carol" {
		t.Fatalf("expired: got %+v, want carol's session", got)
	}
	if got := h.Sessions(); len(got) != 1 || got[0].ID != "alice" {
		t.Errorf("remembered: got %+v, want only alice's", got)
	}
}
