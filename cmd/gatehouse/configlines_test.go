package main

import (
	"gatehouse/backends/jwks"
	"strings"
	"testing"
)

// TestConfigErrorLines: the same mistake is reported at the line of the entry that holds it,
// whatever section it is in, through the real loader.
func TestConfigErrorLines(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"top-level proxy", "trusted_proxies:\n  - 127.0.0.1\n  - localhost\n",
			`t.yml:3: trusted_proxies[1]: "localhost" is not an IP address or CIDR network`},
		{"forward_auth proxy", "hooks:\n  forward_auth:\n    realm: x\n    trusted_proxies:\n      - 127.0.0.1\n      - localhost\n",
			`t.yml:6: hooks.forward_auth.trusted_proxies[1]: "localhost" is not an IP address or CIDR network`},
		{"forward_auth proxy flow", "hooks:\n  forward_auth:\n    realm: x\n    trusted_proxies: [127.0.0.1, localhost]\n",
			`t.yml:4: hooks.forward_auth.trusted_proxies[1]: "localhost" is not an IP address or CIDR network`},
		{"forward_auth proxy not a list", "hooks:\n  forward_auth:\n    realm: x\n    trusted_proxies: 127.0.0.1\n",
			`t.yml:4: hooks.forward_auth.trusted_proxies: want a list`},
		{"forward_auth rule", "hooks:\n  forward_auth:\n    realm: x\n    rules:\n      - {prefix: /a/}\n      - {prefix: hls}\n",
			`t.yml:6: hooks.forward_auth.rules[1]: `},
		{"forward_auth cookie secret", "hooks:\n  forward_auth:\n    realm: x\n    cookie:\n      name: c\n      secret: short\n",
			`t.yml:6: hooks.forward_auth.cookie.secret: `},
		{"forward_auth realm", "hooks:\n  forward_auth:\n    rules: [{prefix: /}]\n    realm: 'a\"b'\n",
			`t.yml:4: hooks.forward_auth.realm: realm must not contain`},
		{"nginx_rtmp max_body", "hooks:\n  nginx_rtmp:\n    timeout: 1s\n    max_body: -1\n",
			`t.yml:4: hooks.nginx_rtmp.max_body: max_body must not be negative`},
		{"HS256 without hmac_secret", "auth:\n  methods: [jwt]\n  jwt:\n    providers:\n      - name: kc\n        jwks: https://kc.example/certs\n        algorithms:\n          - RS256\n          - HS256\n",
			`t.yml:9: auth.jwt.providers[0].algorithms[1]: provider "kc": algorithm HS256 needs hmac_secret`},
		{"methods with an empty section", "auth:\n  methods: [internal]\n  internal:\n",
			`t.yml:3: auth.internal: auth.internal is empty, so method "internal" would deny everything`},
		{"two node ids", "sfu:\n  edge:\n    node_id: gh-edge\nstate:\n  backend: redis\n  node_id: gh-a\n  redis:\n    addrs: [127.0.0.1:6379]\n",
			`t.yml:3: sfu.edge.node_id: "gh-edge" differs from state.node_id "gh-a"`},
		{"duplicate provider", "auth:\n  methods: [jwt]\n  jwt:\n    providers:\n      - {name: kc, jwks: https://a.example/c}\n      - {name: kc, jwks: https://b.example/c}\n",
			`t.yml:6: auth.jwt.providers[1]: provider name "kc" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("t.yml", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestWrittenZero: through the real loader, a 0 the user wrote is kept where it means something
// (leeway, reconnect_grace) and refused with its line where it would silently have meant the
// default; an absent key takes the default.
func TestWrittenZero(t *testing.T) {
	c, err := parseConfig("t.yml", []byte("auth:\n  methods: [jwt]\n  jwt:\n    providers:\n      - {name: kc, jwks: https://kc.example/certs, leeway: 0s}\n      - {name: kd, jwks: https://kd.example/certs}\nsfu:\n  reconnect_grace: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	jc, ok := c.Auth.Methods[0].settings.(*jwks.Config)
	if !ok || len(jc.Providers) != 2 {
		t.Fatalf("jwt settings: got %#v", c.Auth.Methods[0].settings)
	}
	if l := jc.Providers[0].Leeway; l == nil || *l != 0 {
		t.Errorf("leeway: 0s: got %v, want a kept 0", l)
	}
	if l := jc.Providers[1].Leeway; l != nil {
		t.Errorf("absent leeway: got %v, want nil (the default)", *l)
	}
	if g := c.SFU.ReconnectGrace; g != 0 {
		t.Errorf("reconnect_grace: 0s: got %v, want 0", g.Std())
	}
	for _, tt := range []struct{ src, want string }{
		{"hooks:\n  nginx_rtmp:\n    timeout: 0s\n", "t.yml:3: hooks.nginx_rtmp.timeout: timeout must not be 0"},
		{"hooks:\n  nginx_rtmp:\n    max_body: 0\n", "t.yml:3: hooks.nginx_rtmp.max_body: max_body must not be 0"},
		{"hooks:\n  forward_auth:\n    cookie:\n      max_age: 0s\n", "t.yml:4: hooks.forward_auth.cookie.max_age: max_age must not be 0"},
		{"live:\n  sweep_interval: 0s\n", "t.yml:2: live.sweep_interval: sweep_interval must not be 0"},
		{"live:\n  sources:\n    srs: {stale_after: 0s}\n", "t.yml:3: live.sources.srs.stale_after: stale_after must not be 0"},
		{"notify:\n  webhooks:\n    - url: http://127.0.0.1:1/x\n      timeout: 0s\n", "t.yml:4: notify.webhooks[0].timeout: timeout must not be 0"},
		{"auth:\n  internal:\n    cache_ttl: 0s\n    users: []\n", "t.yml:3: auth.internal.cache_ttl: cache_ttl must not be 0"},
		{"sfu:\n  max_sessions: 0\n", "t.yml:2: sfu.max_sessions: max_sessions must not be 0"},
		{"sfu:\n  gather_timeout: 0s\n", "t.yml:2: sfu.gather_timeout: gather_timeout must not be 0"},
		{"auth:\n  decision_timeout: 0s\n", "t.yml:2: auth.decision_timeout: decision_timeout must not be 0"},
	} {
		if _, err := parseConfig("t.yml", []byte(tt.src)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error containing %q", tt.src, err, tt.want)
		}
	}
}
