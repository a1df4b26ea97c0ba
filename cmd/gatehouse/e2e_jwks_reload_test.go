package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// fakeIdP serves one EC key as a JWKS, counting requests; down makes it answer 503.
type fakeIdP struct {
	*httptest.Server
	key  *ecdsa.PrivateKey
	hits atomic.Int64
	down atomic.Bool
	jwks []byte
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "idp-1", ALG: jwkset.AlgES256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"keys": []any{jwk.Marshal()}})
	f := &fakeIdP{key: k, jwks: doc}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.hits.Add(1)
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(f.jwks)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIdP) token(t *testing.T) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://idp.test", "sub": "viewer", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"mediamtx_permissions": []map[string]string{{"action": "read", "path": "live/cam"}},
	})
	tok.Header["kid"] = "idp-1"
	s, err := tok.SignedString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEndToEndReloadKeepsJWKS: reloads (SIGHUP, or an edit such as the log level) while the IdP
// is down keep JWT decisions allowed and fetch nothing: unchanged providers, with their keys and
// caches, are taken over by the new generation. A reload also keeps the running token issuer
// (a changed data_dir applies after a restart) yet picks up a key from gatehouse rotate-key.
func TestEndToEndReloadKeepsJWKS(t *testing.T) {
	idp := newFakeIdP(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	write := func(dataDir, level string) {
		src := `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
watch_config: false
data_dir: ` + dataDir + `
log: {level: ` + level + `}
auth:
  methods: [jwt]
  jwt:
    providers:
      - name: idp
        jwks: ` + idp.URL + `
        issuer: https://idp.test
`
		if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "data"), "info")
	p := startBinary(t, cfgPath)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(p.public + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("never ready (JWKS not fetched)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	read := func(tok string) (int, string) {
		status, r := postMediaMTX(t, p.hooks, jsonReq(map[string]any{"action": "read", "path": "live/cam", "protocol": "rtsp", "token": tok}))
		return status, r.Reason
	}
	cached := idp.token(t)
	if status, reason := read(cached); status != 200 {
		t.Fatalf("before the outage: got %d %s, want 200", status, reason)
	}
	own := func() string {
		code, out, errs := runCLI(t, "", "token", "-config", cfgPath, "--sub", "alice", "--allow", "read:live/cam", "--ttl", "1h")
		if code != exitOK {
			t.Fatalf("token: exit %d: %s", code, errs)
		}
		return strings.TrimSpace(out)
	}
	ownBefore := own()

	idp.down.Store(true)
	hits := idp.hits.Load()
	reload := func() {
		t.Helper()
		n := strings.Count(p.logs(), "config reloaded")
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		waitLog(t, p, "config reloaded", n)
	}
	const reloads = 10
	for range reloads {
		reload()
	}
	write(filepath.Join(dir, "data"), "debug") // an unrelated edit
	reload()
	for _, tc := range []struct{ name, tok string }{
		{"token verified before the reloads", cached},
		{"token first seen after the reloads", idp.token(t)},
		{"own token", ownBefore},
	} {
		if status, reason := read(tc.tok); status != 200 {
			t.Errorf("%s, IdP down, after %d reloads: got %d %s, want 200", tc.name, reloads+1, status, reason)
		}
	}
	if got := idp.hits.Load() - hits; got != 0 {
		t.Errorf("JWKS fetches caused by %d reloads: got %d, want 0", reloads+1, got)
	}

	t.Run("data_dir change applies after a restart", func(t *testing.T) {
		write(filepath.Join(dir, "other-data"), "info")
		reload()
		if status, reason := read(ownBefore); status != 200 {
			t.Errorf("own token after data_dir changed: got %d %s, want 200 (running issuer kept)", status, reason)
		}
		write(filepath.Join(dir, "data"), "info")
		reload()
	})
	t.Run("rotate-key is picked up by a reload", func(t *testing.T) {
		if code, _, errs := runCLI(t, "", "rotate-key", "-config", cfgPath); code != exitOK {
			t.Fatalf("rotate-key: exit %d: %s", code, errs)
		}
		reload()
		for name, tok := range map[string]string{"new key": own(), "old key": ownBefore} {
			if status, reason := read(tok); status != 200 {
				t.Errorf("%s after rotate-key and reload: got %d %s, want 200", name, status, reason)
			}
		}
	})
}
