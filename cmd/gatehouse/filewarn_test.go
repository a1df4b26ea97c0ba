package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFileWarnings: gatehouse does not refuse a config file with loose permissions, but
// says so at start (WARN): always when anyone may write it (anyone could rewrite the policy), and
// when group or others may read it while it holds secrets inline (a password hash, a secret, a
// stream key) rather than ${VAR} references. The line names keys, never values.
func TestConfigFileWarnings(t *testing.T) {
	const inline = "auth:\n  internal:\n    users:\n      - {user: alice, pass: inline-secret-value, permissions: [{action: read}]}\n"
	const byRef = "auth:\n  internal:\n    users:\n      - {user: alice, pass: \"${ALICE_PASS:-x}\", permissions: [{action: read}]}\n"
	for _, tt := range []struct {
		name     string
		body     string
		mode     os.FileMode
		readable bool // the "readable by group or others" warning
		writable bool // the "writable by every user" warning
	}{
		{"0600 with an inline secret", inline, 0o600, false, false},
		{"0644 with an inline secret", inline, 0o644, true, false},
		{"0640 with an inline secret", inline, 0o640, true, false},
		{"0644 with references only", byRef, 0o644, false, false},
		{"0666 with references only", byRef, 0o666, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "gatehouse.yml")
			src := "listen: 127.0.0.1:0\nhooks_listen: 127.0.0.1:0\nwatch_config: false\ndata_dir: " + filepath.Join(dir, "data") + "\n" + tt.body
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			_, _, logs := serveFile(t, path)
			out := logs.String()
			if got := strings.Contains(out, "level=WARN msg=config warning=") && strings.Contains(out, "holds secrets inline (auth.internal.users.pass)"); got != tt.readable {
				t.Errorf("readable warning: got %v, want %v\n%s", got, tt.readable, out)
			}
			if got := strings.Contains(out, "is writable by every user"); got != tt.writable {
				t.Errorf("writable warning: got %v, want %v\n%s", got, tt.writable, out)
			}
			if strings.Contains(out, "inline-secret-value") {
				t.Errorf("the log holds the secret's value:\n%s", out)
			}
		})
	}
}

// TestPlainHTTPIssuerWarned: an http:// OpenID provider off loopback sends the client secret and
// codes in clear; gatehouse warns at start (one of cfg.warnings, logged as WARN lines by serve).
func TestPlainHTTPIssuerWarned(t *testing.T) {
	for _, tt := range []struct {
		issuer string
		warn   bool
	}{
		{"http://idp.example.com/realms/x", true},
		{"http://10.0.0.5:8080", true},
		{"https://idp.example.com/realms/x", false},
		{"http://127.0.0.1:8080/realms/x", false},
		{"http://localhost:8080", false},
		{"http://[::1]:8080", false},
	} {
		cfg, err := parseConfig("t.yml", []byte("auth:\n  methods: [internal, jwt]\n  internal: {users: []}\n  jwt: {}\nweb:\n  login:\n    issuer: "+tt.issuer+
			"\n    client_id: gatehouse\n    client_secret: ${X:-s}\n    redirect_url: https://stream.example.com/login/callback\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.issuer, err)
		}
		got := strings.Contains(strings.Join(cfg.warnings(), "\n"), "web.login.issuer is http://")
		if got != tt.warn {
			t.Errorf("%s: warned %v, want %v (%v)", tt.issuer, got, tt.warn, cfg.warnings())
		}
	}
}
