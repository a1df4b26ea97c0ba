package live

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"gatehouse/authz"
)

// fakeAuth allows user "admin" with password "pw", forbids any other known user, and records
// the last request.
type fakeAuth struct {
	mu   sync.Mutex
	last authz.Request
}

func (f *fakeAuth) Authorize(_ context.Context, req *authz.Request) authz.Decision {
	f.mu.Lock()
	f.last = *req
	f.mu.Unlock()
	switch {
	case req.User == "admin" && req.Pass == "pw":
		return authz.Allowing("admin", t0)
	case req.Token == "viewer-token":
		d := authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted")
		d.Identity = "viewer"
		return d
	case req.HasCredentials():
		return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "bad credentials")
	}
	return authz.Denying(authz.Unauthenticated, authz.ReasonNoCredentials, "credentials required")
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAPIHandler(t *testing.T) {
	reg := NewRegistry()
	reg.Record(Event{Type: Published, Path: "live/alice", Source: "ome", Session: "session-A",
		Identity: "alice", Protocol: "rtmp", Remote: "203.0.113.7", Time: t0, KeyID: "key_abc", KeyLabel: "Alice's OBS"})
	reg.Record(Event{Type: Published, Path: "live/bob", Source: "sfu", Session: "session-B",
		Identity: "bob", Protocol: "webrtc", Time: t0})
	reg.Record(Event{Type: Joined, Path: "live/alice", Source: "ome", Session: "session-V",
		Identity: "carol", Protocol: "llhls", Remote: "198.51.100.20", Time: t0})
	auth := &fakeAuth{}
	srv := httptest.NewServer(APIHandler(reg, auth))
	defer srv.Close()

	const (
		aliceJSON = `{"path":"live/alice","source":"ome","identity":"alice","protocol":"rtmp","remote":"203.0.113.7",` +
			`"session":"session-A","key_id":"key_abc","key_label":"Alice's OBS","started":"2026-05-12T13:45:00Z","last_seen":"2026-05-12T13:45:00Z","viewers":1`
		bobJSON = `{"path":"live/bob","source":"sfu","identity":"bob","protocol":"webrtc","session":"session-B",` +
			`"started":"2026-05-12T13:45:00Z","last_seen":"2026-05-12T13:45:00Z","viewers":0}`
	)
	tests := []struct {
		name, method, path, authorization string
		wantStatus                        int
		wantBody                          string
		wantChallenge                     bool
	}{
		{name: "no credentials", method: "GET", path: "/api/v1/streams", wantStatus: 401,
			wantBody: `{"error":"credentials required"}`, wantChallenge: true},
		{name: "bad credentials", method: "GET", path: "/api/v1/streams", authorization: basic("admin", "nope"),
			wantStatus: 401, wantBody: `{"error":"bad credentials"}`, wantChallenge: true},
		{name: "forbidden", method: "GET", path: "/api/v1/streams", authorization: "Bearer viewer-token",
			wantStatus: 403, wantBody: `{"error":"not permitted"}`},
		{name: "list", method: "GET", path: "/api/v1/streams", authorization: basic("admin", "pw"),
			wantStatus: 200, wantBody: `{"streams":[` + aliceJSON + `},` + bobJSON + `]}`},
		{name: "list with trailing slash", method: "GET", path: "/api/v1/streams/", authorization: basic("admin", "pw"),
			wantStatus: 200, wantBody: `{"streams":[` + aliceJSON + `},` + bobJSON + `]}`},
		{name: "obs style bearer user:pass", method: "GET", path: "/api/v1/streams/live/bob", authorization: "Bearer admin:pw",
			wantStatus: 200, wantBody: bobJSON},
		{name: "one stream with readers", method: "GET", path: "/api/v1/streams/live/alice", authorization: basic("admin", "pw"),
			wantStatus: 200, wantBody: aliceJSON + `,"readers":[{"source":"ome","identity":"carol","protocol":"llhls",` +
				`"remote":"198.51.100.20","session":"session-V","joined":"2026-05-12T13:45:00Z","last_seen":"2026-05-12T13:45:00Z"}]}`},
		{name: "unknown stream", method: "GET", path: "/api/v1/streams/live/nobody", authorization: basic("admin", "pw"),
			wantStatus: 404, wantBody: `{"error":"stream not live"}`},
		{name: "unknown stream needs credentials first", method: "GET", path: "/api/v1/streams/live/nobody",
			wantStatus: 401, wantBody: `{"error":"credentials required"}`, wantChallenge: true},
		{name: "post not allowed", method: "POST", path: "/api/v1/streams", authorization: basic("admin", "pw"),
			wantStatus: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != "" {
				if got := strings.TrimSpace(string(body)); got != tt.wantBody {
					t.Errorf("body:\ngot  %s\nwant %s", got, tt.wantBody)
				}
				if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
					t.Errorf("Content-Type: got %q, want %q", got, want)
				}
			}
			got := resp.Header.Get("WWW-Authenticate")
			if want := `Basic realm="gatehouse"`; tt.wantChallenge && got != want {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, want)
			} else if !tt.wantChallenge && got != "" {
				t.Errorf("WWW-Authenticate: got %q, want none", got)
			}
		})
	}

	t.Run("request sent to the engine", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/streams", nil)
		req.Header.Set("Authorization", basic("admin", "pw"))
		req.Header.Set("User-Agent", "curl/8")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		auth.mu.Lock()
		got := auth.last
		auth.mu.Unlock()
		want := authz.Request{Action: authz.ActionAPI, IP: netip.MustParseAddr("127.0.0.1"), User: "admin", Pass: "pw",
			UserAgent: "curl/8", Source: "api"}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}
