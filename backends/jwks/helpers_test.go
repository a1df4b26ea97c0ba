package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
)

// testKey is a signing key with its kid and alg.
type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

// Key generation is slow on a busy machine: one of each per test binary.
var (
	rsaOnce = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	rsa2    = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	ecOnce  = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })
	edOnce  = sync.OnceValue(func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k })
)

func rsaKey(kid string) testKey         { return testKey{kid: kid, alg: "RS256", priv: rsaOnce()} }
func rsaKey2(kid string) testKey        { return testKey{kid: kid, alg: "RS256", priv: rsa2()} }
func ecKey(kid string) testKey          { return testKey{kid: kid, alg: "ES256", priv: ecOnce()} }
func edKey(kid string) testKey          { return testKey{kid: kid, alg: "EdDSA", priv: edOnce()} }
func (k testKey) as(alg string) testKey { k.alg = alg; return k }

func (k testKey) method() jwt.SigningMethod { return jwt.GetSigningMethod(k.alg) }

// jwk renders the public half as a JWK (use sig, alg set).
func (k testKey) jwk(t testing.TB) json.RawMessage {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(k.priv.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
		KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig,
	}})
	if err != nil {
		t.Fatalf("jwk: %v", err)
	}
	b, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign makes a token with the given claims; kid "" omits the header.
func (k testKey) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method(), claims)
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func jwksDoc(t testing.TB, keys ...testKey) []byte {
	t.Helper()
	var raws []json.RawMessage
	for _, k := range keys {
		raws = append(raws, k.jwk(t))
	}
	return jwksRaw(t, raws...)
}

func jwksRaw(t testing.TB, raws ...json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": raws})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer is a fake IdP key endpoint whose answer the test controls, counting hits.
type jwksServer struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	status  atomic.Int32
	hang    atomic.Bool
	release chan struct{}
	hits    atomic.Int64
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{release: make(chan struct{})}
	s.set(body)
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.release)
		s.Close()
	})
	return s
}

func (s *jwksServer) set(body []byte) { s.body.Store(&body) }

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	if s.hang.Load() {
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		return
	}
	w.WriteHeader(int(s.status.Load()))
	_, _ = w.Write(*s.body.Load())
}

// fakeClock is an injectable, manually advanced clock.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// claimsAt returns valid claims for issuer "test-issuer", audience "gatehouse", at clock time now.
func claimsAt(now time.Time, perms any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": "test-issuer",
		"aud": "gatehouse",
		"sub": "somebody",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	if perms != nil {
		c["mediamtx_permissions"] = perms
	}
	return c
}

func publishPerm(path string) []map[string]string {
	return []map[string]string{{"action": "publish", "path": path}}
}

func testProvider(url string) Provider {
	return Provider{Name: "idp", JWKS: url, Issuer: "test-issuer", Audience: "gatehouse"}
}

// newTestBackend builds a Backend, closes it at cleanup and waits for every provider's first
// fetch attempt.
func newTestBackend(t testing.TB, cfg Config, opts ...Option) *Backend {
	t.Helper()
	b, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	waitFirst(t, b)
	return b
}

func waitFirst(t testing.TB, b *Backend) {
	t.Helper()
	for _, p := range b.providers {
		select {
		case <-p.firstDone:
		case <-time.After(10 * time.Second):
			t.Fatalf("provider %s: first fetch did not finish", p.name)
		}
	}
}

// waitFetches waits until provider 0 has completed n fetch attempts (successful or not).
func waitAttempts(t testing.TB, b *Backend, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	p := b.providers[0]
	for p.fetches.Load()+p.fetchErrors.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d fetch attempts, want %d", p.fetches.Load()+p.fetchErrors.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publishReq(path, token string) *authz.Request {
	return &authz.Request{Action: authz.ActionPublish, Path: path, Protocol: "rtsp", Token: token}
}

func authorize(t testing.TB, b *Backend, req *authz.Request) (authz.Decision, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return b.Authorize(ctx, req)
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
