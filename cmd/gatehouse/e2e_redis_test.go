package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/authz/state/redistest"
)

// redisE2EConfig is keysE2EConfig with the state in Redis; each replica has its own data_dir.
const redisE2EConfig = keysE2EConfig + `state:
  backend: redis
  redis:
    addrs: [%ADDR%]
    password_file: %PWFILE%
    key_prefix: "e2e:"
    sync_interval: 100ms
    timeout: 300ms
`

func writeRedisConfig(t *testing.T, addr, pwFile string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yml")
	src := strings.NewReplacer("%DATA%", filepath.Join(dir, "data"), "%ADDR%", addr, "%PWFILE%", pwFile).Replace(redisE2EConfig)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually retries cond until it holds or 15 s pass (a bound, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: did not happen within 15 s", what)
		}
	}
}

// TestEndToEndRedisReplicas runs two real gatehouse binaries sharing one real redis-server
// (password-protected, so the password file is used): a key created through A's API publishes
// through B; revoked with the CLI, B refuses it at once; an address banned for guessing on A is
// refused by B; with Redis stopped, B refuses new
// publishers fast with key_store_unavailable and /readyz says degraded; Redis back, B recovers
// without a restart. No secret reaches either log.
func TestEndToEndRedisReplicas(t *testing.T) {
	srv := redistest.Start(t, redistest.Persistent(), redistest.Password("e2e-redis-pass-123"))
	pw := filepath.Join(t.TempDir(), "redis-pass")
	if err := os.WriteFile(pw, []byte("e2e-redis-pass-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgA, cfgB := writeRedisConfig(t, srv.Addr, pw), writeRedisConfig(t, srv.Addr, pw)
	a, b := startBinary(t, cfgA), startBinary(t, cfgB)

	req, _ := http.NewRequest("POST", a.public+"/api/v1/keys", strings.NewReader(`{"path":"live/alice","label":"Alice OBS"}`))
	req.SetBasicAuth("admin", "adminpass")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID, Secret string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 201 || created.Secret == "" {
		t.Fatalf("create on A: %d %+v", resp.StatusCode, created)
	}
	publish := func(p *proc) (int, hookReply) {
		return postMediaMTX(t, p.hooks, jsonReq(map[string]any{"action": "publish", "path": "live/alice", "protocol": "rtmp", "query": "key=" + created.Secret}))
	}
	if code, r := publish(b); code != 200 {
		t.Fatalf("publish on B with A's key: %d %+v, want 200", code, r)
	}
	if r := nginxPublish(t, b.hooks, created.Secret); r.StatusCode != 302 || r.Header.Get("Location") != "alice" {
		t.Fatalf("nginx-rtmp on B: %d %q, want 302 alice", r.StatusCode, r.Header.Get("Location"))
	}
	// The CLI (with A's config) lists the key from Redis and revokes it; B refuses at once.
	out, errOut, code := runBin(t, "keys", "list", "-config", cfgA)
	if code != 0 || !strings.Contains(out, created.ID) {
		t.Fatalf("keys list: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := runBin(t, "keys", "revoke", "-config", cfgA, created.ID); code != 0 {
		t.Fatalf("keys revoke: exit %d: %s", code, errOut)
	}
	if code, r := publish(b); code != 401 {
		t.Fatalf("publish on B after revoke: %d %+v, want 401", code, r)
	}
	if code, _ := getStatus(t, b.public+"/readyz"); code != 200 {
		t.Fatalf("readyz with Redis up: %d", code)
	}

	// Brute force against A bans the address on B too, within one push interval.
	for i := range 12 { // distinct guesses: a repeated credential counts once
		postMediaMTX(t, a.hooks, mtx("203.0.113.7", "admin", fmt.Sprint("wrong-guess-", i), "publish", "live/x", "rtmp"))
	}
	bansOn := func(p *proc) string {
		req, _ := http.NewRequest("GET", p.public+"/api/v1/bans", nil)
		req.SetBasicAuth("admin", "adminpass")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if !strings.Contains(bansOn(a), "203.0.113.7/32") {
		t.Fatalf("A did not ban the guessing address: %s", bansOn(a))
	}
	eventually(t, "B refuses the address A banned", func() bool {
		code, _ := postMediaMTX(t, b.hooks, mtx("203.0.113.7", "admin", "adminpass", "api", "", ""))
		return code != 200 && strings.Contains(bansOn(b), "203.0.113.7/32")
	})

	// A second key, then Redis goes away.
	req, _ = http.NewRequest("POST", a.public+"/api/v1/keys", strings.NewReader(`{"path":"live/alice"}`))
	req.SetBasicAuth("admin", "adminpass")
	req.Header.Set("Content-Type", "application/json")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if code, r := publish(b); code != 200 {
		t.Fatalf("publish on B with the second key: %d %+v", code, r)
	}
	srv.Stop()
	if code, r := publish(b); code == 200 {
		t.Fatalf("publish on B with Redis down: %d %+v, want a refusal", code, r)
	}
	eventually(t, "readyz degraded", func() bool {
		code, body := getStatus(t, b.public+"/readyz")
		return code == 503 && strings.Contains(body, "degraded")
	})
	srv.Restart()
	eventually(t, "B publishes again after Redis returned", func() bool { code, _ := publish(b); return code == 200 })
	eventually(t, "readyz ready again", func() bool { code, _ := getStatus(t, b.public+"/readyz"); return code == 200 })

	for _, p := range []*proc{a, b} {
		if logs := p.logs(); strings.Contains(logs, created.Secret[4:]) || strings.Contains(logs, "e2e-redis-pass-123") {
			t.Error("a secret or the Redis password appears in a log")
		}
	}
}

// nginxCall sends one nginx-rtmp notification for clientid and returns the status and body.
func nginxCall(t *testing.T, hooks, call, name, clientID string) (int, string) {
	t.Helper()
	form := "app=live&flashver=FMLE%2F3.0&tcurl=rtmp%3A%2F%2F127.0.0.1%3A1935%2Flive&addr=127.0.0.1&clientid=" + clientID +
		"&call=" + call + "&name=" + url.QueryEscape(name) + "&type=live"
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Post(hooks+"/hooks/nginx-rtmp", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiCall calls gatehouse's API as the admin.
func apiCall(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.SetBasicAuth("admin", "adminpass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEndToEndRedisFleet runs two real gatehouse binaries as a fleet on one real redis-server:
// a publish on A makes B refuse the same path (path_busy) until A's publisher ends; both nodes
// are listed by /api/v1/nodes; B's /api/v1/streams lists A's stream with node gh-a until it
// ends; a kick on A of a session B holds ends it on B (through B's
// nginx-rtmp control, a fake on loopback); with Redis stopped a new publish is refused
// state_unavailable while B's running publisher is kept at its re-check; Redis back (empty), B
// re-asserts its lease and A is refused path_busy again, without a restart.
func TestEndToEndRedisFleet(t *testing.T) {
	srv := redistest.Start(t)
	drops := make(chan string, 8)
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drops <- r.URL.Path + "?" + r.URL.RawQuery
		_, _ = io.WriteString(w, "1")
	}))
	defer control.Close()
	write := func(extra string) string {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gatehouse.yml")
		src := strings.NewReplacer("%DATA%", filepath.Join(dir, "data"), "%ADDR%", srv.Addr).Replace(keysE2EConfig + extra + `state:
  backend: redis
  redis:
    addrs: [%ADDR%]
    key_prefix: "fleet:"
    sync_interval: 100ms
    timeout: 300ms
`)
		if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a := startBinary(t, appendState(t, write(""), "  node_id: gh-a\n  node_url: http://127.0.0.1:18089\n"))
	b := startBinary(t, appendState(t, write("hooks:\n  nginx_rtmp:\n    control_url: "+control.URL+"\n"), "  node_id: gh-b\n"))

	// A key for live/alice, created on A; its publisher on A (nginx-rtmp renames it to alice).
	code, body := apiCallBody(t, "POST", a.public+"/api/v1/keys", `{"path":"live/alice"}`)
	var created struct{ ID, Secret string }
	_ = json.Unmarshal([]byte(body), &created)
	if code != 201 || created.Secret == "" {
		t.Fatalf("create key: %d %s", code, body)
	}
	leaks.secret("fleet e2e stream key", created.Secret)
	if code, body := nginxCall(t, a.hooks, "publish", created.Secret, "7"); code != 302 {
		t.Fatalf("publish on A: %d %s", code, body)
	}
	if code, body := nginxCall(t, b.hooks, "publish", created.Secret, "8"); code != 403 || !strings.Contains(body, "path_busy") {
		t.Fatalf("publish of the same path on B while A publishes: %d %q, want 403 path_busy", code, body)
	}
	if code, r := postMediaMTX(t, b.hooks, jsonReq(map[string]any{"action": "publish", "path": "live/alice", "protocol": "rtmp", "query": "key=" + created.Secret})); code != 409 || r.Reason != "path_busy" {
		t.Fatalf("MediaMTX publish on B: %d %+v, want 409 path_busy", code, r)
	}
	eventually(t, "both nodes listed", func() bool {
		code, body := apiCall(t, "GET", b.public+"/api/v1/nodes")
		return code == 200 && strings.Contains(body, `"id":"gh-a"`) && strings.Contains(body, `"url":"http://127.0.0.1:18089"`) &&
			strings.Contains(body, `"id":"gh-b"`)
	})
	if code, _ := getStatus(t, b.public+"/api/v1/nodes"); code != 401 {
		t.Fatalf("nodes without credentials: %d, want 401", code)
	}
	// B lists A's live stream, with A's node id and without A's session id.
	eventually(t, "B lists A's stream", func() bool {
		code, body := apiCall(t, "GET", b.public+"/api/v1/streams")
		return code == 200 && strings.Contains(body, `"path":"live/alice"`) && strings.Contains(body, `"node":"gh-a"`) &&
			!strings.Contains(body, `"session"`)
	})
	if code, body := apiCall(t, "GET", a.public+"/api/v1/streams"); code != 200 || !strings.Contains(body, `"path":"live/alice"`) || strings.Contains(body, `"node"`) {
		t.Fatalf("A's own streams: %d %s", code, body)
	}

	// A's publisher ends: B may publish.
	if code, _ := nginxCall(t, a.hooks, "publish_done", "alice", "7"); code != 200 {
		t.Fatalf("publish_done on A: %d", code)
	}
	eventually(t, "A's stream leaves B's list", func() bool {
		code, body := apiCall(t, "GET", b.public+"/api/v1/streams")
		return code == 200 && !strings.Contains(body, `"live/alice"`)
	})
	eventually(t, "B publishes after A's publisher ended", func() bool {
		code, _ := nginxCall(t, b.hooks, "publish", created.Secret, "8")
		return code == 302
	})

	// A kick on A of B's session: announced, and B ends it through its nginx-rtmp control.
	var sessions struct {
		Sessions []struct{ ID, Source, Path string }
	}
	_, body = apiCall(t, "GET", b.public+"/api/v1/sessions")
	_ = json.Unmarshal([]byte(body), &sessions)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].Path != "live/alice" {
		t.Fatalf("B's sessions: %s", body)
	}
	if code, body := apiCall(t, "DELETE", a.public+"/api/v1/sessions/"+url.PathEscape(sessions.Sessions[0].ID)); code != 202 || !strings.Contains(body, "announced") {
		t.Fatalf("kick on A of B's session: %d %s, want 202 announced", code, body)
	}
	select {
	case d := <-drops:
		if !strings.HasPrefix(d, "/drop/publisher?") || !strings.Contains(d, "clientid=8") {
			t.Fatalf("B's control got %s", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("B never ended the session kicked on A")
	}

	// B also publishes live/yaml with a key from its config file (it survives Redis losing its data).
	if code, body := nginxCall(t, b.hooks, "publish", "yaml-stream-key-0123456789", "11"); code != 302 {
		t.Fatalf("publish of live/yaml on B: %d %q", code, body)
	}

	// Redis stops: a new publish is refused at once (fail closed); B's running publisher is kept.
	srv.Stop()
	if code, body := nginxCall(t, a.hooks, "publish", "yaml-stream-key-0123456789", "9"); code != 403 || !strings.Contains(body, "state_unavailable") {
		t.Fatalf("publish with Redis down: %d %q, want 403 state_unavailable", code, body)
	}
	if code, body := nginxCall(t, b.hooks, "update_publish", "yaml-stream-key-0123456789", "11"); code != 200 {
		t.Fatalf("B's running publisher re-checked with Redis down: %d %q, want kept", code, body)
	}
	// Redis back, empty (not persistent): every lease and node record is gone. B's first
	// heartbeat after it answers rewrites its node record and, in the same pipeline, re-asserts
	// the lease of its running publisher; then A is refused the path again, without a restart.
	srv.Restart()
	eventually(t, "B's heartbeat after Redis returned", func() bool {
		code, body := apiCall(t, "GET", b.public+"/api/v1/nodes")
		return code == 200 && strings.Contains(body, `"id":"gh-b"`)
	})
	if code, body := nginxCall(t, a.hooks, "publish", "yaml-stream-key-0123456789", "10"); code != 403 || !strings.Contains(body, "path_busy") {
		t.Fatalf("publish on A after Redis returned: %d %q, want 403 path_busy (B re-asserted its lease)", code, body)
	}
}

// appendState adds lines under the state section of the config file at path and returns path.
func appendState(t *testing.T, path, lines string) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(string(src), "state:\n", "state:\n"+lines, 1)
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiCallBody calls gatehouse's API as the admin with a JSON body.
func apiCallBody(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.SetBasicAuth("admin", "adminpass")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
