package jwks

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"gatehouse/authz/logtest"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
)

func TestKeyTypes(t *testing.T) {
	clk := newClock()
	keys := []testKey{rsaKey("rsa"), rsaKey("rsa-pss").as("PS256"), ecKey("ec"), edKey("ed")}
	srv := newJWKSServer(t, jwksDoc(t, keys...))
	b := newTestBackend(t, Config{Providers: []Provider{testProvider(srv.URL)}}, WithClock(clk.Now))
	for _, k := range keys {
		t.Run(k.alg, func(t *testing.T) {
			tok := k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))
			d, err := authorize(t, b, publishReq("cam1", tok))
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != authz.Allow {
				t.Fatalf("got %v (%s), want allow", d.Outcome, d.Reason)
			}
			if got, want := d.Identity, "somebody"; got != want {
				t.Errorf("identity: got %q, want %q", got, want)
			}
			if got, want := d.Expires, clk.Now().Add(time.Hour).Truncate(time.Second); !got.Equal(want) {
				t.Errorf("expires: got %v, want %v", got, want)
			}
			d, _ = authorize(t, b, publishReq("cam2", tok))
			if got, want := d.Reason, authz.ReasonNotPermitted; d.Outcome != authz.Forbidden || got != want {
				t.Errorf("other path: got %v %q, want forbidden %q", d.Outcome, got, want)
			}
		})
	}
	t.Run("no kid tries every key of the alg", func(t *testing.T) {
		k := ecKey("")
		d, _ := authorize(t, b, publishReq("cam1", k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
		if d.Outcome != authz.Allow {
			t.Fatalf("got %v (%s), want allow", d.Outcome, d.Reason)
		}
	})
}

func TestPermissionsClaim(t *testing.T) {
	clk := newClock()
	k := edKey("ed")
	srv := newJWKSServer(t, jwksDoc(t, k))
	b := newTestBackend(t, Config{Providers: []Provider{testProvider(srv.URL)}}, WithClock(clk.Now))
	arr := `[{"action":"publish","path":"cam1"},{"action":"read"}]`
	for _, tc := range []struct {
		name   string
		claim  any // nil: absent
		want   authz.Outcome
		reason string
	}{
		{"array", json.RawMessage(arr), authz.Allow, authz.ReasonAllowed},
		{"json string (Keycloak mapper)", arr, authz.Allow, authz.ReasonAllowed},
		{"regex path", `[{"action":"publish","path":"~^cam"}]`, authz.Allow, authz.ReasonAllowed},
		{"glob path", `[{"action":"publish","path":"c*"}]`, authz.Allow, authz.ReasonAllowed},
		{"empty path is any", `[{"action":"publish"}]`, authz.Allow, authz.ReasonAllowed},
		{"absent", nil, authz.Forbidden, authz.ReasonNotPermitted},
		{"null", json.RawMessage(`null`), authz.Forbidden, authz.ReasonNotPermitted},
		{"other path", `[{"action":"publish","path":"cam2"}]`, authz.Forbidden, authz.ReasonNotPermitted},
		{"unknown key paths", `[{"action":"publish","paths":"all"}]`, authz.Unauthenticated, ReasonBadPermissions},
		{"case-different key", `[{"Action":"publish"}]`, authz.Unauthenticated, ReasonBadPermissions},
		{"unknown action", `[{"action":"write","path":"cam1"}]`, authz.Unauthenticated, ReasonBadPermissions},
		{"missing action", `[{"path":"cam1"}]`, authz.Unauthenticated, ReasonBadPermissions},
		{"object not array", json.RawMessage(`{"action":"publish"}`), authz.Unauthenticated, ReasonBadPermissions},
		{"number path", json.RawMessage(`[{"action":"publish","path":1}]`), authz.Unauthenticated, ReasonBadPermissions},
		{"invalid regex", `[{"action":"publish","path":"~("}]`, authz.Unauthenticated, ReasonBadPermissions},
		{"string not json", `publish:cam1`, authz.Unauthenticated, ReasonBadPermissions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claimsAt(clk.Now(), nil)
			if tc.claim != nil {
				c["mediamtx_permissions"] = tc.claim
			}
			d, err := authorize(t, b, publishReq("cam1", k.sign(t, c)))
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.want || d.Reason != tc.reason {
				t.Errorf("got %v %q, want %v %q", d.Outcome, d.Reason, tc.want, tc.reason)
			}
		})
	}
}

