package jwks

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// file is how the lead's config embeds this backend's section.
type file struct {
	JWT Config `yaml:"jwt"`
}

const exampleYAML = `
jwt:
  query_token_on_http: false
  max_token_size: 8192
  providers:
    - name: keycloak
      jwks: https://sso.example.com/realms/streaming/protocol/openid-connect/certs
      issuer: https://sso.example.com/realms/streaming
      audience: gatehouse
      match_azp: true
      claim_key: mediamtx_permissions
      roles:
        viewer:   [{action: read, path: "live/**"}]
        streamer: [{action: publish, path: "live/*"}, {action: read}]
      roles_client: gatehouse
      algorithms: [RS256, ES256]
      leeway: 5s
      require_exp: true
      refresh_interval: 10m
      unknown_kid_refresh: 1m
      fetch_timeout: 3s
    - name: legacy
      hmac_secret: ${LEGACY_SECRET}
      issuer: legacy-app
`

func TestConfigYAML(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "LEGACY_SECRET" {
			return strings.Repeat("k", 40), true
		}
		return "", false
	}
	var f file
	if err := conf.Decode("gatehouse.yml", []byte(exampleYAML), env, &f); err != nil {
		t.Fatal(err)
	}
	kc := f.JWT.Providers[0]
	if got, want := kc.Leeway.Std(), 5*time.Second; got != want {
		t.Errorf("leeway: got %v, want %v", got, want)
	}
	if got := kc.Roles["streamer"]; len(got) != 2 || !authz.Permissions(got).Match(&authz.Request{Action: authz.ActionPublish, Path: "live/x"}) {
		t.Errorf("streamer role: got %v", got)
	}
	if got, want := string(f.JWT.Providers[1].HMACSecret), strings.Repeat("k", 40); got != want {
		t.Errorf("hmac_secret not expanded from the environment")
	}
	b, err := New(f.JWT)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// TestConfigYAMLErrors: each problem is reported at the line of the key (or list entry) it is
// about, not at the first line of its provider.
func TestConfigYAMLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
		line             int
	}{
		{"unknown key", "jwt:\n  providers:\n    - name: a\n      jwks: http://x/certs\n      audiences: [a]\n", `unknown key "audiences"`, 5},
		{"ftp URL", "jwt:\n  providers:\n    - name: a\n      jwks: ftp://x/certs\n", "must be an http:// or https:// URL", 4},
		{"no jwks", "jwt:\n  providers:\n    - name: a\n", "jwks (key set URL) is required", 3},
		{"alg none", "jwt:\n  providers:\n    - name: a\n      jwks: http://x\n      algorithms: [RS256, none]\n", "never accepted", 5},
		{"HS without secret", "jwt:\n  providers:\n    - name: a\n      jwks: http://x\n      algorithms: [HS256]\n", "needs hmac_secret", 5},
		{"unknown alg", "jwt:\n  providers:\n    - name: a\n      jwks: http://x\n      algorithms: [RS1]\n", "unknown algorithm", 5},
		{"short secret", "jwt:\n  providers:\n    - name: a\n      hmac_secret: short\n", "at least 32 bytes", 4},
		{"bad duration", "jwt:\n  providers:\n    - name: a\n      jwks: http://x\n      leeway: soon\n", "invalid duration", 5},
		{"bad role permission", "jwt:\n  providers:\n    - name: a\n      jwks: http://x\n      roles:\n        r: [{action: write}]\n", "unknown action", 6},
		{"match_azp without audience", "jwt:\n  providers:\n    - name: a\n      jwks: http://x\n      match_azp: true\n", "match_azp needs audience", 5},
		{"bad fingerprint", "jwt:\n  providers:\n    - name: a\n      jwks: https://x\n      fingerprint: zz\n", "fingerprint must be 64 hex", 5},
		{"duplicate names", "jwt:\n  providers:\n    - {name: a, jwks: http://x}\n    - {name: a, jwks: http://y}\n", "used twice", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f file
			err := conf.Decode("gatehouse.yml", []byte(tc.yaml), nil, &f)
			var ce *conf.Errors
			if !errors.As(err, &ce) || !errors.Is(err, conf.ErrInvalid) {
				t.Fatalf("got %v, want *conf.Errors", err)
			}
			for _, p := range ce.Problems {
				if strings.Contains(p.Msg, tc.want) {
					if p.Line != tc.line {
						t.Errorf("line: got %d, want %d (%s)", p.Line, tc.line, p)
					}
					return
				}
			}
			t.Fatalf("got %v, want a problem containing %q", err, tc.want)
		})
	}
}
