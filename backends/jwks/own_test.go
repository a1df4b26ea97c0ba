package jwks

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
)

// mustAllow parses permissions written as on the command line (tokens.ParseAllow).
func mustAllow(t testing.TB, specs ...string) []authz.Permission {
	t.Helper()
	var out []authz.Permission
	for _, s := range specs {
		p, err := tokens.ParseAllow(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestIssuedTokenVerifiedWithIssuer(t *testing.T) {
	clk := newClock()
	iss, err := tokens.LoadIssuer(t.TempDir(), tokens.IssuerClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t, Config{}, WithIssuer(iss), WithClock(clk.Now))
	if err := b.Ready(); err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue("alice", mustAllow(t, "publish:live/alice", "read:live/*"), 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		req    *authz.Request
		want   authz.Outcome
		reason string
	}{
		{"publish own path", publishReq("live/alice", ""), authz.Allow, authz.ReasonAllowed},
		{"publish other path", publishReq("live/bob", ""), authz.Forbidden, authz.ReasonNotPermitted},
		{"read glob", &authz.Request{Action: authz.ActionRead, Path: "live/bob", Protocol: "webrtc"}, authz.Allow, authz.ReasonAllowed},
		{"read glob is one segment", &authz.Request{Action: authz.ActionRead, Path: "live/a/b", Protocol: "webrtc"}, authz.Forbidden, authz.ReasonNotPermitted},
		{"no api", &authz.Request{Action: authz.ActionAPI}, authz.Forbidden, authz.ReasonNotPermitted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Token = tok
			d, err := authorize(t, b, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.want || d.Reason != tc.reason {
				t.Fatalf("got %v %q, want %v %q", d.Outcome, d.Reason, tc.want, tc.reason)
			}
			if got, want := d.Identity, "alice"; got != want {
				t.Errorf("identity: got %q, want %q", got, want)
			}
			if got, want := d.Expires, clk.Now().Add(12*time.Hour).Truncate(time.Second); !got.Equal(want) {
				t.Errorf("expires: got %v, want %v", got, want)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		short, _ := iss.Issue("alice", mustAllow(t, "publish:live/alice"), time.Minute)
		clk2 := newClock()
		clk2.Advance(2 * time.Minute)
		b2 := newTestBackend(t, Config{}, WithIssuer(iss), WithClock(clk2.Now))
		d, _ := authorize(t, b2, publishReq("live/alice", short))
		if got, want := d.Reason, ReasonTokenExpired; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("protocol limit", func(t *testing.T) {
		// A room token (web/login PublishToken): publish one path over WebRTC only.
		p, err := authz.NewPermission("publish", "room/x/alice", []string{"webrtc"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := iss.Issue("alice", []authz.Permission{p}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for proto, want := range map[string]authz.Outcome{"webrtc": authz.Allow, "rtmp": authz.Forbidden, "srt": authz.Forbidden} {
			d, _ := authorize(t, b, &authz.Request{Action: authz.ActionPublish, Path: "room/x/alice", Protocol: proto, Token: tok})
			if d.Outcome != want {
				t.Errorf("publish over %s: got %v %q, want %v", proto, d.Outcome, d.Reason, want)
			}
		}
	})
	t.Run("provider clash", func(t *testing.T) {
		_, err := New(Config{Providers: []Provider{{Name: "x", JWKS: "http://x", Issuer: tokens.DefaultIssuerName}}}, WithIssuer(iss))
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("got %v, want ErrConfig", err)
		}
	})
}

func TestIssuerRotate(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	iss, err := tokens.LoadIssuer(dir, tokens.IssuerClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t, Config{}, WithIssuer(iss), WithClock(clk.Now))
	perms := mustAllow(t, "publish:live/alice")
	first, _ := iss.Issue("alice", perms, time.Hour)
	kid1 := iss.KeyID()
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	if iss.KeyID() == kid1 {
		t.Fatal("Rotate kept the kid")
	}
	second, _ := iss.Issue("alice", perms, time.Hour)
	for name, tok := range map[string]string{"before rotation": first, "after rotation": second} {
		d, err := authorize(t, b, publishReq("live/alice", tok))
		if err != nil || d.Outcome != authz.Allow {
			t.Fatalf("%s: got %v %q %v, want allow", name, d.Outcome, d.Reason, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, tokens.PreviousKeysFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("previous keys file: %v %v, want mode 0600", st, err)
	}

	// From disk: same current key, previous key still published.
	again, err := tokens.LoadIssuer(dir, tokens.IssuerClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again.KeyID(), iss.KeyID(); got != want {
		t.Fatalf("kid after reload: got %q, want %q", got, want)
	}
	if got, want := again.Audience(), iss.Audience(); got != want || !strings.HasPrefix(got, "gatehouse-") {
		t.Fatalf("audience after reload: got %q, want %q (gatehouse-…)", got, want)
	}
	b2 := newTestBackend(t, Config{}, WithIssuer(again), WithClock(clk.Now))
	if d, _ := authorize(t, b2, publishReq("live/alice", first)); d.Outcome != authz.Allow {
		t.Fatalf("old token after reload: got %v %q", d.Outcome, d.Reason)
	}

	// Retention is bounded: after tokens.MaxPreviousKeys more rotations the first key is gone.
	for range tokens.MaxPreviousKeys {
		if err := iss.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.Stats().Providers[0].Keys, tokens.MaxPreviousKeys+1; got != want {
		t.Fatalf("published keys: got %d, want %d", got, want)
	}
	if d, _ := authorize(t, b, publishReq("live/alice", first)); d.Reason != ReasonUnknownKey {
		t.Fatalf("token of a dropped key: got %v %q, want %q", d.Outcome, d.Reason, ReasonUnknownKey)
	}
}

// TestIssuerJWKSForPlainProvider serves the issuer's JWKSHandler over HTTP: a plain JWKS
// provider pointed at gatehouse verifies its tokens like any IdP's.
func TestIssuerJWKSForPlainProvider(t *testing.T) {
	iss, err := tokens.LoadIssuer(t.TempDir()) // real clock: the backend checks exp against it
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.JWKSHandler())
	defer srv.Close()
	tok, err := iss.Issue("alice", mustAllow(t, "publish:live/alice", "api"), 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t, Config{Providers: []Provider{{Name: "gatehouse-remote", JWKS: srv.URL, Issuer: tokens.DefaultIssuerName}}})
	d, err := authorize(t, b, publishReq("live/alice", tok))
	if err != nil || d.Outcome != authz.Allow {
		t.Fatalf("got %v %q %v, want allow", d.Outcome, d.Reason, err)
	}
}

// signOwn signs claims with the current key in iss's key directory, as a forger holding a leaked
// or copied key (or an older gatehouse) would: it is how tokens that Issue refuses to mint reach
// the verifier.
func signOwn(t *testing.T, iss *tokens.Issuer, claims jwt.MapClaims) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(iss.Dir(), tokens.SigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("signing key is not PEM")
	}
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = iss.KeyID()
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOwnTokenLeniencies: gatehouse's own tokens have a bounded lifetime, are bound to the
// deployment by aud, and have numeric time claims with no iat in the future.
func TestOwnTokenLeniencies(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	iss, err := tokens.LoadIssuer(dir, tokens.IssuerClock(clk.Now), tokens.IssuerMaxTTL(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t, Config{}, WithIssuer(iss), WithClock(clk.Now))
	perms := mustAllow(t, "publish:live/alice")

	t.Run("minted token verified", func(t *testing.T) {
		tok, err := iss.Issue("alice", perms, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		d, err := authorize(t, b, publishReq("live/alice", tok))
		if err != nil || !d.Allowed() {
			t.Fatalf("got %v %q %v, want allow", d.Outcome, d.Reason, err)
		}
	})

	now := clk.Now()
	base := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": iss.Name(), "aud": iss.Audience(), "sub": "alice", "iat": now.Unix(),
			"exp": now.Add(time.Hour).Unix(), tokens.ClaimKey: []map[string]string{{"action": "publish", "path": "live/alice"}},
		}
	}
	with := func(kv ...any) jwt.MapClaims {
		c := base()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	// Another deployment with the same key files but its own audience (tokens.audience).
	other, err := tokens.LoadIssuer(dir, tokens.IssuerClock(clk.Now), tokens.IssuerAudience("staging"))
	if err != nil {
		t.Fatal(err)
	}
	fromOther, err := other.Issue("alice", perms, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"well-formed", signOwn(t, iss, base()), ""},
		{"lifetime 1000000h", signOwn(t, iss, with("exp", now.Add(1000000*time.Hour).Unix())), ReasonTokenLifetime},
		{"lifetime just over max", signOwn(t, iss, with("iat", now.Add(-time.Hour).Unix(), "exp", now.Add(time.Hour+time.Second).Unix())), ReasonTokenLifetime},
		{"no iat", signOwn(t, iss, with("iat", nil)), ReasonTokenLifetime},
		{"no aud (older gatehouse)", signOwn(t, iss, with("aud", nil)), ReasonBadAudience},
		{"other deployment's aud", fromOther, ReasonBadAudience},
		{"exp as string", signOwn(t, iss, with("exp", fmt.Sprint(now.Add(time.Hour).Unix()))), ReasonMalformedToken},
		{"iat a year ahead", signOwn(t, iss, with("iat", now.AddDate(1, 0, 0).Unix(), "exp", now.AddDate(1, 0, 0).Add(time.Hour).Unix())), ReasonTokenNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := authorize(t, b, publishReq("live/alice", tc.token))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				if !d.Allowed() {
					t.Fatalf("got %v %q, want allow", d.Outcome, d.Reason)
				}
				return
			}
			if d.Outcome != authz.Unauthenticated || d.Reason != tc.reason {
				t.Fatalf("got %v %q, want unauthenticated %q", d.Outcome, d.Reason, tc.reason)
			}
		})
	}
}

// TestIssuerReload: a key rotated by another process (gatehouse rotate-key) and picked up by the
// running Issuer's Reload is verified at once by a Backend built WithIssuer.
func TestIssuerReload(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	running, err := tokens.LoadIssuer(dir, tokens.IssuerClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t, Config{}, WithIssuer(running), WithClock(clk.Now))
	cli, err := tokens.LoadIssuer(dir, tokens.IssuerClock(clk.Now)) // the rotate-key command
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Rotate(); err != nil {
		t.Fatal(err)
	}
	tok, err := cli.Issue("alice", mustAllow(t, "publish:live/alice"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := running.Reload(); err != nil || !changed {
		t.Fatalf("after rotate: got %v %v, want true nil", changed, err)
	}
	if got, want := running.KeyID(), cli.KeyID(); got != want {
		t.Fatalf("kid: got %s, want %s", got, want)
	}
	d, err := authorize(t, b, publishReq("live/alice", tok))
	if err != nil || !d.Allowed() {
		t.Fatalf("token from the rotated key: got %v %q %v, want allow", d.Outcome, d.Reason, err)
	}
}