func TestAttacks(t *testing.T) {
	clk := newClock()
	k := rsaKey("rsa")
	ec := ecKey("ec")
	srv := newJWKSServer(t, jwksDoc(t, k, ec))
	p := testProvider(srv.URL)
	p.UnknownKIDRefresh = 0
	b := newTestBackend(t, Config{Providers: []Provider{p}}, WithClock(clk.Now))
	now := clk.Now()
	good := func() jwt.MapClaims { return claimsAt(now, publishPerm("cam1")) }
	with := func(key string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	valid := k.sign(t, good())
	parts := strings.Split(valid, ".")
	pubPEM := func() []byte { // the classic confusion: the RSA public key file used as an HMAC secret
		der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	hsWithPub := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, good())
		tok.Header["kid"] = "rsa"
		s, err := tok.SignedString(pubPEM)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	noneTok := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, good())
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	tamperedPayload := func() string {
		c := good()
		c["mediamtx_permissions"] = []map[string]string{{"action": "publish"}}
		pb, _ := json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(pb) + "." + parts[2]
	}()
	big := parts[0] + "." + strings.Repeat("A", 50<<10) + "." + parts[2]
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"expired", k.sign(t, with("exp", now.Add(-time.Minute).Unix())), ReasonTokenExpired},
		{"expired within leeway is fine", k.sign(t, with("exp", now.Add(-5*time.Second).Unix())), ""},
		{"not yet valid", k.sign(t, with("nbf", now.Add(time.Minute).Unix())), ReasonTokenNotYetValid},
		{"no exp", k.sign(t, with("exp", nil)), ReasonMissingExp},
		{"wrong issuer", k.sign(t, with("iss", "evil")), ReasonBadIssuer},
		{"no issuer", k.sign(t, with("iss", nil)), ReasonBadIssuer},
		{"wrong audience", k.sign(t, with("aud", "other")), ReasonBadAudience},
		{"audience array", k.sign(t, with("aud", []string{"other", "gatehouse"})), ""},
		{"unknown key", rsaKey2("nope").sign(t, good()), ReasonUnknownKey},
		{"known kid, other key", rsaKey2("rsa").sign(t, good()), ReasonBadSignature},
		{"tampered payload", tamperedPayload, ReasonBadSignature},
		{"alg none", noneTok, ReasonAlgNotAllowed},
		{"HS256 signed with the RSA public key", hsWithPub, ReasonAlgNotAllowed},
		{"RS256 header on the EC key's kid", rsaKey("ec").sign(t, good()), ReasonAlgNotAllowed},
		{"alg not pinned (ES512)", seg(`{"alg":"ES512","kid":"ec"}`) + "." + parts[1] + "." + parts[2], ReasonAlgNotAllowed},
		{"unknown alg", seg(`{"alg":"XX999","kid":"rsa"}`) + "." + parts[1] + "." + parts[2], ReasonAlgNotAllowed},
		{"lower-case none", seg(`{"alg":"nOnE"}`) + "." + parts[1] + ".", ReasonAlgNotAllowed},
		{"signature stripped", parts[0] + "." + parts[1] + ".", ReasonBadSignature},
		{"50 KB token", big, ReasonTokenTooLarge},
		{"two segments", parts[0] + "." + parts[1], ReasonMalformedToken},
		{"garbage header", "eyJnotbase64!." + parts[1] + "." + parts[2], ReasonMalformedToken},
		{"non-string kid", seg(`{"alg":"RS256","kid":7}`) + "." + parts[1] + "." + parts[2], ReasonMalformedToken},
		{"no alg", seg(`{"kid":"rsa"}`) + "." + parts[1] + "." + parts[2], ReasonMalformedToken},
		{"payload not JSON", parts[0] + "." + seg(`[1,2`) + "." + parts[2], ReasonMalformedToken},
		{"bad exp type", k.sign(t, with("exp", "tomorrow")), ReasonMalformedToken},
		// golang-jwt reads a string holding digits as a NumericDate; RFC 7519 says number.
		{"exp as numeric string", k.sign(t, with("exp", fmt.Sprint(now.Add(time.Hour).Unix()))), ReasonMalformedToken},
		{"iat as numeric string", k.sign(t, with("iat", fmt.Sprint(now.Unix()))), ReasonMalformedToken},
		{"nbf as numeric string", k.sign(t, with("nbf", fmt.Sprint(now.Unix()))), ReasonMalformedToken},
		{"exp null", k.sign(t, with("exp", json.RawMessage("null"))), ReasonMalformedToken},
		{"iat a year ahead", k.sign(t, with("iat", now.AddDate(1, 0, 0).Unix())), ReasonTokenNotYetValid},
		{"iat ahead within leeway is fine", k.sign(t, with("iat", now.Add(5*time.Second).Unix())), ""},
		{"fractional exp is a number", k.sign(t, with("exp", float64(now.Add(time.Hour).Unix())+0.5)), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := authorize(t, b, publishReq("cam1", tc.token))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				if d.Outcome != authz.Allow {
					t.Fatalf("got %v %q, want allow", d.Outcome, d.Reason)
				}
				return
			}
			if d.Outcome != authz.Unauthenticated || d.Reason != tc.reason {
				t.Fatalf("got %v %q, want unauthenticated %q", d.Outcome, d.Reason, tc.reason)
			}
			if d.Message == "" || strings.Contains(d.Message, tc.token[:20]) {
				t.Errorf("message %q: want a sentence without the token", d.Message)
			}
		})
	}
}

