package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
)

func mustAllow(t *testing.T, specs ...string) []authz.Permission {
	t.Helper()
	var out []authz.Permission
	for _, s := range specs {
		p, err := ParseAllow(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestIssuerFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	iss, err := LoadIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want fs.FileMode
	}{
		{dir, 0o700 | fs.ModeDir},
		{filepath.Join(dir, SigningKeyFile), 0o600},
	} {
		st, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode(); got != tc.want {
			t.Errorf("%s: mode got %v, want %v", tc.path, got, tc.want)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, SigningKeyFile))
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "PRIVATE KEY" { // PKCS#8
		t.Errorf("key file is not PKCS#8 PEM")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("want only the key and audience files in %s, got %d entries (temp files left?)", dir, len(entries))
	}
	if st, err := os.Stat(filepath.Join(dir, AudienceFile)); err != nil || st.Mode() != 0o600 {
		t.Errorf("audience file: %v %v, want mode 0600", st, err)
	}

	again, err := LoadIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again.KeyID(), iss.KeyID(); got != want {
		t.Fatalf("kid after reload: got %q, want %q", got, want)
	}
	if got, want := again.Audience(), iss.Audience(); got != want || !strings.HasPrefix(got, "gatehouse-") {
		t.Fatalf("audience after reload: got %q, want %q (gatehouse-…)", got, want)
	}

	t.Run("group-readable key refused", func(t *testing.T) {
		if err := os.Chmod(filepath.Join(dir, SigningKeyFile), 0o640); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(filepath.Join(dir, SigningKeyFile), 0o600)
		if _, err := LoadIssuer(dir); !errors.Is(err, ErrIssuer) {
			t.Fatalf("got %v, want ErrIssuer", err)
		}
	})
	t.Run("not a key", func(t *testing.T) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, SigningKeyFile), []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadIssuer(d)
		if !errors.Is(err, ErrIssuer) {
			t.Fatalf("got %v, want ErrIssuer", err)
		}
	})
	t.Run("corrupt previous keys", func(t *testing.T) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, PreviousKeysFile), []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadIssuer(d); !errors.Is(err, ErrIssuer) {
			t.Fatalf("got %v, want ErrIssuer", err)
		}
	})
}

