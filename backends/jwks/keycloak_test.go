package jwks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"gopkg.in/yaml.v3"

	"gatehouse/authz"
)

// keycloakToken signs a fixture from testdata/ (claims as Keycloak 26 emits them) valid at now.
func keycloakToken(t *testing.T, k testKey, fixture string, now time.Time) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.MapClaims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c["iat"], c["exp"] = now.Unix(), now.Add(5*time.Minute).Unix()
	if _, ok := c["auth_time"]; ok {
		c["auth_time"] = now.Unix()
	}
	return k.sign(t, c)
}

const keycloakProviderYAML = `
name: keycloak
jwks: %s
issuer: https://sso.example.com/realms/streaming
audience: gatehouse
match_azp: true
roles:
  viewer:
    - {action: read, path: "live/**"}
  streamer:
    - {action: publish, path: "live/*"}
scopes:
  "stream:admin":
    - {action: api}
`

func keycloakProvider(t *testing.T, url string, mod func(*Provider)) Provider {
	t.Helper()
	var p Provider
	src := []byte(fmt.Sprintf(keycloakProviderYAML, url))
	if err := yaml.Unmarshal(src, &p); err != nil {
		t.Fatalf("provider yaml: %v", err)
	}
	if mod != nil {
		mod(&p)
	}
	return p
}

func TestKeycloak(t *testing.T) {
	clk := newClock()
	k := rsaKey("kc-rs256") // Keycloak's default realm key
	srv := newJWKSServer(t, jwksRaw(t, k.jwk(t), ecKey("kc-es256").jwk(t), rsaKey2("kc-enc").jwkUse(t, "enc")))
	newB := func(mod func(*Provider)) *Backend {
		return newTestBackend(t, Config{Providers: []Provider{keycloakProvider(t, srv.URL, mod)}}, WithClock(clk.Now))
	}
	std := newB(nil)
	noAZP := newB(func(p *Provider) { p.MatchAZP = false })
	recorder := newB(func(p *Provider) { p.Audience = "recorder" })
	// The pre-scopes config: "stream:admin" under roles. A scope value must not match it.
	scopeAsRole := newB(func(p *Provider) {
		p.Roles["stream:admin"], p.Scopes = []authz.Permission{{Action: authz.ActionAPI}}, nil
	})
	req := func(a authz.Action, path string) *authz.Request {
		return &authz.Request{Action: a, Path: path, Protocol: "hls"}
	}
	for _, tc := range []struct {
		name     string
		b        *Backend
		fixture  string
		req      *authz.Request
		want     authz.Outcome
		reason   string
		identity string
	}{
		{"viewer role reads (aud via azp)", std, "keycloak_viewer.json", req(authz.ActionRead, "live/cams/door"), authz.Allow, authz.ReasonAllowed, "alice"},
		{"viewer cannot publish", std, "keycloak_viewer.json", req(authz.ActionPublish, "live/alice"), authz.Forbidden, authz.ReasonNotPermitted, "alice"},
		{"viewer without match_azp", noAZP, "keycloak_viewer.json", req(authz.ActionRead, "live/x"), authz.Unauthenticated, ReasonBadAudience, ""},
		{"claim as JSON string", std, "keycloak_streamer.json", req(authz.ActionPublish, "live/bob"), authz.Allow, authz.ReasonAllowed, "bob"},
		{"claim regex read", std, "keycloak_streamer.json", req(authz.ActionRead, "live/anyone"), authz.Allow, authz.ReasonAllowed, "bob"},
		{"client role streamer", std, "keycloak_streamer.json", req(authz.ActionPublish, "live/carol"), authz.Allow, authz.ReasonAllowed, "bob"},
		{"client role is one segment", std, "keycloak_streamer.json", req(authz.ActionPublish, "live/a/b"), authz.Forbidden, authz.ReasonNotPermitted, "bob"},
		{"scope mapped in scopes", std, "keycloak_streamer.json", req(authz.ActionAPI, ""), authz.Allow, authz.ReasonAllowed, "bob"},
		{"scope value is not a role", scopeAsRole, "keycloak_streamer.json", req(authz.ActionAPI, ""), authz.Forbidden, authz.ReasonNotPermitted, "bob"},
		{"role is not a scope", newB(func(p *Provider) {
			p.Scopes = map[string][]authz.Permission{"streamer": {{Action: authz.ActionAPI}}}
		}), "keycloak_streamer.json", req(authz.ActionAPI, ""), authz.Forbidden, authz.ReasonNotPermitted, "bob"},
		{"service account: wrong azp", std, "keycloak_service.json", req(authz.ActionRead, "live/x"), authz.Unauthenticated, ReasonBadAudience, ""},
		{"service account: sub as identity", recorder, "keycloak_service.json", req(authz.ActionPlayback, "live/x"), authz.Allow, authz.ReasonAllowed, "2c4e6a8b-0d1f-4e3a-9b5c-7d9f1a3b5c7e"},
		{"service account: array claim", recorder, "keycloak_service.json", req(authz.ActionRead, "other"), authz.Allow, authz.ReasonAllowed, "2c4e6a8b-0d1f-4e3a-9b5c-7d9f1a3b5c7e"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Token = keycloakToken(t, k, tc.fixture, clk.Now())
			d, err := authorize(t, tc.b, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tc.want || d.Reason != tc.reason {
				t.Fatalf("got %v %q, want %v %q", d.Outcome, d.Reason, tc.want, tc.reason)
			}
			if d.Identity != tc.identity {
				t.Errorf("identity: got %q, want %q", d.Identity, tc.identity)
			}
		})
	}
}
