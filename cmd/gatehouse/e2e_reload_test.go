package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// reloadBase is a config where anonymous clients may read nothing: the built-in defaults, by
// contrast, let anyone read every stream, so falling back to them on reload opens everything.
func reloadBase(data string, watch bool) string {
	w := "false"
	if watch {
		w = "true"
	}
	return `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
watch_config: ` + w + `
data_dir: ` + data + `
auth:
  internal:
    users:
      - user: viewer
        pass: viewerpass
        permissions: [{action: read}]
`
}

// TestFaultBrokenConfigReload: a config file replaced on the running binary by a broken one — an
// empty, blank, truncated (cut before auth) or auth-less file, a misspelt key, a YAML syntax
// error, a wrong type — is refused on reload, by signal and by the file watcher, with the file
// and line of the mistake in the log where there is one; the running config keeps serving, so an
// anonymous read stays 401 instead of the defaults' 200. A good file afterwards is loaded.
// (Formerly TestReloadNeverFallsBackToDefaults.)
func TestFaultBrokenConfigReload(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	good := reloadBase(data, true)
	lineOf := func(src, substr string) int { return strings.Count(src[:strings.Index(src, substr)], "\n") + 1 }
	misspelt := strings.Replace(good, "permissions:", "permisions:", 1)
	syntax := strings.Replace(good, "        pass: viewerpass", "       pass: viewerpass", 1)
	wrongType := strings.Replace(good, "watch_config: true", "watch_config: [yes]", 1)
	bad := []struct {
		name, src string
		line      int // >0: the log names the file and this line
	}{
		{"empty", "", 0},
		{"blank", "\n  \n", 0},
		{"truncated before auth", good[:strings.Index(good, "auth:")], 0},
		{"auth without methods", strings.SplitAfter(good, "auth:")[0] + " {}\n", 0},
		{"only a comment", "# nothing here\n", 0},
		{"misspelt key", misspelt, lineOf(misspelt, "permisions:")},
		{"YAML syntax error", syntax, lineOf(syntax, "    users:")}, // the block yaml.v3 could not parse
		{"wrong type", wrongType, lineOf(wrongType, "watch_config:")},
	}
	for _, trigger := range []string{"signal", "file change"} {
		t.Run(trigger, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "gatehouse.yml")
			if err := os.WriteFile(cfg, []byte(good), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startBinary(t, cfg)
			anon := mtx("127.0.0.1", "", "", "read", "live/cam", "hls")
			if status, r := postMediaMTX(t, p.hooks, anon); status != 401 {
				t.Fatalf("before: anonymous read got %d %q, want 401", status, r.Reason)
			}
			for i, b := range bad {
				if err := os.WriteFile(cfg, []byte(b.src), 0o600); err != nil {
					t.Fatal(err)
				}
				if trigger == "signal" {
					if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
				}
				waitLog(t, p, "reload failed", i)
				if b.line > 0 {
					if want := fmt.Sprintf("%s:%d:", cfg, b.line); !strings.Contains(p.logs(), want) {
						t.Errorf("%s: the log does not name %q", b.name, want)
					}
				}
				if status, r := postMediaMTX(t, p.hooks, anon); status != 401 {
					t.Errorf("%s: anonymous read after reload got %d %q, want 401 (running config kept)", b.name, status, r.Reason)
				}
				if status, r := postMediaMTX(t, p.hooks, mtx("127.0.0.1", "viewer", "viewerpass", "read", "live/cam", "hls")); status != 200 {
					t.Errorf("%s: viewer got %d %q, want 200", b.name, status, r.Reason)
				}
			}
			if strings.Contains(p.logs(), "config reloaded") {
				t.Errorf("a broken file was reloaded:\n%s", p.logs())
			}
			// The watcher and the signal still work: a good file with a new user is loaded.
			fixed := strings.Replace(good, "      - user: viewer", "      - user: second\n        pass: secondpass\n        permissions: [{action: read}]\n      - user: viewer", 1)
			if err := os.WriteFile(cfg, []byte(fixed), 0o600); err != nil {
				t.Fatal(err)
			}
			if trigger == "signal" {
				_ = p.cmd.Process.Signal(syscall.SIGHUP)
			}
			waitLog(t, p, "config reloaded", 0)
			if status, r := postMediaMTX(t, p.hooks, mtx("127.0.0.1", "second", "secondpass", "read", "live/cam", "hls")); status != 200 {
				t.Errorf("user added by the good file: got %d %q, want 200", status, r.Reason)
			}
		})
	}
}

// TestStartRefusesEmptyConfig: a named file that is empty or has no auth section is an error at
// start and in validate, never the built-in defaults.
func TestStartRefusesEmptyConfig(t *testing.T) {
	for _, src := range []string{"", "listen: 127.0.0.1:0\n", "auth:\n"} {
		cfg := filepath.Join(t.TempDir(), "gatehouse.yml")
		if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, errs := runCLI(t, "", "validate", "-config", cfg); code != exitConfig || !strings.Contains(errs, "refusing to fall back") {
			t.Errorf("validate %q: exit %d %q, want %d and a refusal", src, code, errs, exitConfig)
		}
		if code, _, errs := runCLI(t, "", "run", "-config", cfg); code != exitConfig {
			t.Errorf("run %q: exit %d %q, want %d", src, code, errs, exitConfig)
		}
	}
}