func TestRotationUnknownKIDRefresh(t *testing.T) {
	clk := newClock()
	old, next := rsaKey("k1"), ecKey("k2")
	srv := newJWKSServer(t, jwksDoc(t, old))
	p := testProvider(srv.URL)
	p.UnknownKIDRefresh = 30 * 1e9
	b := newTestBackend(t, Config{Providers: []Provider{p}}, WithClock(clk.Now))
	if got, want := srv.hits.Load(), int64(1); got != want {
		t.Fatalf("hits after start: got %d, want %d", got, want)
	}
	srv.set(jwksDoc(t, old, next)) // the IdP rotates
	tok := next.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))

	// Many concurrent requests with the new kid share one refresh.
	var wg sync.WaitGroup
	decisions := make([]authz.Decision, 20)
	for i := range decisions {
		wg.Go(func() { decisions[i], _ = authorize(t, b, publishReq("cam1", tok)) })
	}
	wg.Wait()
	for i, d := range decisions {
		if d.Outcome != authz.Allow {
			t.Fatalf("request %d: got %v %q, want allow", i, d.Outcome, d.Reason)
		}
	}
	if got, want := srv.hits.Load(), int64(2); got != want {
		t.Fatalf("hits after rotation: got %d, want %d", got, want)
	}

	// Random kids cannot make us hammer the IdP: at most one refresh per interval.
	for i := range 50 {
		d, _ := authorize(t, b, publishReq("cam1", rsaKey(fmt.Sprint("random-", i)).sign(t, claimsAt(clk.Now(), nil))))
		if d.Reason != ReasonUnknownKey {
			t.Fatalf("random kid: got %q, want %q", d.Reason, ReasonUnknownKey)
		}
	}
	if got, want := srv.hits.Load(), int64(2); got != want {
		t.Fatalf("hits after 50 unknown kids: got %d, want %d", got, want)
	}
	clk.Advance(31 * time.Second)
	d, _ := authorize(t, b, publishReq("cam1", rsaKey("random-again").sign(t, claimsAt(clk.Now(), nil))))
	if d.Reason != ReasonUnknownKey {
		t.Fatalf("got %q, want %q", d.Reason, ReasonUnknownKey)
	}
	if got, want := srv.hits.Load(), int64(3); got != want {
		t.Fatalf("hits after the interval: got %d, want %d", got, want)
	}
}

