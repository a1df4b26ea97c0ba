package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/backends/keys/sqlitestore"
)

const keysE2EConfig = `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
data_dir: %DATA%
watch_config: false
auth:
  methods: [keys, internal]
  keys:
    - key: yaml-stream-key-0123456789
      path: live/yaml
  internal:
    users:
      - user: admin
        pass: adminpass
        permissions: [{action: api}]
      - user: any
        permissions: [{action: read}]
`

func writeKeysConfig(t *testing.T) (cfg, data string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	cfg = filepath.Join(dir, "gatehouse.yml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(keysE2EConfig, "%DATA%", data)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, data
}

// nginxPublish asks /hooks/nginx-rtmp as nginx-rtmp does when OBS publishes with stream key name.
func nginxPublish(t *testing.T, hooks, name string) *http.Response {
	t.Helper()
	form := "app=live&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%3A1935%2Flive&pageurl=&addr=127.0.0.1&clientid=7" +
		"&call=publish&name=" + url.QueryEscape(name) + "&type=live"
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Post(hooks+"/hooks/nginx-rtmp", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func runBin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// TestEndToEndManagedKeys runs the README's stream-key steps against the real binary: a key
// created through the API publishes on /hooks/mediamtx (?key= on its exact path) and on
// /hooks/nginx-rtmp (as the stream name: 302 to the public name); revoked with the CLI while the
// server runs, it is refused at once; a CLI-created TTL key works; the YAML key keeps working;
// and no secret ever appears in the server's log or in a CLI or API answer after creation.
func TestEndToEndManagedKeys(t *testing.T) {
	cfg, data := writeKeysConfig(t)
	p := startBinary(t, cfg)
	var secrets []string
	var answers strings.Builder

	// Create through the API.
	req, _ := http.NewRequest("POST", p.public+"/api/v1/keys", strings.NewReader(`{"path":"live/alice","label":"Alice OBS","owner":"alice"}`))
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
		t.Fatalf("create: %d %+v", resp.StatusCode, created)
	}
	secrets = append(secrets, leaks.secret("stream key (e2e keys)", created.Secret))

	mediamtx := func(path, query string) int {
		code, _ := postMediaMTX(t, p.hooks, jsonReq(map[string]any{"action": "publish", "path": path, "protocol": "rtmp", "query": query}))
		return code
	}
	if code := mediamtx("live/alice", "key="+created.Secret); code != 200 {
		t.Fatalf("mediamtx ?key= on its path: %d, want 200", code)
	}
	if code := mediamtx("live/bob", "key="+created.Secret); code != 403 {
		t.Fatalf("mediamtx ?key= on another path: %d, want 403", code)
	}
	if r := nginxPublish(t, p.hooks, created.Secret); r.StatusCode != 302 || r.Header.Get("Location") != "alice" {
		t.Fatalf("nginx-rtmp stream name: %d Location %q, want 302 alice", r.StatusCode, r.Header.Get("Location"))
	}
	if r := nginxPublish(t, p.hooks, created.Secret[:len(created.Secret)-1]+"a"); r.StatusCode < 400 {
		t.Fatalf("nginx-rtmp with a mistyped key: %d, want a refusal", r.StatusCode)
	}

	// The CLI lists it next to the YAML key, without secrets, while the server runs.
	out, _, code := runBin(t, "keys", "list", "-config", cfg)
	if code != 0 || !strings.Contains(out, created.ID) || !strings.Contains(out, "config:1") || !strings.Contains(out, "read-only") {
		t.Fatalf("keys list: exit %d\n%s", code, out)
	}
	answers.WriteString(out)

	// Revoke with the CLI: the running server refuses at once.
	out, errOut, code := runBin(t, "keys", "revoke", "-config", cfg, created.ID)
	if code != 0 {
		t.Fatalf("keys revoke: exit %d: %s", code, errOut)
	}
	answers.WriteString(out + errOut)
	if code := mediamtx("live/alice", "key="+created.Secret); code != 401 {
		t.Fatalf("mediamtx after revoke: %d, want 401", code)
	}
	if r := nginxPublish(t, p.hooks, created.Secret); r.StatusCode != 401 && r.StatusCode != 403 {
		t.Fatalf("nginx-rtmp after revoke: %d, want a refusal", r.StatusCode)
	}

	// A short per-session credential from the CLI works as the RTMP stream name.
	out, errOut, code = runBin(t, "keys", "create", "-config", cfg, "--path", "live/bob", "--label", "tonight", "--ttl", "12h")
	sessionKey := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(sessionKey, "ghk_") {
		t.Fatalf("keys create: exit %d: %q %s", code, out, errOut)
	}
	secrets = append(secrets, leaks.secret("stream key (e2e keys)", sessionKey))
	answers.WriteString(errOut)
	if r := nginxPublish(t, p.hooks, sessionKey); r.StatusCode != 302 || r.Header.Get("Location") != "bob" {
		t.Fatalf("nginx-rtmp with the TTL key: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := nginxPublish(t, p.hooks, "yaml-stream-key-0123456789"); r.StatusCode != 302 || r.Header.Get("Location") != "yaml" {
		t.Fatalf("nginx-rtmp with the YAML key: %d %q", r.StatusCode, r.Header.Get("Location"))
	}

	// Rotate with the CLI; back up while running.
	id := regexpID(t, errOut)
	out, errOut, code = runBin(t, "keys", "rotate", "-config", cfg, "--grace", "1m", id)
	if code != 0 {
		t.Fatalf("keys rotate: exit %d: %s", code, errOut)
	}
	secrets = append(secrets, leaks.secret("stream key (e2e keys)", strings.TrimSpace(out)))
	answers.WriteString(errOut)
	backup := filepath.Join(t.TempDir(), "keys-backup.db")
	if _, errOut, code = runBin(t, "keys", "backup", "-config", cfg, backup); code != 0 {
		t.Fatalf("keys backup: exit %d: %s", code, errOut)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v", err)
	}
	req, _ = http.NewRequest("GET", p.public+"/api/v1/keys", nil)
	req.SetBasicAuth("admin", "adminpass")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	answers.Write(body)

	logs := p.logs()
	for _, s := range secrets {
		for what, text := range map[string]string{"the server log": logs, "a later answer": answers.String()} {
			if strings.Contains(text, s) || strings.Contains(text, s[4:]) {
				t.Errorf("a created secret appears in %s", what)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(data, sqlitestore.FileName)); err != nil {
		t.Fatal(err)
	}
}

func regexpID(t *testing.T, s string) string {
	t.Helper()
	for _, f := range strings.Fields(s) {
		if sqlitestore.ValidID(f) {
			return f
		}
	}
	t.Fatalf("no key id in %q", s)
	return ""
}

// TestEndToEndCorruptKeyStore: a store file that is not a database is reported in the log,
// left untouched, and gatehouse still starts and serves the YAML keys.
func TestEndToEndCorruptKeyStore(t *testing.T) {
	cfg, data := writeKeysConfig(t)
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("garbage "), 1000)
	store := filepath.Join(data, sqlitestore.FileName)
	if err := os.WriteFile(store, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, cfg)
	if !strings.Contains(p.logs(), "stream key store unavailable") || !strings.Contains(p.logs(), "not a database") {
		t.Fatalf("the log does not report the corrupt store:\n%s", p.logs())
	}
	if r := nginxPublish(t, p.hooks, "yaml-stream-key-0123456789"); r.StatusCode != 302 || r.Header.Get("Location") != "yaml" {
		t.Fatalf("YAML key with a corrupt store: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	req, _ := http.NewRequest("POST", p.public+"/api/v1/keys", strings.NewReader(`{"path":"live/a"}`))
	req.SetBasicAuth("admin", "adminpass")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("create with a corrupt store: %d, want 503", resp.StatusCode)
	}
	if got, _ := os.ReadFile(store); !bytes.Equal(got, junk) {
		t.Fatal("the corrupt store file was modified")
	}
}
