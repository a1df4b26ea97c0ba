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

// recheckConfig has two YAML stream keys; %MTX% and %SRS% are fake MediaMTX and SRS APIs.
const recheckConfig = `listen: 127.0.0.1:0
hooks_listen: 127.0.0.1:0
watch_config: false
data_dir: %DATA%
hooks:
  mediamtx:
    api: {url: "%MTX%", user: gatehouse, password: mtx-api-pass}
  srs:
    api: {url: "%SRS%"}
auth:
  methods: [keys]
  keys:
    - {key: alice-key-0123456789abcdef, path: live/alice%REVOKED%}
%BOB%`

const bobKey = "    - {key: bob-key-0123456789abcdefgh, path: live/bob}\n"

// TestReloadEndsRemovedGrantsOnMediaMTXAndSRS: MediaMTX and SRS never ask again about a running
// session, so a reload that revokes a YAML key (revoked: true) or removes one must end the
// sessions it admitted through their APIs; the sessions of a key that stays are left alone.
func TestReloadEndsRemovedGrantsOnMediaMTXAndSRS(t *testing.T) {
	var mu sync.Mutex
	var kicks []string
	record := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		kicks = append(kicks, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"code":0}`))
	}
	mtx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "gatehouse" || p != "mtx-api-pass" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		record(w, r)
	}))
	defer mtx.Close()
	srsAPI := httptest.NewServer(http.HandlerFunc(record))
	defer srsAPI.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yml")
	write := func(revoked, bob string) {
		src := strings.NewReplacer("%DATA%", filepath.Join(dir, "data"), "%MTX%", mtx.URL, "%SRS%", srsAPI.URL,
			"%REVOKED%", revoked, "%BOB%", bob).Replace(recheckConfig)
		if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("", bobKey)

	_, hooksHost, logs := serveFile(t, cfg)
	hooks := "http://" + hooksHost

	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post(hooks+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct{ path, body string }{
		{"/hooks/mediamtx", `{"action":"publish","path":"live/alice","protocol":"rtmp","id":"m-alice","query":"key=alice-key-0123456789abcdef","ip":"127.0.0.1"}`},
		{"/hooks/mediamtx", `{"action":"publish","path":"live/bob","protocol":"srt","id":"m-bob","query":"key=bob-key-0123456789abcdefgh","ip":"127.0.0.1"}`},
		{"/hooks/srs", `{"action":"on_publish","client_id":"s-alice","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"alice","param":"?key=alice-key-0123456789abcdef","tcUrl":"rtmp://127.0.0.1/live"}`},
		{"/hooks/srs", `{"action":"on_publish","client_id":"s-bob","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"bob","param":"?key=bob-key-0123456789abcdefgh","tcUrl":"rtmp://127.0.0.1/live"}`},
	} {
		if code := post(c.path, c.body); code != 200 {
			t.Fatalf("%s: %d, want 200\n%s", c.body, code, logs.String())
		}
	}

	// The reload revokes alice's key in the file and keeps bob's: alice's sessions end.
	write(", revoked: true", bobKey)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /v3/rtmpconns/kick/m-alice", "DELETE /api/v1/clients/s-alice"}
	waitKicks := func(want []string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			got := strings.Join(kicks, "\n")
			mu.Unlock()
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(got, w)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("kicks: got\n%s\nwant %v\n%s", got, want, logs.String())
			}
		}
	}
	waitKicks(want)
	mu.Lock()
	for _, k := range kicks {
		if strings.Contains(k, "bob") {
			t.Errorf("bob's session was kicked (%s), but his key stays", k)
		}
	}
	mu.Unlock()

	// The next reload removes bob's key: his sessions end too.
	write(", revoked: true", "")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitKicks([]string{"POST /v3/srtconns/kick/m-bob", "DELETE /api/v1/clients/s-bob"})
	if strings.Contains(logs.String(), "key-0123456789") {
		t.Error("the log contains a stream key")
	}
}
