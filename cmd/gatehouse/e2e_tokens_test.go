package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEndToEndTokensAndChaining mints a token with `gatehouse token`, starts the real binary with
// internal users limited to api/publish and the jwt method for everything else, and checks the
// MediaMTX hook (JWT in token and in password), the JWKS endpoint, and the streams API fed by
// the nginx-rtmp hook.
func TestEndToEndTokensAndChaining(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	cfg := `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
watch_config: false
data_dir: ` + data + `
auth:
  methods:
    - {method: internal, actions: [api, publish]}
    - jwt
  internal:
    users:
      - user: admin
        pass: adminpass
        permissions: [{action: api}]
      - user: cam
        pass: campass
        permissions: [{action: publish, path: "live/*"}]
      - user: any
        permissions: [{action: read}]
sfu:
  udp_port: 0
  include_loopback: true
  allow_private_candidates: true
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "", "token", "-config", cfgPath, "--sub", "alice", "--allow", "read:live/*", "--allow", "publish:live/alice", "--ttl", "1h")
	if code != exitOK {
		t.Fatalf("token: exit %d: %s", code, errs)
	}
	tok := leaks.token("minted token (e2e tokens)", strings.TrimSpace(out))
	leaks.secret("admin password (e2e tokens)", "adminpass")
	if n := len(tok); n == 0 || n > 512 {
		t.Fatalf("token length %d, want 1..512 (fits an SRT streamid)", n)
	}

	p := startBinary(t, cfgPath)
	tests := []struct {
		name       string
		body       string
		wantStatus int
	}{
		{"token field reads", jsonReq(map[string]any{"action": "read", "path": "live/cam", "protocol": "rtsp", "token": tok}), 200},
		{"token in password, any user", jsonReq(map[string]any{"action": "read", "path": "live/cam", "protocol": "rtsp", "user": "any", "password": tok, "token": tok}), 200},
		{"token publishes its own path", jsonReq(map[string]any{"action": "publish", "path": "live/alice", "protocol": "rtmp", "token": tok}), 200},
		{"token not permitted elsewhere is 403", jsonReq(map[string]any{"action": "publish", "path": "live/bob", "protocol": "rtmp", "token": tok}), 403},
		{"tampered token is 401", jsonReq(map[string]any{"action": "read", "path": "live/cam", "token": tok[:len(tok)-3] + "AAA"}), 401},
		{"internal limited to publish: any-read rule is not consulted", jsonReq(map[string]any{"action": "read", "path": "live/cam"}), 401},
		{"internal publisher still works", jsonReq(map[string]any{"action": "publish", "path": "live/x", "user": "cam", "password": "campass"}), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, r := postMediaMTX(t, p.hooks, tt.body); status != tt.wantStatus {
				t.Errorf("got %d (%s), want %d", status, r.Reason, tt.wantStatus)
			}
		})
	}

	t.Run("jwks endpoint publishes the signing key", func(t *testing.T) {
		resp, err := http.Get(p.public + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct {
			Keys []struct{ Kty, Crv, Kid, Alg string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) == 0 || set.Keys[0].Kty != "OKP" || set.Keys[0].Crv != "Ed25519" || set.Keys[0].Alg != "EdDSA" {
			t.Errorf("got %+v, want an Ed25519 key", set.Keys)
		}
	})

	t.Run("nginx-rtmp publish appears in the streams API", func(t *testing.T) {
		form := url.Values{"call": {"publish"}, "app": {"live"}, "name": {"alice"}, "addr": {"127.0.0.1"}, "clientid": {"7"}, "token": {tok}}
		resp, err := http.PostForm(p.hooks+"/hooks/nginx-rtmp", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("on_publish: got %d, want 200", resp.StatusCode)
		}
		get := func(user, pass string) (int, string) {
			req, _ := http.NewRequest("GET", p.public+"/api/v1/streams", nil)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if status, _ := get("", ""); status != 401 {
			t.Errorf("anonymous: got %d, want 401", status)
		}
		if status, _ := get("cam", "campass"); status != 403 {
			t.Errorf("publisher: got %d, want 403", status)
		}
		status, body := get("admin", "adminpass")
		if status != 200 || !strings.Contains(body, `"live/alice"`) || !strings.Contains(body, "alice") {
			t.Errorf("admin: got %d %s, want live/alice listed", status, body)
		}
		if strings.Contains(body, tok) {
			t.Error("streams API leaks the token")
		}
	})

	t.Run("WHIP and the player page are on the public listener", func(t *testing.T) {
		resp, err := http.Post(p.public+"/whip/live/alice", "application/sdp", strings.NewReader("v=0\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("WHIP without a token: got %d %s, want 401 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		resp, err = http.Get(p.public + "/watch/live/alice")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "<html") {
			t.Errorf("player page: got %d", resp.StatusCode)
		}
	})

	t.Run("no token in the log", func(t *testing.T) {
		if strings.Contains(p.logs(), tok[:40]) {
			t.Error("log contains the token")
		}
	})
}

func jsonReq(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}