// TestReloadKeepsRestartOnlySections: data_dir and tokens.issuer apply only after a restart, as
// the reload log says; before, a reload loaded a new signing key at once and every token minted
// so far was refused.
func TestReloadKeepsRestartOnlySections(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	src := reloadBase(data, false) + "  methods: [internal, jwt]\n"
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "", "token", "-config", cfgPath, "--sub", "alice", "--allow", "read:live/*", "--ttl", "1h")
	if code != exitOK {
		t.Fatalf("token: exit %d: %s", code, errs)
	}
	tok := strings.TrimSpace(out)
	p := startBinary(t, cfgPath)
	read := jsonReq(map[string]any{"action": "read", "path": "live/cam", "protocol": "rtsp", "token": tok})
	if status, r := postMediaMTX(t, p.hooks, read); status != 200 {
		t.Fatalf("before reload: got %d %q, want 200", status, r.Reason)
	}
	other := filepath.Join(dir, "other-data")
	changed := strings.Replace(src, "data_dir: "+data, "data_dir: "+other, 1) + "tokens:\n  issuer: somewhere-else\n"
	if err := os.WriteFile(cfgPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "apply only after a restart", 0)
	if status, r := postMediaMTX(t, p.hooks, read); status != 200 {
		t.Errorf("after reload: got %d %q, want 200 (data_dir and tokens apply after a restart)", status, r.Reason)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("reload created the new data_dir %s (stat: %v); it applies only after a restart", other, err)
	}
}

// TestKeepRestartOnlyCoversEverySection: every top-level config field is either reloadable
// (log, auth) or in the restart-only table, so a new section cannot be forgotten; and
// keepRestartOnly restores every one of them.
func TestKeepRestartOnlyCoversEverySection(t *testing.T) {
	reloadable := map[string]bool{"Log": true, "Auth": true}
	var c Config
	listed := map[uintptr]bool{}
	for _, s := range restartOnlySections(&c) {
		listed[reflect.ValueOf(s.ptr).Pointer()] = true
	}
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() || reloadable[f.Name] {
			continue
		}
		if !listed[v.Field(i).Addr().Pointer()] {
			t.Errorf("Config.%s is neither reloadable nor in restartOnlySections", f.Name)
		}
	}

	a, err := parseConfig("a", []byte("listen: 127.0.0.1:1\nhooks_listen: 127.0.0.1:2\nwatch_config: false\ndata_dir: /a\ntrusted_proxies: [10.0.0.1]\nallowed_hosts: [a.example]\nlimits: {public_max_conns: 10}\ntokens: {issuer: a}\nlive: {max_viewers: 5}\nsfu: {udp_port: 1}\nweb: {title: a}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseConfig("b", []byte("listen: 127.0.0.1:3\nhooks_listen: 127.0.0.1:4\ndata_dir: /b\ntrusted_proxies: [10.0.0.2]\nallowed_hosts: [b.example]\nlimits: {public_max_conns: 20}\ntokens: {issuer: b}\nlive: {max_viewers: 6}\nhooks: {forward_auth: {realm: x}}\nstate: {backend: redis, redis: {addrs: ['127.0.0.1:6379']}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d, want := a.restartOnly(b), len(restartOnlySections(a))-1; len(d) != want { // notify is equal
		t.Fatalf("restartOnly found %v, want %d changed sections", d, want)
	}
	b.keepRestartOnly(a)
	if d := a.restartOnly(b); len(d) != 0 {
		t.Errorf("after keepRestartOnly these still differ: %v", d)
	}
}

// TestReloadEndsCookiesOnlyWhenAuthChanges: through the real binary, a forward-auth segment
// cookie survives a reload that changed nothing that decides (a log level), and is refused after
// a reload that removed its user (it used to stay valid for max_age, 6 h).
func TestReloadEndsCookiesOnlyWhenAuthChanges(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	base := reloadBase(filepath.Join(dir, "data"), false)
	if err := os.WriteFile(cfgPath, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, cfgPath)
	fa := func(uri string, cookie *http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", p.hooks+"/hooks/forward-auth", nil)
		req.Header.Set("X-Original-URI", uri)
		req.Header.Set("X-Forwarded-Proto", "https")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := fa("/live/cam/index.m3u8?user=viewer&pass=viewerpass", nil)
	if res.StatusCode != http.StatusNoContent || len(res.Cookies()) != 1 {
		t.Fatalf("playlist with credentials: got %d and %d cookies, want 204 and a cookie", res.StatusCode, len(res.Cookies()))
	}
	cookie := res.Cookies()[0]
	reload := func(src string, n int) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLog(t, p, "config reloaded", n)
	}
	reload(base+"log:\n  level: debug\n", 0)
	if got := fa("/live/cam/seg1.ts", cookie).StatusCode; got != http.StatusNoContent {
		t.Errorf("cookie after a log-level reload: got %d, want 204", got)
	}
	reload(strings.Replace(base, "viewerpass", "newpass", 1), 1)
	if got := fa("/live/cam/seg2.ts", cookie).StatusCode; got != http.StatusUnauthorized {
		t.Errorf("cookie after the user's password changed: got %d, want 401", got)
	}
}
