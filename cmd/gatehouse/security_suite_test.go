package main

// The security suite: attacks on the real binary, every listener, every carrier a credential can
// ride. `go test -run Security ./cmd/gatehouse/` runs it; the leak check over every log the
// package's binaries wrote runs after it in TestMain (leakcheck_test.go). Unit tests of the same
// rules live with their packages (backends/jwks, protocols/*, authz conformance); this is the end
// to end proof against what users run.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"gatehouse/protocols/ome"
)

// secEnv is one running binary configured for the suite, with the IdP, attacker and secrets.
type secEnv struct {
	p        *proc
	idp      *rsa.PrivateKey // the IdP's signing key, served by idpSrv
	attacker *rsa.PrivateKey // a key the attacker owns, served by evilSrv
	evilHits *atomic.Int64   // requests that reached the attacker's key server
	evilURL  string
	hmac     string // the "mixed" provider's HS256 secret (RS256 and HS256 both allowed)
	omeKey   string
	cookieK  string
	pubPass  string
	key      string // a stream key for live/alice
}

const (
	secIssuer   = "https://idp.test"
	mixedIssuer = "https://mixed.test"
	secAudience = "gatehouse-sec"
)

func randomSecret(t *testing.T, label string) string {
	t.Helper()
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return leaks.secret(label, label[:3]+"-"+hex.EncodeToString(b))
}

