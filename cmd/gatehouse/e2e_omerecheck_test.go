package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// omeRecheckConfig has two YAML stream keys; %OME% is a fake OME REST API.
const omeRecheckConfig = `listen: 127.0.0.1:0
hooks_listen: 127.0.0.1:0
watch_config: false
data_dir: %DATA%
hooks:
  ome:
    api: {url: "%OME%", user: ome, password: ome-api-pass}
auth:
  methods: [keys]
  keys:
    - {key: alice-key-0123456789abcdef, path: live/alice%REVOKED%}
    - {key: bob-key-0123456789abcdefgh, path: live/bob}
`

// TestReloadEndsRemovedGrantsOnOME: OME never asks again about a running session, so a reload
// that revokes a YAML key ends the OME publisher it admitted through OME's REST API (the OME
// adapter is one of the revoker's re-checkers); the publisher of a key that stays is left alone.
func TestReloadEndsRemovedGrantsOnOME(t *testing.T) {
	var mu sync.Mutex
	var kicks []string
	omeAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		kicks = append(kicks, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"statusCode":200,"message":"OK"}`))
	}))
	defer omeAPI.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yml")
	write := func(revoked string) {
		src := strings.NewReplacer("%DATA%", filepath.Join(dir, "data"), "%OME%", omeAPI.URL, "%REVOKED%", revoked).Replace(omeRecheckConfig)
		if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	_, hooksHost, logs := serveFile(t, cfg)
	for _, body := range []string{
		`{"client":{"address":"127.0.0.1","port":40001},"request":{"direction":"incoming","protocol":"RTMP","status":"opening","url":"rtmp://127.0.0.1:1935/live/alice?key=alice-key-0123456789abcdef","time":"2026-05-12T13:45:00.123+09:00"}}`,
		`{"client":{"address":"127.0.0.1","port":40002},"request":{"direction":"incoming","protocol":"RTMP","status":"opening","url":"rtmp://127.0.0.1:1935/live/bob?key=bob-key-0123456789abcdefgh","time":"2026-05-12T13:45:00.123+09:00"}}`,
	} {
		resp, err := http.Post("http://"+hooksHost+"/hooks/ome", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var buf [512]byte
		n, _ := resp.Body.Read(buf[:])
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(buf[:n]), `"allowed":true`) {
			t.Fatalf("opening: %d %s, want allowed\n%s", resp.StatusCode, buf[:n], logs.String())
		}
	}

	write(", revoked: true")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want := "DELETE /v1/vhosts/default/apps/live/streams/alice"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := strings.Join(kicks, "\n")
		mu.Unlock()
		if got == want {
			break
		}
		if strings.Contains(got, "bob") || time.Now().After(deadline) {
			t.Fatalf("OME API got %q, want only %q\n%s", got, want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "key-0123456789") {
		t.Error("the log contains a stream key")
	}
}
