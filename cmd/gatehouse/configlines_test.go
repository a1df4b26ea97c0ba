package main

import (
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