// TestIssuerJWKSForMediaMTX serves JWKSHandler over HTTP and checks that keyfunc (the library
// MediaMTX's authJWTJWKS uses) verifies issued tokens; backends/jwks checks its own verifier.
func TestIssuerJWKSForMediaMTX(t *testing.T) {
	iss, err := LoadIssuer(t.TempDir()) // real clock: keyfunc and jwt check exp against it
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/jwks.json", iss.JWKSHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/.well-known/jwks.json"
	tok, err := iss.Issue("alice", mustAllow(t, "publish:live/alice", "api"), 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("served document", func(t *testing.T) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Keys []map[string]string `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Keys) != 1 {
			t.Fatalf("got %d keys, want 1", len(doc.Keys))
		}
		k := doc.Keys[0]
		for field, want := range map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": iss.KeyID()} {
			if k[field] != want {
				t.Errorf("%s: got %q, want %q", field, k[field], want)
			}
		}
		if _, ok := k["d"]; ok {
			t.Fatal("the private key is published")
		}
		if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, "max-age=60") {
			t.Errorf("Cache-Control: got %q", got)
		}
		resp2, err := http.Post(url, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if got, want := resp2.StatusCode, http.StatusMethodNotAllowed; got != want {
			t.Errorf("POST: got %d, want %d", got, want)
		}
	})

	t.Run("MediaMTX claim format", func(t *testing.T) {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]json.RawMessage
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		if got, want := string(c["mediamtx_permissions"]), `[{"action":"publish","path":"live/alice"},{"action":"api"}]`; got != want {
			t.Fatalf("claim: got %s, want %s", got, want)
		}
		for _, k := range []string{"iss", "sub", "iat", "exp"} {
			if _, ok := c[k]; !ok {
				t.Errorf("claim %s missing", k)
			}
		}
	})

	t.Run("keyfunc, as MediaMTX", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		kf, err := keyfunc.NewDefaultCtx(ctx, []string{url})
		if err != nil {
			t.Fatal(err)
		}
		var claims jwt.MapClaims
		parsed, err := jwt.ParseWithClaims(tok, &claims, kf.Keyfunc, jwt.WithIssuer(DefaultIssuerName))
		if err != nil || !parsed.Valid {
			t.Fatalf("keyfunc verification: %v", err)
		}
		if got, want := claims["sub"], "alice"; got != want {
			t.Errorf("sub: got %v, want %v", got, want)
		}
	})
}

// TestIssuedTokenFitsSRTStreamID measures the token for `--sub alice --allow publish:live/alice
// --ttl 12h`: SRT's streamid is limited to 512 characters (MediaMTX #3430), and the token travels
// there as the password of "publish:live/alice:<user>:<token>".
func TestIssuedTokenFitsSRTStreamID(t *testing.T) {
	iss, err := LoadIssuer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue("alice", mustAllow(t, "publish:live/alice"), 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	streamid := "publish:live/alice:alice:" + tok
	t.Logf("token: %d characters; SRT streamid: %d of 512", len(tok), len(streamid))
	if len(streamid) > 512 {
		t.Fatalf("streamid is %d characters, SRT allows 512", len(streamid))
	}
}

func TestIssueErrors(t *testing.T) {
	iss, err := LoadIssuer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		sub   string
		perms []authz.Permission
		ttl   time.Duration
	}{
		{"empty subject", "", mustAllow(t, "api"), time.Hour},
		{"zero ttl", "a", mustAllow(t, "api"), 0},
		{"no permissions", "a", nil, time.Hour},
		{"zero permission", "a", []authz.Permission{{}}, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := iss.Issue(tc.sub, tc.perms, tc.ttl); !errors.Is(err, ErrIssuer) {
				t.Fatalf("got %v, want ErrIssuer", err)
			}
		})
	}
}

func TestParseAllow(t *testing.T) {
	req := func(a authz.Action, path string) *authz.Request { return &authz.Request{Action: a, Path: path} }
	for _, tc := range []struct {
		in      string
		match   *authz.Request
		nomatch *authz.Request
		wantErr bool
	}{
		{in: "publish:live/alice", match: req(authz.ActionPublish, "live/alice"), nomatch: req(authz.ActionPublish, "live/bob")},
		{in: "read:live/*", match: req(authz.ActionRead, "live/x"), nomatch: req(authz.ActionRead, "live/x/y")},
		{in: "read:~^cam", match: req(authz.ActionRead, "cam7"), nomatch: req(authz.ActionRead, "mycam")},
		{in: "read", match: req(authz.ActionRead, "anything"), nomatch: req(authz.ActionPublish, "anything")},
		{in: "api", match: req(authz.ActionAPI, ""), nomatch: req(authz.ActionMetrics, "")},
		{in: "api:foo", wantErr: true},
		{in: "publish:", wantErr: true},
		{in: "write:live", wantErr: true},
		{in: "", wantErr: true},
		{in: "read:~(", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParseAllow(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrAllow) {
					t.Fatalf("got %v, want ErrAllow", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !p.Matches(tc.match) {
				t.Errorf("%s does not match %+v", p, tc.match)
			}
			if p.Matches(tc.nomatch) {
				t.Errorf("%s matches %+v", p, tc.nomatch)
			}
		})
	}
}

// TestIssueLifetimeAndAudience: Issue refuses lifetimes over the maximum; every token carries the
// deployment's audience, which differs per key directory.
func TestIssueLifetimeAndAudience(t *testing.T) {
	iss, err := LoadIssuer(t.TempDir(), IssuerMaxTTL(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	perms := mustAllow(t, "publish:live/alice")
	t.Run("mint beyond max ttl refused", func(t *testing.T) {
		if _, err := iss.Issue("alice", perms, 2*time.Hour+time.Second); !errors.Is(err, ErrTTL) || !errors.Is(err, ErrIssuer) {
			t.Fatalf("got %v, want ErrTTL and ErrIssuer", err)
		}
		def, err := LoadIssuer(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := def.Issue("alice", perms, 1000000*time.Hour); !errors.Is(err, ErrTTL) {
			t.Fatalf("default issuer, ttl 1000000h: got %v, want ErrTTL", err)
		}
		if got, want := def.MaxTTL(), DefaultMaxTTL; got != want {
			t.Fatalf("default max ttl: got %v, want %v", got, want)
		}
	})
	t.Run("minted token carries the audience", func(t *testing.T) {
		tok, err := iss.Issue("alice", perms, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var c jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
			t.Fatal(err)
		}
		if got, want := []string(c.Audience), []string{iss.Audience()}; len(got) != 1 || got[0] != want[0] {
			t.Fatalf("aud: got %q, want %q", got, want)
		}
	})
	t.Run("audience differs per key directory", func(t *testing.T) {
		a, _ := LoadIssuer(t.TempDir())
		b, _ := LoadIssuer(t.TempDir())
		if a.Audience() == b.Audience() {
			t.Fatalf("two deployments share audience %q", a.Audience())
		}
	})
}

// TestIssuerRotateKeySet: Rotate changes the kid and the KeySet generation, keeps the previous
// keys published (also after loading the directory again), and at most MaxPreviousKeys of them.
func TestIssuerRotateKeySet(t *testing.T) {
	dir := t.TempDir()
	iss, err := LoadIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	kid1, gen1 := iss.KeyID(), iss.KeySet().Gen
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	if iss.KeyID() == kid1 {
		t.Fatal("Rotate kept the kid")
	}
	ks := iss.KeySet()
	if ks.Gen == gen1 {
		t.Fatal("Rotate kept the key set generation")
	}
	if got, want := kids(ks), []string{iss.KeyID(), kid1}; !slices.Equal(got, want) {
		t.Fatalf("published kids: got %v, want %v", got, want)
	}
	if st, err := os.Stat(filepath.Join(dir, PreviousKeysFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("previous keys file: %v %v, want mode 0600", st, err)
	}
	again, err := LoadIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kids(again.KeySet()), kids(ks); !slices.Equal(got, want) {
		t.Fatalf("published kids after loading again: got %v, want %v", got, want)
	}
	for range MaxPreviousKeys {
		if err := iss.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if got := kids(iss.KeySet()); len(got) != MaxPreviousKeys+1 || slices.Contains(got, kid1) {
		t.Fatalf("published kids after %d more rotations: got %v, want %d without %s", MaxPreviousKeys, got, MaxPreviousKeys+1, kid1)
	}
}

func kids(ks *KeySet) []string {
	var out []string
	for _, k := range ks.Keys {
		out = append(out, k.ID)
	}
	return out
}

// TestIssuerReload: Reload picks up a key rotated by another process (gatehouse rotate-key);
// without a change it keeps everything, including the key set generation cached grants depend
// on; a missing key file is an error that keeps the current key.
func TestIssuerReload(t *testing.T) {
	dir := t.TempDir()
	running, err := LoadIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	gen := running.KeySet().Gen
	if changed, err := running.Reload(); err != nil || changed {
		t.Fatalf("unchanged: got %v %v, want false nil", changed, err)
	}
	if running.KeySet().Gen != gen {
		t.Fatal("Reload without a change republished the key set")
	}
	cli, err := LoadIssuer(dir) // the rotate-key command
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Rotate(); err != nil {
		t.Fatal(err)
	}
	if changed, err := running.Reload(); err != nil || !changed {
		t.Fatalf("after rotate: got %v %v, want true nil", changed, err)
	}
	if got, want := running.KeyID(), cli.KeyID(); got != want {
		t.Fatalf("kid: got %s, want %s", got, want)
	}
	if err := os.Remove(filepath.Join(dir, SigningKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Reload(); !errors.Is(err, ErrIssuer) {
		t.Fatalf("key file gone: got %v, want ErrIssuer", err)
	}
	if got, want := running.KeyID(), cli.KeyID(); got != want {
		t.Fatalf("kid after failed reload: got %s, want %s", got, want)
	}
}

// BenchmarkIssue measures minting a token.
func BenchmarkIssue(b *testing.B) {
	iss, err := LoadIssuer(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	p, err := ParseAllow("publish:live/alice")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := iss.Issue("alice", []authz.Permission{p}, 12*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
