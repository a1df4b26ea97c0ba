package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestEndToEndUpstream runs the binary with the http method against a real auth service on
// loopback: its answers are honoured, its shared-secret header arrives, and when it goes away
// gatehouse denies with upstream_unavailable instead of allowing.
func TestEndToEndUpstream(t *testing.T) {
	var calls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var body struct{ User, Password, Action, Path string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("X-Gatehouse-Secret") != "s3cret" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch {
		case body.User == "":
			w.WriteHeader(http.StatusUnauthorized)
		case body.User == "alice" && body.Password == "pw" && body.Path == "live/alice":
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	cfg := `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
watch_config: false
data_dir: ` + filepath.Join(dir, "data") + `
auth:
  methods: [http]
  http:
    address: ` + upstream.URL + `/auth
    headers: {X-Gatehouse-Secret: "${UPSTREAM_SECRET}"}
    cache: {size: 0}
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, cfgPath, "UPSTREAM_SECRET=s3cret")

	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantReason string
	}{
		{"upstream allows", mtx("127.0.0.1", "alice", "pw", "publish", "live/alice", "rtmp"), 200, "allowed"},
		{"upstream forbids", mtx("127.0.0.1", "alice", "pw", "publish", "live/bob", "rtmp"), 403, ""},
		{"upstream asks for credentials", mtx("127.0.0.1", "", "", "read", "live/alice", "rtsp"), 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, r := postMediaMTX(t, p.hooks, tt.body)
			if status != tt.wantStatus || (tt.wantReason != "" && r.Reason != tt.wantReason) {
				t.Errorf("got %d %q, want %d %q", status, r.Reason, tt.wantStatus, tt.wantReason)
			}
		})
	}
	if calls.Load() != 3 {
		t.Errorf("upstream saw %d calls, want 3", calls.Load())
	}

	upstream.Close()
	status, r := postMediaMTX(t, p.hooks, mtx("127.0.0.1", "alice", "pw", "publish", "live/alice", "rtmp"))
	if status != 403 || r.Reason != "upstream_unavailable" {
		t.Errorf("upstream down: got %d %q, want 403 upstream_unavailable (fail closed)", status, r.Reason)
	}
}