func TestIgnoredKeysInSet(t *testing.T) {
	clk := newClock()
	k := edKey("good")
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	doc.Keys = []json.RawMessage{
		json.RawMessage(`{"kty":"RSA","use":"enc","kid":"enc-key","n":"0vx7","e":"AQAB"}`),
		rsaKey("enc-rsa").as("RS256").jwkUse(t, "enc"),
		json.RawMessage(`{"kty":"FOO","kid":"weird","x":"abc"}`),
		json.RawMessage(`{"kty":"OKP","crv":"X25519","kid":"x25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`),
		json.RawMessage(`{"kty":"oct","kid":"sym","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`),
		json.RawMessage(`{"kty":"EC","crv":"P-256","kid":"bad-point","x":"AAAA","y":"AAAA"}`),
		json.RawMessage(`"not an object"`),
		k.jwk(t),
	}
	body, _ := json.Marshal(doc)
	srv := newJWKSServer(t, body)
	b := newTestBackend(t, Config{Providers: []Provider{testProvider(srv.URL)}}, WithClock(clk.Now))
	if err := b.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if got, want := b.Stats().Providers[0].Keys, 1; got != want {
		t.Fatalf("usable keys: got %d, want %d", got, want)
	}
	d, _ := authorize(t, b, publishReq("cam1", k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
	if d.Outcome != authz.Allow {
		t.Fatalf("got %v %q, want allow", d.Outcome, d.Reason)
	}
	d, _ = authorize(t, b, publishReq("cam1", rsaKey("enc-rsa").sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
	if got, want := d.Reason, ReasonUnknownKey; got != want {
		t.Fatalf("token signed by the enc key: got %q, want %q", got, want)
	}
}

func (k testKey) jwkUse(t testing.TB, use string) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(k.jwk(t), &m); err != nil {
		t.Fatal(err)
	}
	m["use"] = use
	b, _ := json.Marshal(m)
	return b
}

func TestStaleIfError(t *testing.T) {
	for _, outage := range []string{"HTTP 500", "garbage", "empty set", "hang"} {
		t.Run(outage, func(t *testing.T) {
			clk := newClock()
			k := rsaKey("k1")
			srv := newJWKSServer(t, jwksDoc(t, k))
			p := testProvider(srv.URL)
			p.FetchTimeout = conf2s
			b := newTestBackend(t, Config{Providers: []Provider{p}, CacheSize: -1}, WithClock(clk.Now))
			switch outage {
			case "HTTP 500":
				srv.status.Store(http.StatusInternalServerError)
			case "garbage":
				srv.set([]byte("<html>oops</html>"))
			case "empty set":
				srv.set([]byte(`{"keys":[]}`))
			case "hang":
				srv.hang.Store(true)
			}
			// An unknown kid forces a refresh, which fails; it must not drop the keys we have.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, _ := b.Authorize(ctx, publishReq("cam1", rsaKey("k2").sign(t, claimsAt(clk.Now(), nil))))
			if got, want := d.Reason, ReasonUnknownKey; got != want {
				t.Fatalf("unknown kid: got %q, want %q", got, want)
			}
			if outage != "hang" {
				waitAttempts(t, b, 2)
				if b.Stats().Providers[0].FetchErrors == 0 {
					t.Fatal("want a failed fetch counted")
				}
			}
			for range 3 {
				d, err := authorize(t, b, publishReq("cam1", k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
				if err != nil || d.Outcome != authz.Allow {
					t.Fatalf("known kid during outage: got %v %q %v, want allow", d.Outcome, d.Reason, err)
				}
			}
			if err := b.Ready(); err != nil {
				t.Fatalf("Ready with stale keys: %v", err)
			}
		})
	}
}

const conf2s = 2 * 1e9

func TestJWKSDownFromStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*jwksServer)
	}{
		{"HTTP 503", func(s *jwksServer) { s.status.Store(http.StatusServiceUnavailable) }},
		{"malformed JWKS", func(s *jwksServer) { s.set([]byte(`{"keys": "no"}`)) }},
		{"not JSON", func(s *jwksServer) { s.set([]byte(`not json`)) }},
		{"too large", func(s *jwksServer) {
			s.set([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", MaxJWKSBody) + `"}`))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			k := rsaKey("k1")
			srv := newJWKSServer(t, jwksDoc(t, k))
			tc.setup(srv)
			b := newTestBackend(t, Config{Providers: []Provider{testProvider(srv.URL)}}, WithClock(clk.Now))
			if err := b.Ready(); !errors.Is(err, ErrNotReady) {
				t.Fatalf("Ready: got %v, want ErrNotReady", err)
			}
			tok := k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))
			_, err := authorize(t, b, publishReq("cam1", tok))
			var re *authz.ReasonError
			if !errors.As(err, &re) || re.Reason != ReasonJWKSUnavailable || !errors.Is(err, ErrJWKSUnavailable) {
				t.Fatalf("got %v, want a ReasonError %q wrapping ErrJWKSUnavailable", err, ReasonJWKSUnavailable)
			}
			if strings.Contains(err.Error(), tok[:30]) {
				t.Fatal("error contains the token")
			}
			// Through the engine: a denial, not an allow.
			d := authz.NewEngine(authz.NewChain(authz.Method{Name: "jwt", Backend: b}), nil).Authorize(context.Background(), publishReq("cam1", tok))
			if d.Allowed() || d.Reason != ReasonJWKSUnavailable {
				t.Fatalf("engine: got %v %q, want a denial %q", d.Outcome, d.Reason, ReasonJWKSUnavailable)
			}
			// The IdP recovers: a request nudges a fetch and the keys arrive.
			srv.status.Store(http.StatusOK)
			srv.set(jwksDoc(t, k))
			clk.Advance(time.Minute)
			_, _ = authorize(t, b, publishReq("cam1", tok))
			deadline := time.Now().Add(10 * time.Second)
			for b.Ready() != nil {
				if time.Now().After(deadline) {
					t.Fatal("never became ready after the IdP recovered")
				}
				time.Sleep(5 * time.Millisecond)
			}
			d, err = authorize(t, b, publishReq("cam1", tok))
			if err != nil || d.Outcome != authz.Allow {
				t.Fatalf("after recovery: got %v %q %v, want allow", d.Outcome, d.Reason, err)
			}
		})
	}
}

func TestUnreachableJWKS(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens here any more: connection refused
	clk := newClock()
	b := newTestBackend(t, Config{Providers: []Provider{testProvider(url + "/certs")}}, WithClock(clk.Now))
	k := edKey("k")
	_, err := authorize(t, b, publishReq("cam1", k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
	if !errors.Is(err, ErrJWKSUnavailable) {
		t.Fatalf("got %v, want ErrJWKSUnavailable", err)
	}
	if got := b.Stats().Providers[0].LastError; got == "" {
		t.Fatal("want the fetch error in Stats")
	}
}

// TestFetchErrorsHideURLSecrets: a JWKS URL may carry a secret in its user info or query; fetch
// errors reach the log, Stats and the jwks_unavailable error, and must show neither.
func TestFetchErrorsHideURLSecrets(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()           // connection refused
	var logs lockedBuffer // the refresh goroutine keeps logging retries while the test reads
	clk := newClock()
	p := testProvider("http://idp:pa55word@" + addr + "/certs?api_key=s3cr3t-query#frag")
	b := newTestBackend(t, Config{Providers: []Provider{p}}, WithClock(clk.Now),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	k := edKey("k")
	_, err := authorize(t, b, publishReq("cam1", k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
	if !errors.Is(err, ErrJWKSUnavailable) {
		t.Fatalf("got %v, want ErrJWKSUnavailable", err)
	}
	last := b.Stats().Providers[0].LastError
	if !strings.Contains(last, addr+"/certs") {
		t.Errorf("got last error %q, want it to name %s/certs", last, addr)
	}
	for name, s := range map[string]string{"error": err.Error(), "stats": last, "log": logs.String()} {
		for _, secret := range []string{"pa55word", "s3cr3t-query", "idp:", "frag"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s %q contains %q", name, s, secret)
			}
		}
	}
}

type lockedBuffer = logtest.Buffer

func TestHangingJWKS(t *testing.T) {
	clk := newClock()
	k := rsaKey("k1")
	srv := newJWKSServer(t, jwksDoc(t, k))
	p := testProvider(srv.URL)
	p.FetchTimeout = 30 * 1e9 // longer than the test: only cancellation ends the hung fetch
	b, err := New(Config{Providers: []Provider{p}, CacheSize: -1}, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	waitFirst(t, b)
	srv.hang.Store(true)

	// An unknown kid starts a refresh that hangs; its own request gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan authz.Decision)
	go func() {
		d, _ := b.Authorize(ctx, publishReq("cam1", rsaKey("k2").sign(t, claimsAt(clk.Now(), nil))))
		done <- d
	}()
	for srv.hits.Load() < 2 { // the refresh has reached the hanging server
		time.Sleep(time.Millisecond)
	}
	// Meanwhile requests with a known kid are not held up by the hung fetch.
	for range 20 {
		d, err := authorize(t, b, publishReq("cam1", k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
		if err != nil || d.Outcome != authz.Allow {
			t.Fatalf("known kid while JWKS hangs: got %v %q %v", d.Outcome, d.Reason, err)
		}
	}
	if got, want := (<-done).Reason, ReasonUnknownKey; got != want {
		t.Fatalf("unknown kid while JWKS hangs: got %q, want %q", got, want)
	}
	// Close cancels the hung fetch and returns.
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while the JWKS fetch hangs")
	}
}

func TestFingerprint(t *testing.T) {
	clk := newClock()
	k := edKey("k")
	body := jwksDoc(t, k)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	pin := fmt.Sprintf("%x", sha256Sum(srv.Certificate().Raw))
	colons := strings.ToUpper(strings.Join(splitEvery(pin, 2), ":"))
	for _, tc := range []struct {
		name, pin string
		ok        bool
	}{
		{"pinned", pin, true},
		{"pinned with colons", colons, true},
		{"wrong pin", strings.Repeat("ab", 32), false},
		{"no pin, self-signed", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testProvider(srv.URL)
			p.Fingerprint = tc.pin
			b := newTestBackend(t, Config{Providers: []Provider{p}}, WithClock(clk.Now))
			_, err := authorize(t, b, publishReq("cam1", k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
			if got := err == nil; got != tc.ok {
				t.Fatalf("got error %v, want ok=%v", err, tc.ok)
			}
			if tc.name == "wrong pin" && !strings.Contains(b.Stats().Providers[0].LastError, "fingerprint") {
				t.Errorf("LastError %q: want the fingerprint mismatch", b.Stats().Providers[0].LastError)
			}
		})
	}
}

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestHMACProvider(t *testing.T) {
	clk := newClock()
	secret := strings.Repeat("s3cr3t!", 6)
	b := newTestBackend(t, Config{Providers: []Provider{{Name: "hs", HMACSecret: Secret(secret), Issuer: "test-issuer"}}}, WithClock(clk.Now))
	signHS := func(key string, alg jwt.SigningMethod) string {
		s, err := jwt.NewWithClaims(alg, claimsAt(clk.Now(), publishPerm("cam1"))).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"HS256", signHS(secret, jwt.SigningMethodHS256), ""},
		{"HS512", signHS(secret, jwt.SigningMethodHS512), ""},
		{"wrong secret", signHS(secret+"x", jwt.SigningMethodHS256), ReasonBadSignature},
		{"RS256 on an HMAC-only provider", rsaKey("k").sign(t, claimsAt(clk.Now(), publishPerm("cam1"))), ReasonAlgNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := authorize(t, b, publishReq("cam1", tc.token))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" && d.Outcome != authz.Allow || tc.reason != "" && d.Reason != tc.reason {
				t.Fatalf("got %v %q, want %q", d.Outcome, d.Reason, tc.reason)
			}
		})
	}
	if s := fmt.Sprintf("%v %+v %#v", Secret(secret), Provider{HMACSecret: Secret(secret)}, Secret(secret)); strings.Contains(s, secret) {
		t.Fatalf("the secret prints: %s", s)
	}
}

func TestTokenSources(t *testing.T) {
	clk := newClock()
	k := edKey("k")
	srv := newJWKSServer(t, jwksDoc(t, k))
	tok := k.sign(t, claimsAt(clk.Now(), []map[string]string{{"action": "read"}}))
	newB := func(queryOK bool) *Backend {
		return newTestBackend(t, Config{Providers: []Provider{testProvider(srv.URL)}, QueryTokenOnHTTP: queryOK}, WithClock(clk.Now))
	}
	strict := newB(false)
	read := func(proto string, mod func(*authz.Request)) *authz.Request {
		r := &authz.Request{Action: authz.ActionRead, Path: "cam1", Protocol: proto}
		mod(r)
		return r
	}
	for _, tc := range []struct {
		name   string
		b      *Backend
		req    *authz.Request
		want   authz.Outcome
		reason string
	}{
		{"bearer on hls", strict, read("hls", func(r *authz.Request) { r.Token = tok }), authz.Allow, authz.ReasonAllowed},
		{"password field, any user (rtsp)", strict, read("rtsp", func(r *authz.Request) { r.User, r.Token, r.TokenFrom = "any", tok, authz.OriginUserInfo }), authz.Allow, authz.ReasonAllowed},
		{"query token on rtmp", strict, read("rtmp", func(r *authz.Request) { r.Token, r.TokenFrom = tok, authz.OriginQuery }), authz.Allow, authz.ReasonAllowed},
		{"a JWT left in the password is not read (creds classifies)", strict, read("rtsp", func(r *authz.Request) { r.User, r.Pass = "any", tok }), authz.Abstain, ""},
		// The query-token policy is the engine's (authz.TestEngineSeam).
		{"plain password: not ours", strict, read("rtsp", func(r *authz.Request) { r.User, r.Pass, r.Token = "alice", "secret", "secret" }), authz.Abstain, ""},
		{"opaque stream key: not ours", strict, read("rtmp", func(r *authz.Request) { r.Token = "sk_live_abc" }), authz.Abstain, ""},
		{"no credentials", strict, read("rtsp", func(*authz.Request) {}), authz.Abstain, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := authorize(t, tc.b, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.want || d.Reason != tc.reason {
				t.Fatalf("got %v %q, want %v %q", d.Outcome, d.Reason, tc.want, tc.reason)
			}
		})
	}
}

func TestCache(t *testing.T) {
	clk := newClock()
	k := edKey("k")
	srv := newJWKSServer(t, jwksDoc(t, k))
	b := newTestBackend(t, Config{Providers: []Provider{testProvider(srv.URL)}, CacheSize: 2}, WithClock(clk.Now))
	c := claimsAt(clk.Now(), publishPerm("cam1"))
	c["exp"] = clk.Now().Add(time.Minute).Unix()
	tok := k.sign(t, c)

	for i := range 3 {
		d, _ := authorize(t, b, publishReq("cam1", tok))
		if d.Outcome != authz.Allow {
			t.Fatalf("call %d: got %v %q", i, d.Outcome, d.Reason)
		}
	}
	d, _ := authorize(t, b, publishReq("cam2", tok)) // cached grant, different request
	if d.Outcome != authz.Forbidden {
		t.Fatalf("cached grant, other path: got %v, want forbidden", d.Outcome)
	}
	if s := b.Stats(); s.CacheHits != 3 || s.CacheMisses != 1 {
		t.Fatalf("got hits=%d misses=%d, want 3 and 1", s.CacheHits, s.CacheMisses)
	}

	// Past exp (and past the leeway) the cached entry is not served: the token is re-verified and refused.
	clk.Advance(time.Minute + DefaultLeeway + time.Second)
	d, _ = authorize(t, b, publishReq("cam1", tok))
	if got, want := d.Reason, ReasonTokenExpired; got != want {
		t.Fatalf("after exp: got %q, want %q", got, want)
	}
	if s := b.Stats(); s.CacheHits != 3 {
		t.Fatalf("an expired entry was served: hits=%d", s.CacheHits)
	}

	// Bounded: many distinct tokens never grow the cache past its size.
	for i := range 10 {
		c := claimsAt(clk.Now(), publishPerm("cam1"))
		c["jti"] = i
		authorize(t, b, publishReq("cam1", k.sign(t, c)))
	}
	if got := b.Stats().CacheEntries; got > 2 {
		t.Fatalf("cache entries: got %d, want at most 2", got)
	}

	// A changed key set (rotation, revocation) invalidates cached grants.
	tok2 := k.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))
	authorize(t, b, publishReq("cam1", tok2))
	hits := b.Stats().CacheHits
	authorize(t, b, publishReq("cam1", tok2))
	if got := b.Stats().CacheHits; got != hits+1 {
		t.Fatalf("want a hit before the key set changes")
	}
	srv.set(jwksDoc(t, ecKey("other"))) // k is revoked
	clk.Advance(time.Minute)
	authorize(t, b, publishReq("cam1", ecKey("unknown").sign(t, claimsAt(clk.Now(), nil)))) // forces a refresh
	d, _ = authorize(t, b, publishReq("cam1", tok2))
	if got, want := d.Reason, ReasonUnknownKey; got != want {
		t.Fatalf("revoked key: got %q, want %q", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"nothing", Config{}},
		{"no name", Config{Providers: []Provider{{JWKS: "http://x/certs"}}}},
		{"ftp", Config{Providers: []Provider{{Name: "a", JWKS: "ftp://x/certs"}}}},
		{"none alg", Config{Providers: []Provider{{Name: "a", JWKS: "http://x", Algorithms: []string{"none"}}}}},
		{"HS without secret", Config{Providers: []Provider{{Name: "a", JWKS: "http://x", Algorithms: []string{"HS256"}}}}},
		{"short secret", Config{Providers: []Provider{{Name: "a", HMACSecret: "short"}}}},
		{"duplicate", Config{Providers: []Provider{{Name: "a", JWKS: "http://x"}, {Name: "a", JWKS: "http://y"}}}},
		{"bad pin", Config{Providers: []Provider{{Name: "a", JWKS: "https://x", Fingerprint: "abc"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.cfg)
			if !errors.Is(err, ErrConfig) {
				if b != nil {
					b.Close()
				}
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	srv := newJWKSServer(t, jwksDoc(t, edKey("k")))
	before := runtime.NumGoroutine()
	var backends []*Backend
	for range 5 {
		b, err := New(Config{Providers: []Provider{testProvider(srv.URL), {Name: "b", JWKS: srv.URL + "/other"}}})
		if err != nil {
			t.Fatal(err)
		}
		waitFirst(t, b)
		backends = append(backends, b)
	}
	if runtime.NumGoroutine() <= before {
		t.Fatal("want refresh goroutines while open")
	}
	for _, b := range backends {
		b.Close()
		b.Close() // idempotent
	}
	srv.CloseClientConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d after Close, %d before New", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWithClockNil: a nil clock keeps time.Now instead of panicking on the first token.
func TestWithClockNil(t *testing.T) {
	secret := strings.Repeat("s", 32)
	b := newTestBackend(t, Config{Providers: []Provider{{Name: "hs", HMACSecret: Secret(secret), Issuer: "test-issuer"}}}, WithClock(nil))
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(time.Now(), publishPerm("cam1"))).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	d, err := authorize(t, b, publishReq("cam1", tok))
	if err != nil || !d.Allowed() {
		t.Fatalf("got %v %q %v, want allow", d.Outcome, d.Reason, err)
	}
}

// TestJWKSHTTPStatusError: an IdP answering 503 is unavailable, not a malformed key set.
func TestJWKSHTTPStatusError(t *testing.T) {
	clk := newClock()
	srv := newJWKSServer(t, jwksDoc(t, rsaKey("k1")))
	srv.status.Store(http.StatusServiceUnavailable)
	b := newTestBackend(t, Config{Providers: []Provider{testProvider(srv.URL)}}, WithClock(clk.Now))
	_, _ = authorize(t, b, publishReq("cam1", rsaKey("k1").sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
	last := b.Stats().Providers[0].LastError
	if !strings.Contains(last, "HTTP 503 from the key set URL") || strings.Contains(last, "malformed") {
		t.Errorf("got last error %q, want it to say HTTP 503 from the key set URL, not malformed", last)
	}
}
