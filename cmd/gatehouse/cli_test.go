package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigExampleLoads(t *testing.T) {
	code, out, errs := runCLI(t, "", "validate", "-config", "../../config.example.yml")
	if code != exitOK {
		t.Fatalf("config.example.yml: exit %d\n%s%s", code, out, errs)
	}
}

func TestValidateReportsEveryErrorWithLine(t *testing.T) {
	bad := `listen: ":8089"
lissten: x
auth:
  methods: [internal, ldap, internal]
  internal:
    users:
      - user: any
        pass: x
        permissions: [{action: read, path: "~("}]
      - user: bob
        pass: argon2:$argon2d$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58
        permissions: [{path: cam}]
`
	path := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "", "validate", "-config", path)
	if code != exitConfig {
		t.Fatalf("got exit %d, want %d", code, exitConfig)
	}
	for _, want := range []string{
		"bad.yml:2: lissten: unknown key",
		`bad.yml:4: auth.methods[1]: unknown method type "ldap" (known types: internal, keys, jwt, http)`,
		`bad.yml:4: auth.methods[2]: method id "internal" is used twice (also auth.methods[0])`,
		"bad.yml:9:",
		"bad.yml:11:",
		"argon2d",
		"bad.yml:12:",
		"no action",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}

func TestHashThenCheck(t *testing.T) {
	for _, flag := range []string{"--argon2id", "--sha256"} {
		t.Run(flag, func(t *testing.T) {
			code, hash, errs := runCLI(t, "s3cret-pass\n", "hash", flag)
			if code != exitOK {
				t.Fatalf("hash: exit %d: %s", code, errs)
			}
			hash = strings.TrimSpace(hash)
			cfg := "data_dir: " + t.TempDir() + "\nauth:\n  internal:\n    users:\n      - user: alice\n        pass: \"" + hash + "\"\n        permissions: [{action: publish, path: live/alice}]\n"
			path := filepath.Join(t.TempDir(), "c.yml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				args []string
				want int
				out  string
			}{
				{[]string{"--action", "publish", "--path", "live/alice", "--user", "alice", "--pass", "s3cret-pass", "--ip", "203.0.113.7"}, exitOK, "ALLOW (200)"},
				{[]string{"--action", "publish", "--path", "live/alice", "--user", "alice", "--pass", "wrong"}, exitDeny, "DENY (401)"},
				{[]string{"--action", "publish", "--path", "live/bob", "--user", "alice", "--pass", "s3cret-pass"}, exitDeny, "DENY (403)"},
			}
			for _, c := range cases {
				code, out, errs := runCLI(t, "", append([]string{"check", "-config", path}, c.args...)...)
				if code != c.want || !strings.Contains(out, c.out) {
					t.Errorf("check %v: got exit %d %q %s, want %d %q", c.args, code, out, errs, c.want, c.out)
				}
			}
		})
	}
	if code, _, _ := runCLI(t, "", "hash"); code != exitConfig {
		t.Errorf("empty secret: got exit %d, want %d", code, exitConfig)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	t.Chdir(t.TempDir()) // the built-in defaults keep data_dir at ./data
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"unknown command", []string{"frobnicate"}, exitConfig},
		{"check without action", []string{"check"}, exitConfig},
		{"check bad ip", []string{"check", "--action", "read", "--ip", "nope"}, exitConfig},
		{"validate without config", []string{"validate"}, exitConfig},
		{"validate missing file", []string{"validate", "-config", "/nonexistent.yml"}, exitConfig},
		{"version", []string{"version"}, exitOK},
		{"defaults allow anonymous read", []string{"check", "--action", "read", "--path", "x"}, exitOK},
		{"defaults refuse anonymous publish", []string{"check", "--action", "publish", "--path", "x"}, exitDeny},
		{"defaults allow local api", []string{"check", "--action", "api", "--ip", "127.0.0.1"}, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, out, errs := runCLI(t, "", tt.args...); code != tt.want {
				t.Errorf("got exit %d, want %d\n%s%s", code, tt.want, out, errs)
			}
		})
	}
}

// TestTokenTTLCap: gatehouse token refuses a lifetime beyond tokens.max_ttl (default 24h) with an
// error naming the key, and mints up to a raised maximum.
func TestTokenTTLCap(t *testing.T) {
	dir := t.TempDir()
	write := func(extra string) string {
		p := filepath.Join(dir, "gatehouse.yml")
		src := "data_dir: " + filepath.Join(dir, "data") + "\n" + extra + "auth: {methods: [jwt]}\n"
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, extra, ttl string
		want             int
	}{
		{"default refuses 1000000h", "", "1000000h", exitConfig},
		{"default refuses 25h", "", "25h", exitConfig},
		{"default mints 24h", "", "24h", exitOK},
		{"raised max mints 48h", "tokens: {max_ttl: 48h}\n", "48h", exitOK},
		{"raised max refuses 49h", "tokens: {max_ttl: 48h}\n", "49h", exitConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, "", "token", "-config", write(tc.extra), "--sub", "alice", "--allow", "read:live/*", "--ttl", tc.ttl)
			if code != tc.want {
				t.Fatalf("got exit %d, want %d\n%s%s", code, tc.want, out, errs)
			}
			if tc.want != exitOK && (!strings.Contains(errs, "tokens.max_ttl") || out != "") {
				t.Errorf("stderr %q, stdout %q: want an error naming tokens.max_ttl and no token", errs, out)
			}
		})
	}
}

// TestConfigExampleHookKeys: config.example.yml documents the hook adapters' server-API keys
// (commented out, as they need a running server); uncommented, they load through the real loader.
func TestConfigExampleHookKeys(t *testing.T) {
	src, err := os.ReadFile("../../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	commented := regexp.MustCompile(`^(\s+)# ([a-z_]+: .*)$`)
	lines := strings.Split(string(src), "\n")
	inHooks := false
	for i, l := range lines {
		if l != "" && l[0] != ' ' && l[0] != '#' {
			inHooks = strings.HasPrefix(l, "hooks:")
		}
		if m := commented.FindStringSubmatch(l); inHooks && m != nil {
			lines[i] = m[1] + m[2]
		}
	}
	t.Setenv("MTX_API_PASS", "x")
	cfg, err := parseConfig("config.example.yml", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("config.example.yml with its hooks keys uncommented: %v", err)
	}
	h := cfg.Hooks
	if h.NginxRTMP.ControlURL == "" || !h.MediaMTX.API.Configured() || h.MediaMTX.MaxSessions == 0 || !h.SRS.API.Configured() ||
		!h.OME.API.Configured() || h.OME.Vhost == "" {
		t.Errorf("config.example.yml lacks hooks.nginx_rtmp.control_url, hooks.mediamtx.api, hooks.mediamtx.max_sessions, hooks.srs.api, hooks.ome.api or hooks.ome.vhost: %+v", h)
	}
}