// securityEnv starts the suite's binary. Each test that uses it starts its own, so tests stay
// independent and every binary's log is captured and searched.
func securityEnv(t *testing.T) *secEnv {
	t.Helper()
	leaks.require()
	e := &secEnv{evilHits: new(atomic.Int64)}
	var err error
	if e.idp, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if e.attacker, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	idpSrv := httptest.NewServer(jwksHandler(t, &e.idp.PublicKey, "k1", nil))
	t.Cleanup(idpSrv.Close)
	evil := httptest.NewServer(jwksHandler(t, &e.attacker.PublicKey, "k1", e.evilHits))
	t.Cleanup(evil.Close)
	e.evilURL = evil.URL
	e.hmac = randomSecret(t, "hmac secret")
	e.omeKey = randomSecret(t, "ome secret")
	e.cookieK = randomSecret(t, "cookie secret") + randomSecret(t, "cookie secret 2")
	e.pubPass = randomSecret(t, "publisher password")
	e.key = randomSecret(t, "stream key")

	dir := t.TempDir()
	cfg := `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
watch_config: false
data_dir: ` + filepath.Join(dir, "data") + `
log: {level: debug}
auth:
  methods: [internal, keys, jwt]
  # Every attack here fails; bans would turn later denials into "banned" ones and hide what
  # each attack's own check did. Bans have their own tests.
  bruteforce: {max_failures: 0, user_max_failures: 0}
  internal:
    users:
      - user: pub
        pass: ` + e.pubPass + `
        permissions: [{action: publish, path: "live/*"}]
      - user: any
        ips: ["127.0.0.1"]
        permissions: [{action: publish, path: "loop/*"}]
      - user: any
        permissions:
          - {action: read, path: "exact/cam"}
          - {action: read, path: "glob/*"}
          - {action: read, path: "deep/**"}
          - {action: read, path: "~^rx/[a-z]+$"}
          - {action: read, path: "uni/café"}
  keys:
    - {key: ` + e.key + `, path: live/alice, user: alice}
  jwt:
    providers:
      - name: idp
        jwks: ` + idpSrv.URL + `
        issuer: ` + secIssuer + `
        audience: ` + secAudience + `
        claim_key: mediamtx_permissions
      - name: mixed
        jwks: ` + idpSrv.URL + `
        issuer: ` + mixedIssuer + `
        audience: ` + secAudience + `
        claim_key: mediamtx_permissions
        algorithms: [RS256, HS256]
        hmac_secret: ` + e.hmac + `
hooks:
  nginx_rtmp: {allow_get: true}
  ome: {secret: ` + e.omeKey + `}
  forward_auth:
    rules: [{prefix: /hls/, strip_suffix: true}]
    trusted_proxies: ["127.0.0.1"]
    cookie: {secret: ` + e.cookieK + `}
sfu:
  udp_port: 0
  include_loopback: true
  allow_private_candidates: true
`
	path := filepath.Join(dir, "gatehouse.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.p = startBinary(t, path)
	waitReadyz(t, e.p)
	return e
}

func waitReadyz(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(p.public + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("never ready (JWKS not fetched)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jwksHandler serves pub as a one-key JWKS; hits, when set, counts requests.
func jwksHandler(t *testing.T, pub *rsa.PublicKey, kid string, hits *atomic.Int64) http.Handler {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"keys": []any{jwk.Marshal()}})
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
}

// claims returns valid claims for the suite's IdP granting read and publish on tok/cam.
func secClaims(iss string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": iss, "aud": secAudience, "sub": "mallory",
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"mediamtx_permissions": []map[string]string{{"action": "read", "path": "tok/cam"}, {"action": "publish", "path": "tok/cam"}},
	}
}

func signed(t *testing.T, m jwt.SigningMethod, key any, hdr map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	for k, v := range hdr {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for kk, vv := range c {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// tokenAttack is one forged, altered or out-of-policy token.
type tokenAttack struct {
	class string
	name  string
	tok   string
}

func (e *secEnv) tokenAttacks(t *testing.T) []tokenAttack {
	t.Helper()
	valid := secClaims(secIssuer)
	rs := func(c jwt.MapClaims, hdr map[string]any) string {
		if hdr == nil {
			hdr = map[string]any{"kid": "k1"}
		}
		return signed(t, jwt.SigningMethodRS256, e.idp, hdr, c)
	}
	evil := func(c jwt.MapClaims, hdr map[string]any) string {
		return signed(t, jwt.SigningMethodRS256, e.attacker, hdr, c)
	}
	good := rs(valid, nil)
	parts := strings.Split(good, ".")
	pubDER, err := x509.MarshalPKIXPublicKey(&e.idp.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&e.idp.PublicKey)})
	jwkJSON, _ := json.Marshal(map[string]string{"kty": "RSA", "kid": "k1",
		"n": base64.RawURLEncoding.EncodeToString(e.idp.PublicKey.N.Bytes()), "e": "AQAB"})
	evilJWK := map[string]any{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(e.attacker.PublicKey.N.Bytes()), "e": "AQAB"}
	other := rs(with(valid, "mediamtx_permissions", []map[string]string{{"action": "read", "path": "other/x"}}), nil)
	op := strings.Split(other, ".")

	var out []tokenAttack
	add := func(class, name, tok string) { out = append(out, tokenAttack{class, name, tok}) }
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		h := b64json(map[string]any{"alg": alg, "typ": "JWT", "kid": "k1"})
		add("alg none", alg+", empty signature", h+"."+parts[1]+".")
		add("alg none", alg+", original signature kept", h+"."+parts[1]+"."+parts[2])
	}
	for _, iss := range []string{secIssuer, mixedIssuer} {
		c := secClaims(iss)
		for name, k := range map[string][]byte{"PEM": pubPEM, "PKCS1 PEM": pkcs1PEM, "DER": pubDER, "JWK": jwkJSON, "modulus": e.idp.PublicKey.N.Bytes()} {
			for _, m := range []*jwt.SigningMethodHMAC{jwt.SigningMethodHS256, jwt.SigningMethodHS384} {
				add("HS/RS confusion", fmt.Sprintf("%s keyed with the RSA public key (%s), iss %s", m.Alg(), name, iss),
					signed(t, m, k, map[string]any{"kid": "k1"}, c))
			}
		}
	}
	add("stripped signature", "empty signature", parts[0]+"."+parts[1]+".")
	add("stripped signature", "no signature part", parts[0]+"."+parts[1])
	add("stripped signature", "signature of another token", parts[0]+"."+parts[1]+"."+op[2])
	add("stripped signature", "signature truncated", parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])-8])
	add("tampered payload", "permissions widened, signature kept", op[0]+"."+parts[1]+"."+op[2])
	add("tampered payload", "exp extended, signature kept", parts[0]+"."+b64json(with(valid, "exp", time.Now().Add(1000*time.Hour).Unix()))+"."+parts[2])
	pad := strings.Repeat("=", (4-len(parts[1])%4)%4)
	if pad == "" {
		pad = "=="
	}
	add("tampered payload", "payload with base64 padding added", parts[0]+"."+parts[1]+pad+"."+parts[2])
	add("tampered payload", "header with a space added, signature kept", b64json(map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT "})+"."+parts[1]+"."+parts[2])
	add("tampered payload", "one bit flipped in the signature", parts[0]+"."+parts[1]+"."+flipLast(parts[2]))
	add("embedded jwk", "attacker key in jwk, kid k1", evil(valid, map[string]any{"kid": "k1", "jwk": evilJWK}))
	add("embedded jwk", "attacker key in jwk, no kid", evil(valid, map[string]any{"jwk": evilJWK}))
	add("embedded jwk", "attacker key in jwk, fresh kid", evil(valid, map[string]any{"kid": "evil", "jwk": evilJWK}))
	add("jku/x5u", "jku to the attacker's JWKS", evil(valid, map[string]any{"kid": "k1", "jku": e.evilURL}))
	add("jku/x5u", "jku, fresh kid", evil(valid, map[string]any{"kid": "evil-jku", "jku": e.evilURL}))
	add("jku/x5u", "x5u to the attacker", evil(valid, map[string]any{"kid": "k1", "x5u": e.evilURL + "/cert.pem"}))
	add("jku/x5u", "x5c with the attacker's certificate chain", evil(valid, map[string]any{"kid": "k1", "x5c": []string{base64.StdEncoding.EncodeToString([]byte("not a real cert"))}}))
	add("wrong kid", "unknown kid, attacker key", evil(valid, map[string]any{"kid": "k2"}))
	add("wrong kid", "IdP kid, attacker key", evil(valid, map[string]any{"kid": "k1"}))
	add("wrong kid", "no kid, attacker key", evil(valid, map[string]any{}))
	add("wrong kid", "kid path traversal", evil(valid, map[string]any{"kid": "../../../../dev/null"}))
	add("wrong kid", "kid as a number", evil(valid, map[string]any{"kid": 1}))
	add("wrong kid", "IdP key, unknown kid", rs(valid, map[string]any{"kid": "k9"}))
	add("expired", "exp an hour ago", rs(with(valid, "exp", time.Now().Add(-time.Hour).Unix()), nil))
	add("expired", "exp a minute ago (beyond leeway)", rs(with(valid, "exp", time.Now().Add(-time.Minute).Unix()), nil))
	add("expired", "no exp", rs(with(valid, "exp", nil), nil))
	add("nbf in the future", "nbf in an hour", rs(with(valid, "nbf", time.Now().Add(time.Hour).Unix()), nil))
	add("nbf in the future", "iat and nbf in a day", rs(with(with(valid, "nbf", time.Now().Add(24*time.Hour).Unix()), "iat", time.Now().Add(24*time.Hour).Unix()), nil))
	add("wrong audience", "another audience", rs(with(valid, "aud", "someone-else"), nil))
	add("wrong audience", "no aud", rs(with(valid, "aud", nil), nil))
	add("wrong audience", "audience as a prefix", rs(with(valid, "aud", secAudience+"-x"), nil))
	add("wrong audience", "audience in azp only (match_azp off)", rs(with(with(valid, "aud", "x"), "azp", secAudience), nil))
	add("wrong issuer", "unknown issuer, IdP key", rs(with(valid, "iss", "https://evil.test"), nil))
	add("wrong issuer", "no iss, IdP key", rs(with(valid, "iss", nil), nil))
	add("wrong issuer", "issuer with a trailing slash", rs(with(valid, "iss", secIssuer+"/"), nil))
	add("wrong issuer", "unknown issuer, attacker key", evil(with(valid, "iss", "https://evil.test"), map[string]any{"kid": "k1"}))
	add("wrong issuer", "gatehouse's own issuer, attacker key", evil(with(valid, "iss", "gatehouse"), map[string]any{"kid": "k1"}))
	for _, a := range out {
		if a.tok == good {
			t.Fatalf("attack %s: %s is the valid token", a.class, a.name)
		}
		leaks.token("attack token "+a.class+": "+a.name, a.tok) // a token is never logged, forged or not
	}
	return out
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func flipLast(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// carrier sends tok the way one server or client would, for (action on) tok/cam, and reports
// whether gatehouse let it through.
type carrier struct {
	name string
	send func(t *testing.T, e *secEnv, tok string) (allowed bool, detail string)
}

// noRedirects reports a redirect as the answer: nginx-rtmp's 302 is a rename (an allow).
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, req *http.Request) (int, string, http.Header) {
	t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, url, ctype, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	status, b, _ := do(t, req)
	return status, b
}

func mediamtxAllowed(t *testing.T, e *secEnv, m map[string]any) (bool, string) {
	t.Helper()
	status, body := post(t, e.p.hooks+"/hooks/mediamtx", "application/json", jsonReq(m))
	return status == http.StatusOK, fmt.Sprintf("%d %s", status, strings.TrimSpace(body))
}

func nginxAllowed(t *testing.T, e *secEnv, form string) (bool, string) {
	t.Helper()
	status, body := post(t, e.p.hooks+"/hooks/nginx-rtmp", "application/x-www-form-urlencoded", form)
	return status < 400, fmt.Sprintf("%d %s", status, strings.TrimSpace(body))
}

// omeBody is an AdmissionWebhooks opening request for rawURL.
func omeBody(direction, protocol, rawURL string) []byte {
	return mustJSON(map[string]any{
		"client":  map[string]any{"address": "203.0.113.7", "port": 51234},
		"request": map[string]any{"direction": direction, "protocol": protocol, "status": "opening", "time": time.Now().UTC().Format("2006-01-02T15:04:05.000+00:00"), "url": rawURL},
	})
}

func omeAllowed(t *testing.T, e *secEnv, body []byte, sigs ...string) (bool, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.p.hooks+"/hooks/ome", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for _, s := range sigs {
		req.Header.Add(ome.SignatureHeader, s)
	}
	status, b, _ := do(t, req)
	var r struct {
		Allowed bool `json:"allowed"`
	}
	_ = json.Unmarshal([]byte(b), &r)
	return status == http.StatusOK && r.Allowed, fmt.Sprintf("%d %s", status, strings.TrimSpace(b))
}

func forwardAuth(t *testing.T, e *secEnv, uri string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.p.hooks+"/hooks/forward-auth", nil)
	req.Header.Set("X-Original-URI", uri)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

// whep posts an offer to the public listener; auth passed when the answer is neither 401 nor 403
// (the offer is not a real one, so it then fails later, with 400).
func whep(t *testing.T, e *secEnv, rawPath string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.p.public+"/whep/"+rawPath, strings.NewReader("v=0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	status, b, _ := do(t, req)
	return status, b
}

func tokenCarriers() []carrier {
	return []carrier{
		{"WHEP Authorization: Bearer", func(t *testing.T, e *secEnv, tok string) (bool, string) {
			status, b := whep(t, e, "tok/cam", "Authorization", "Bearer "+tok)
			return status != http.StatusUnauthorized && status != http.StatusForbidden, fmt.Sprintf("%d %s", status, strings.TrimSpace(b))
		}},
		{"MediaMTX token", func(t *testing.T, e *secEnv, tok string) (bool, string) {
			return mediamtxAllowed(t, e, map[string]any{"action": "read", "path": "tok/cam", "protocol": "rtsp", "ip": "203.0.113.9", "token": tok})
		}},
		{"MediaMTX password", func(t *testing.T, e *secEnv, tok string) (bool, string) {
			return mediamtxAllowed(t, e, map[string]any{"action": "read", "path": "tok/cam", "protocol": "rtsp", "ip": "203.0.113.9", "user": "jwt", "password": tok})
		}},
		{"nginx-rtmp ?token=", func(t *testing.T, e *secEnv, tok string) (bool, string) {
			return nginxAllowed(t, e, url.Values{"call": {"play"}, "app": {"tok"}, "name": {"cam"}, "addr": {"203.0.113.9"}, "clientid": {"1"}, "token": {tok}}.Encode())
		}},
		{"forward-auth Authorization: Bearer", func(t *testing.T, e *secEnv, tok string) (bool, string) {
			status, b, _ := forwardAuth(t, e, "/hls/tok/cam/index.m3u8", "Authorization", "Bearer "+tok)
			return status/100 == 2, fmt.Sprintf("%d %s", status, strings.TrimSpace(b))
		}},
		{"OME (signed) ?token=", func(t *testing.T, e *secEnv, tok string) (bool, string) {
			body := omeBody("incoming", "RTMP", "rtmp://live.example.com:1935/tok/cam?token="+url.QueryEscape(tok))
			return omeAllowed(t, e, body, ome.Sign([]byte(e.omeKey), body))
		}},
	}
}

// TestSecurityTokenAttacks sends every forged or out-of-policy token over every carrier; a valid
// token over the same carrier is the control that the carrier itself works.
func TestSecurityTokenAttacks(t *testing.T) {
	e := securityEnv(t)
	good := leaks.token("valid IdP token", signed(t, jwt.SigningMethodRS256, e.idp, map[string]any{"kid": "k1"}, secClaims(secIssuer)))
	goodHS := leaks.token("valid HS256 token", signed(t, jwt.SigningMethodHS256, []byte(e.hmac), map[string]any{"kid": "k1"}, secClaims(mixedIssuer)))
	attacks := e.tokenAttacks(t)
	tried := map[string]int{}
	for _, c := range tokenCarriers() {
		t.Run(c.name, func(t *testing.T) {
			for _, tok := range []string{good, goodHS} {
				if ok, detail := c.send(t, e, tok); !ok {
					t.Fatalf("control: a valid token was refused (%s); the carrier is broken, not the attacks denied", detail)
				}
			}
			for _, a := range attacks {
				tried[a.class]++
				if ok, detail := c.send(t, e, a.tok); ok {
					t.Errorf("%s: %s: ALLOWED (%s)", a.class, a.name, detail)
				}
			}
		})
	}
	if n := e.evilHits.Load(); n != 0 {
		t.Errorf("the attacker's key server (jku/x5u) was fetched %d times, want 0", n)
	}
	t.Logf("token attacks: %d variants x %d carriers, by class: %v", len(attacks), len(tokenCarriers()), tried)
}

// TestSecurityForgedOMESignatures: with a secret configured, OME's AdmissionWebhooks requests
// must carry HMAC-SHA1(secret, body). Every forgery is refused, even for a URL anyone may read.
func TestSecurityForgedOMESignatures(t *testing.T) {
	e := securityEnv(t)
	key := []byte(e.omeKey)
	// Publishing to live/alice with the stream key in the query: allowed when signed.
	keyURL := "rtmp://live.example.com:1935/live/alice?key=" + e.key
	body := omeBody("incoming", "RTMP", keyURL)
	if ok, detail := omeAllowed(t, e, body, ome.Sign(key, body)); !ok {
		t.Fatalf("control: a signed request was refused: %s", detail)
	}
	// A playback anyone may watch: allowed when signed, so refusing it unsigned proves the
	// signature is checked before anything is decided.
	anonBody := omeBody("outgoing", "LLHLS", "https://live.example.com:3334/exact/cam/llhls.m3u8")
	if ok, detail := omeAllowed(t, e, anonBody, ome.Sign(key, anonBody)); !ok {
		t.Fatalf("control: a signed anonymous playback was refused: %s", detail)
	}
	altered := bytes.Replace(body, []byte("live/alice"), []byte("live/bobby"), 1)
	alteredAnon := omeBody("incoming", "RTMP", "rtmp://live.example.com:1935/loop/x?key="+e.key)
	sig := ome.Sign(key, body)
	raw, _ := base64.RawURLEncoding.DecodeString(sig)
	cases := []struct {
		name string
		body []byte
		sigs []string
	}{
		{"no signature header", body, nil},
		{"empty signature", body, []string{""}},
		{"wrong secret", body, []string{ome.Sign([]byte("not-the-secret"), body)}},
		{"secret with a trailing newline", body, []string{ome.Sign(append(key, '\n'), body)}},
		{"empty secret", body, []string{ome.Sign(nil, body)}},
		{"replayed signature, url altered", altered, []string{sig}},
		{"replayed signature, key moved to another path", alteredAnon, []string{sig}},
		{"replayed signature, body with trailing space", append(append([]byte{}, body...), ' '), []string{sig}},
		{"signature of the body's url only", body, []string{ome.Sign(key, []byte(keyURL))}},
		{"hex instead of base64url", body, []string{hex.EncodeToString(raw)}},
		{"standard base64", altered, []string{base64.StdEncoding.EncodeToString(raw)}},
		{"truncated signature", body, []string{sig[:len(sig)-4]}},
		{"wrong signature first, right second", altered, []string{ome.Sign([]byte("x-secret-x"), altered), ome.Sign(key, altered)}},
		{"HMAC-SHA256 instead of SHA1", body, []string{sha256Sig(key, body)}},
		{"unsigned playback of a stream anyone may watch", anonBody, nil},
		{"anonymous playback signed with the wrong secret", anonBody, []string{ome.Sign([]byte("not-the-secret"), anonBody)}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if ok, detail := omeAllowed(t, e, tt.body, tt.sigs...); ok {
				t.Errorf("ALLOWED: %s", detail)
			}
		})
	}
	t.Logf("OME forgeries: %d variants", len(cases))
}

func sha256Sig(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestSecurityNginxRTMPInjection: a client controls its stream name and the query after it,
// which nginx-rtmp appends to the hook's form: every parameter the server writes can be repeated
// or smuggled. Each injection is refused; none decides another path, action or address.
func TestSecurityNginxRTMPInjection(t *testing.T) {
	e := securityEnv(t)
	tok := leaks.token("valid IdP token", signed(t, jwt.SigningMethodRS256, e.idp, map[string]any{"kid": "k1"}, secClaims(secIssuer)))
	readTok := leaks.token("read-only IdP token", signed(t, jwt.SigningMethodRS256, e.idp, map[string]any{"kid": "k1"},
		with(secClaims(secIssuer), "mediamtx_permissions", []map[string]string{{"action": "read", "path": "tok/cam"}})))
	q := url.QueryEscape
	base := "addr=203.0.113.9&clientid=7&flashver=LNX&tcurl=rtmp%3A%2F%2Fh%2Flive&"
	controls := []string{
		base + "call=play&app=exact&name=cam",
		base + "call=publish&app=live&name=x&user=pub&pass=" + q(e.pubPass),
		base + "call=publish&app=live&name=" + q(e.key),
		base + "call=play&app=tok&name=cam&token=" + q(readTok),
		"call=publish&app=loop&name=x&addr=127.0.0.1&clientid=8",
	}
	for i, c := range controls {
		if ok, detail := nginxAllowed(t, e, c); !ok {
			t.Fatalf("control %d refused: %s", i, detail)
		}
	}
	long := strings.Repeat("a", 300)
	cases := []struct{ name, form string }{
		{"duplicate name (play a secret stream, decide on a public one)", base + "call=play&app=secret&name=cam&name=cam&app=exact"},
		{"duplicate name, public first", base + "call=play&app=exact&name=cam&name=secret"},
		{"duplicate app", base + "call=play&app=secret&name=cam&app=exact"},
		{"duplicate call: publish smuggled as play", base + "call=publish&app=exact&name=cam&call=play"},
		{"duplicate call: play first", base + "call=play&app=exact&name=cam&call=publish"},
		{"call publish, client adds CALL=play", base + "call=publish&app=exact&name=cam&CALL=play"},
		{"read-only token used to publish", base + "call=publish&app=tok&name=cam&token=" + q(readTok)},
		{"read token for the publish hook via update_publish", base + "call=update_publish&app=tok&name=cam&token=" + q(readTok)},
		{"anonymous read grant used for update_publish", base + "call=update_publish&app=exact&name=cam"},
		{"duplicate token", base + "call=play&app=tok&name=cam&token=" + q(tok) + "&token=" + q(tok)},
		{"duplicate user", base + "call=publish&app=live&name=x&user=pub&pass=" + q(e.pubPass) + "&user=admin"},
		{"duplicate pass", base + "call=publish&app=live&name=x&user=pub&pass=wrong&pass=" + q(e.pubPass)},
		{"duplicate key", base + "call=publish&app=live&name=x&key=" + q(e.key) + "&key=" + q(e.key)},
		{"& inside the name value", base + "call=play&app=secret&name=" + q("cam&app=exact&name=cam")},
		{"& inside the app value", base + "call=play&app=" + q("exact&name=cam") + "&name=x"},
		{"= and & encoded in a value", base + "call=publish&app=exact&name=" + q("cam&call=play")},
		{"encoded ampersand in the key name", base + "call=play&app=secret&name=cam&" + q("name") + "=cam"},
		{"addr injected as loopback after the real one", "addr=203.0.113.9&clientid=9&call=publish&app=loop&name=x&addr=127.0.0.1"},
		{"addr injected as loopback before the real one", "addr=127.0.0.1&clientid=9&call=publish&app=loop&name=x&addr=203.0.113.9"},
		{"addr with a list", "clientid=9&call=publish&app=loop&name=x&addr=" + q("127.0.0.1, 203.0.113.9")},
		{"addr with a port", "clientid=9&call=publish&app=loop&name=x&addr=" + q("127.0.0.1:1935x")},
		{"addr missing (no loopback default)", "clientid=9&call=publish&app=loop&name=x"},
		{"addr as a host name", "clientid=9&call=publish&app=loop&name=x&addr=localhost"},
		{"duplicate tcurl", base + "call=play&app=exact&name=cam&tcurl=" + q("rtmp://127.0.0.1/exact")},
		{"tcurl carrying a token for a private path", "addr=203.0.113.9&clientid=9&call=play&app=secret&name=cam&tcurl=" + q("rtmp://h/tok?token="+tok)},
		{"swfurl/pageurl duplicated", base + "call=play&app=exact&name=cam&pageurl=a&pageurl=b"},
		{"name over nginx-rtmp's 255 bytes", base + "call=play&app=exact&name=" + long},
		{"app over 255 bytes", base + "call=play&app=" + long + "&name=cam"},
		{"oversized args (1 MiB)", base + "call=play&app=secret&name=cam&x=" + strings.Repeat("b", 1<<20)},
		{"many parameters under the body limit", base + "call=play&app=secret&name=cam&" + strings.Repeat("z=1&", 12000)},
		{"invalid percent-encoding", base + "call=play&app=exact&name=cam%zz"},
		{"no call", base + "app=exact&name=cam"},
		{"unknown call", base + "call=playx&app=exact&name=cam"},
		{"NUL in the name", base + "call=play&app=exact&name=cam%00"},
		{"semicolon separator", base + "call=play&app=secret&name=cam;app=exact;name=cam"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if ok, detail := nginxAllowed(t, e, tt.form); ok {
				t.Errorf("ALLOWED: %s", detail)
			}
		})
	}
	// The same over GET (nginx-rtmp's on_* with method get puts the form in the query).
	for _, tt := range cases[:10] {
		status, _, _ := do(t, mustReq(t, http.MethodGet, e.p.hooks+"/hooks/nginx-rtmp?"+tt.form))
		if status < 400 {
			t.Errorf("GET %s: ALLOWED (%d)", tt.name, status)
		}
	}
	t.Logf("nginx-rtmp injections: %d variants over POST, 10 over GET", len(cases))
}

func mustReq(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// granted is what the suite's rule author meant by the anonymous read rules (exact/cam, glob/*,
// deep/**, ~^rx/[a-z]+$, uni/café), written independently of the engine's matcher: a concrete
// path (no empty, "." or ".." segment, no control character, at most 256 bytes) that is exactly
// exact/cam or uni/café (NFC, byte for byte), one segment under glob/, any depth under deep/, or
// rx/ and lowercase ASCII letters.
func granted(p string) bool {
	if len(p) > 256 || !regexp.MustCompile(`^[^\x00-\x1f\x7f]*$`).MatchString(p) {
		return false
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	switch {
	case p == "exact/cam", p == "uni/caf\u00e9":
		return true
	case segs[0] == "glob":
		return len(segs) == 2
	case segs[0] == "deep":
		return len(segs) >= 2
	}
	return regexp.MustCompile(`^rx/[a-z]+$`).MatchString(p)
}

// uriEscape percent-encodes what cannot stand in a request target (controls, space, non-ASCII,
// '?', '#') and leaves everything else, '%' included, as the attacker wrote it.
func uriEscape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= 0x20 || c >= 0x7f || c == '?' || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pathCarrier sends an anonymous read of the raw path p and reports whether it was allowed and
// which stream path an allowed request reaches (what the server then serves).
type pathCarrier struct {
	name  string
	ascii bool // refuses every non-ASCII path by design (the SFU), so uni/café is no control
	send  func(t *testing.T, e *secEnv, p string) (allowed bool, reached, detail string)
}

func pathCarriers() []pathCarrier {
	return []pathCarrier{
		{"MediaMTX", false, func(t *testing.T, e *secEnv, p string) (bool, string, string) {
			var reached string // what gatehouse received: JSON cannot carry invalid UTF-8
			_ = json.Unmarshal(mustJSON(p), &reached)
			ok, detail := mediamtxAllowed(t, e, map[string]any{"action": "read", "path": p, "protocol": "rtsp", "ip": "203.0.113.9"})
			return ok, reached, detail
		}},
		{"nginx-rtmp", false, func(t *testing.T, e *secEnv, p string) (bool, string, string) {
			app, name, _ := strings.Cut(p, "/")
			ok, detail := nginxAllowed(t, e, url.Values{"call": {"play"}, "app": {app}, "name": {name}, "addr": {"203.0.113.9"}, "clientid": {"3"}}.Encode())
			return ok, strings.Trim(app, "/") + "/" + strings.Trim(name, "/"), detail
		}},
		{"forward-auth", false, func(t *testing.T, e *secEnv, p string) (bool, string, string) {
			status, b, h := forwardAuth(t, e, "/hls/"+uriEscape(p)+"/index.m3u8")
			return status/100 == 2, h.Get("X-Auth-Stream"), fmt.Sprintf("%d %s", status, strings.TrimSpace(b))
		}},
		{"WHEP", true, func(t *testing.T, e *secEnv, p string) (bool, string, string) {
			u, err := url.Parse("/whep/" + uriEscape(p))
			if err != nil {
				return false, "", "unparsable URL"
			}
			status, b := whep(t, e, uriEscape(p))
			// Auth passed only if the answer is the offer's own 400 (the SDP is a stub); 401/403
			// are denials, 3xx/404 never reached the handler, and "invalid stream path" is a refusal.
			ok := status == http.StatusBadRequest && !strings.Contains(b, "invalid stream path") && !strings.Contains(b, "credential")
			return ok, strings.Trim(strings.TrimPrefix(u.Path, "/whep/"), "/"), fmt.Sprintf("%d %s", status, strings.TrimSpace(b))
		}},
	}
}

func pathTricks() []string {
	long := strings.Repeat("a", 300)
	return []string{
		// dot segments and their encodings
		"exact/cam/..", "exact/cam/../../secret/cam", "exact/../secret/cam", "exact/./cam", "exact/cam/.",
		"exact/%2e%2e/secret", "exact/%2E%2E/secret", "exact/cam/%2e%2e/%2e%2e/secret", "exact/.%2e/secret",
		"glob/a/../../secret/x", "glob/..", "glob/.", "glob/%2e%2e", "glob/%2e%2e/secret",
		"deep/a/../../secret", "deep/..", "deep/a/%2e%2e/%2e%2e/secret", "deep/a/./b",
		"rx/abc/../x", "rx/abc/..", "rx/%2e%2e",
		// encoded slashes
		"exact%2Fcam", "exact%2fcam", "glob/a%2Fb", "glob/a%2fb", "glob/a%2F..%2F..%2Fsecret", "rx/abc%2Fdef", "deep%2Fa",
		"glob/a%252Fb", "exact/cam%2F", "glob/a%5Cb", "glob/a\\b", "exact\\cam",
		// double and trailing slashes
		"exact//cam", "/exact/cam", "exact/cam/", "//exact/cam", "glob//a", "glob/a/", "glob/a//", "deep//a", "rx//abc", "rx/abc/",
		// case
		"EXACT/CAM", "Exact/cam", "exact/CAM", "GLOB/a", "Deep/a", "RX/abc", "rx/ABC", "rx/Abc", "UNI/café",
		// Unicode
		"exact\uff0fcam", "glob/a\uff0fb", "glob/a\u2215b", "glob/a\u2044b", "exact/cam\u200d", "exact/c\u200dam", "exact/\u200bcam",
		"exact/c\u0430m", "exact/\u0441am", "rx/\u0430bc", "rx/abc\u200d", "rx/caf\u00e9", "rx/cafe\u0301",
		"uni/cafe\u0301", "uni/CAF\u00c9", "uni/caf\u00e9\u200d", "uni/caf\uff45", "exact/cam\ufeff", "\ufeffexact/cam",
		"exact/cam\u0000", "glob/a\xffb", "exact/cam\xc0\xae",
		// NUL and controls
		"exact/cam\x00", "exact/cam\x00/../../secret", "exact/cam%00", "glob/a\x00b", "rx/abc\n", "rx/abc\nsecret", "glob/a\rb", "glob/a\tb", "rx/abc\x7f",
		// regex edges: the rule is anchored, so neither a prefix nor a suffix widens it
		"rx/abc/def", "rx/abc1", "xrx/abc", "rx/", "rx", "glob", "deep", "glob/",
		// over-long
		"glob/" + long, "deep/" + strings.Repeat("a/", 200) + "x", "rx/" + long, strings.Repeat("exact/", 50) + "cam",
		// controls that must be allowed (they prove each carrier reaches the rules at all)
		"exact/cam", "glob/a", "glob/a.b", "deep/a/b/c", "rx/abc", "uni/caf\u00e9",
	}
}

// TestSecurityPathTricks sends every path trick as an anonymous read over every carrier. An
// allowed request must reach a stream the rules grant (granted, the author's meaning), never
// another; the plain paths at the end of the list are controls that must be allowed.
func TestSecurityPathTricks(t *testing.T) {
	e := securityEnv(t)
	controls := map[string]bool{"exact/cam": true, "glob/a": true, "glob/a.b": true, "deep/a/b/c": true, "rx/abc": true, "uni/caf\u00e9": true}
	tricks := pathTricks()
	for _, c := range pathCarriers() {
		t.Run(c.name, func(t *testing.T) {
			allowed, denied := 0, 0
			var into []string
			for _, p := range tricks {
				ok, reached, detail := c.send(t, e, p)
				switch {
				case controls[p] && !ok && !(c.ascii && p == "uni/caf\u00e9"):
					t.Errorf("control %q: refused (%s)", p, detail)
				case ok && !granted(reached):
					t.Errorf("%q: ALLOWED into %q, which no rule grants (%s)", p, reached, detail)
				case ok:
					allowed++
					if !controls[p] {
						into = append(into, fmt.Sprintf("%q->%q", p, reached))
					}
				default:
					denied++
				}
			}
			t.Logf("%s: %d paths, %d denied, %d allowed into a granted stream; tricks allowed: %s", c.name, len(tricks), denied, allowed, strings.Join(into, " "))
		})
	}
}

// TestSecurityOversizedInputs: every listener bounds what it reads, and says why it refused.
func TestSecurityOversizedInputs(t *testing.T) {
	e := securityEnv(t)
	big := strings.Repeat("x", 70<<10)  // over every 64 KiB body limit
	huge := strings.Repeat("u", 80<<10) // over MaxHeaderBytes (64 KiB) + net/http's 4 KiB slack
	type check struct {
		name   string
		req    func() *http.Request
		want   []int
		reason string // a substring the answer must carry, when the protocol has a body
	}
	postTo := func(u, ctype, body string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			return req
		}
	}
	chunked := func(u, ctype string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, u, io.MultiReader(strings.NewReader(big), strings.NewReader(big)))
			req.Header.Set("Content-Type", ctype)
			req.ContentLength = -1 // chunked: no Content-Length to refuse up front
			return req
		}
	}
	withHeader := func(u, k, v string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set(k, v)
			return req
		}
	}
	mtxBody := `{"action":"read","path":"exact/cam","protocol":"rtsp","query":"` + big + `"}`
	largeHeader := strings.Repeat("h", 80<<10) // MaxHeaderBytes (64 KiB) + net/http's 4 KiB slack
	checks := []check{
		{"MediaMTX body", postTo(e.p.hooks+"/hooks/mediamtx", "application/json", mtxBody), []int{413}, "exceeds"},
		{"MediaMTX chunked body", chunked(e.p.hooks+"/hooks/mediamtx", "application/json"), []int{413}, "exceeds"},
		{"nginx-rtmp body", postTo(e.p.hooks+"/hooks/nginx-rtmp", "application/x-www-form-urlencoded", "call=play&app=exact&name=cam&x="+big), []int{413}, "exceeds"},
		{"nginx-rtmp chunked body", chunked(e.p.hooks+"/hooks/nginx-rtmp", "application/x-www-form-urlencoded"), []int{413}, "exceeds"},
		{"nginx-rtmp GET query", func() *http.Request {
			return mustReq(t, http.MethodGet, e.p.hooks+"/hooks/nginx-rtmp?call=play&app=exact&name=cam&x="+strings.Repeat("q", 66000))
		}, []int{413, 414, 431}, ""},
		{"OME body", postTo(e.p.hooks+"/hooks/ome", "application/json", `{"request":{"url":"`+big+`"}}`), []int{413}, "exceeds"},
		{"SRS body", postTo(e.p.hooks+"/hooks/srs", "application/json", `{"action":"on_play","param":"`+big+`"}`), []int{413}, "exceeds"},
		{"forward-auth: huge Authorization", withHeader(e.p.hooks+"/hooks/forward-auth", "Authorization", "Bearer eyJ"+strings.Repeat("A", 40<<10)), []int{400, 401, 403}, ""},
		{"forward-auth: huge X-Original-URI", withHeader(e.p.hooks+"/hooks/forward-auth", "X-Original-URI", "/hls/exact/cam/"+strings.Repeat("a", 40<<10)+"/index.m3u8"), []int{400, 401, 403}, ""},
		{"forward-auth: huge cookie", withHeader(e.p.hooks+"/hooks/forward-auth", "Cookie", "gatehouse_media=v2."+strings.Repeat("A", 40<<10)), []int{400, 401, 403}, ""},
		{"hooks: headers over 64 KiB", withHeader(e.p.hooks+"/hooks/mediamtx", "X-Filler", largeHeader), []int{431}, ""},
		{"public: headers over 64 KiB", withHeader(e.p.public+"/healthz", "X-Filler", largeHeader), []int{431}, ""},
		{"hooks: URL over 64 KiB", func() *http.Request { return mustReq(t, http.MethodGet, e.p.hooks+"/hooks/forward-auth/"+huge) }, []int{414, 431}, ""},
		{"public: URL over 64 KiB", func() *http.Request { return mustReq(t, http.MethodGet, e.p.public+"/watch/"+huge) }, []int{414, 431}, ""},
		{"WHIP SDP body", postTo(e.p.public+"/whip/live/x", "application/sdp", "v=0\r\n"+big), []int{413}, "exceeds"},
		{"WHEP SDP body", postTo(e.p.public+"/whep/exact/cam", "application/sdp", "v=0\r\n"+big), []int{413}, "exceeds"},
		{"WHEP chunked SDP body", chunked(e.p.public+"/whep/exact/cam", "application/sdp"), []int{413}, "exceeds"},
		{"WHEP over-long stream path", postTo(e.p.public+"/whep/"+strings.Repeat("a/", 300)+"x", "application/sdp", "v=0\r\n"), []int{400, 401, 403}, ""},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			req := c.req()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				// The server may answer and close before the client has sent everything.
				if !errors.Is(err, io.EOF) && !isConnReset(err) {
					t.Fatalf("request: %v", err)
				}
				t.Logf("connection closed while sending: %v", err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if !containsInt(c.want, resp.StatusCode) {
				t.Errorf("got %d %q, want one of %v", resp.StatusCode, b, c.want)
			}
			if c.reason != "" && !strings.Contains(string(b), c.reason) {
				t.Errorf("answer %q lacks the reason %q", b, c.reason)
			}
		})
	}
	t.Logf("oversized inputs: %d variants", len(checks))
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func isConnReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// TestSecurityCookieForgery: the forward-auth segment cookie is HMAC-signed and bound to one
// path; a forged, altered or moved cookie grants nothing.
func TestSecurityCookieForgery(t *testing.T) {
	e := securityEnv(t)
	tok := leaks.token("valid IdP token", signed(t, jwt.SigningMethodRS256, e.idp, map[string]any{"kid": "k1"}, secClaims(secIssuer)))
	status, _, h := forwardAuth(t, e, "/hls/tok/cam/index.m3u8", "Authorization", "Bearer "+tok)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "gatehouse_media" {
			cookie = c
		}
	}
	if status/100 != 2 || cookie == nil {
		t.Fatalf("control: got %d and cookie %v, want 2xx and a cookie", status, cookie != nil)
	}
	leaks.secret("forward-auth cookie", cookie.Value)
	if status, _, _ := forwardAuth(t, e, "/hls/tok/cam/seg1.ts", "Cookie", "gatehouse_media="+cookie.Value); status/100 != 2 {
		t.Fatalf("control: the cookie alone was refused for its own stream (%d)", status)
	}
	parts := strings.Split(cookie.Value, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	moved := base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"tok/cam"`), []byte(`"tok/cam2"`), 1))
	forgedMAC := func(key, p string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte("gatehouse/forwardauth/cookie/v2\x00"))
		m.Write([]byte(p))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	cases := []struct{ name, uri, value string }{
		{"cookie for another stream", "/hls/tok/other/index.m3u8", cookie.Value},
		{"path in the payload changed, MAC kept", "/hls/tok/cam2/index.m3u8", parts[0] + "." + moved + "." + parts[2]},
		{"path changed, MAC with a guessed key", "/hls/tok/cam2/index.m3u8", parts[0] + "." + moved + "." + forgedMAC("secret", moved)},
		{"no MAC", "/hls/tok/cam2/index.m3u8", parts[0] + "." + moved},
		{"v1 prefix", "/hls/tok/cam2/index.m3u8", "v1." + moved + "." + parts[2]},
		{"a JWT as the cookie", "/hls/tok/cam/index.m3u8", tok},
		{"cookie for a path prefix", "/hls/tok/cam/x/index.m3u8", cookie.Value},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if status, b, _ := forwardAuth(t, e, c.uri, "Cookie", "gatehouse_media="+c.value); status/100 == 2 {
				t.Errorf("ALLOWED (%d %s)", status, b)
			}
		})
	}
	t.Logf("cookie forgeries: %d variants", len(cases))
}

// slowClient opens a connection to addr, sends head, then one byte of drip every interval
// until the server closes the connection; it returns how long the server took to close.
func slowClient(t *testing.T, addr, head, drip string, bound time.Duration) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned here; ends when the server closes or the test gives up
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := io.WriteString(conn, drip[i%len(drip):i%len(drip)+1]); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	_ = conn.SetReadDeadline(start.Add(bound))
	_, err = io.Copy(io.Discard, bufio.NewReader(conn))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v", bound)
	}
	return time.Since(start)
}

// TestSecuritySlowClients: a client that sends its headers or its body a byte at a time is
// disconnected by the server after its header or read timeout, on both listeners. The bound is 3x
// the timeout (public: 5 s headers, 15 s request; hooks: 10 s and 30 s; serve.go), generous for a
// loaded machine; the four run in parallel.
func TestSecuritySlowClients(t *testing.T) {
	e := securityEnv(t)
	cases := []struct {
		name, addr, head, drip string
		timeout                time.Duration
	}{
		{"public: slow headers", e.p.public, "GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 5 * time.Second},
		{"hooks: slow headers", e.p.hooks, "GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 10 * time.Second},
		{"public: slow WHEP body", e.p.public, "POST /whep/exact/cam HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 10000\r\n\r\n", "v=0\r\n", 15 * time.Second},
		{"hooks: slow MediaMTX body", e.p.hooks, "POST /hooks/mediamtx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n", `{"action":"read"` + strings.Repeat(" ", 40), 30 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			took := slowClient(t, c.addr, c.head, c.drip, 3*c.timeout)
			if took < c.timeout/2 { // not a timing test: a close this early means something else refused it
				t.Errorf("closed after %v, long before the %v timeout: not the timeout under test", took, c.timeout)
			}
			t.Logf("closed by the server after %v (timeout %v)", took.Round(100*time.Millisecond), c.timeout)
		})
	}
}
