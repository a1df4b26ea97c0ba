package main

import (
	"encoding/json"
	"io"
	"net/http"
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
	for range 12 {
		postMediaMTX(t, a.hooks, mtx("203.0.113.7", "admin", "wrong-guess", "publish", "live/x", "rtmp"))
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
