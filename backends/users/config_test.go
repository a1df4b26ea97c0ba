package users

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// file is how a gatehouse config embeds this backend's Config.
type file struct {
	Internal Config `yaml:"internal"`
}

// decode decodes src (the body under "internal:", indented by the caller) through the real loader.
func decode(t testing.TB, src string) (Config, error) {
	t.Helper()
	var f file
	err := conf.Decode("test.yml", []byte(src), nil, &f)
	return f.Internal, err
}

func mustDecode(t testing.TB, src string) Config {
	t.Helper()
	cfg, err := decode(t, src)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return cfg
}

// MediaMTX's default authInternalUsers (mediamtx.yml), pasted under users: unchanged.
const mediamtxDefault = `
internal:
  users:
  - user: any          # Credential; 'any' = anyone, including anonymous
    pass:              # Credential; must be empty when user is 'any'
    ips: []            # IPNetworks; empty list = any IP
    permissions:       # list of {action, path}
    - action: publish
      path:            # '' = any path, '~regex', or exact name
    - action: read
    - action: playback
  - user: any
    pass:
    ips: ['127.0.0.1', '::1']
    permissions: [{action: api}, {action: metrics}, {action: pprof}]
`

func TestDecodeMediaMTXDefault(t *testing.T) {
	cfg := mustDecode(t, mediamtxDefault)
	if got, want := len(cfg.Users), 2; got != want {
		t.Fatalf("len(Users) = %d, want %d", got, want)
	}
	u0, u1 := cfg.Users[0], cfg.Users[1]
	if !u0.User.IsAny() || !u0.Pass.IsEmpty() || len(u0.IPs) != 0 {
		t.Errorf("user 0 = %v, want any, empty pass, no ips", u0)
	}
	if got, want := len(u0.Permissions), 3; got != want {
		t.Errorf("user 0 permissions = %d, want %d", got, want)
	}
	wantIPs := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	if len(u1.IPs) != 2 || u1.IPs[0] != wantIPs[0] || u1.IPs[1] != wantIPs[1] {
		t.Errorf("user 1 ips = %v, want %v", u1.IPs, wantIPs)
	}
	if got := cfg.Warnings(); len(got) != 0 {
		t.Errorf("Warnings() = %q, want none", got)
	}
}

func TestDecodeDocsHashedUsers(t *testing.T) {
	cfg := mustDecode(t, `
internal:
  users:
  - user: `+argon2DocsUser+`
    pass: `+argon2DocsPass+`
    permissions:
    - action: publish
  - user: `+sha256DocsUser+`
    pass: `+sha256DocsPass+`
    permissions:
    - action: publish
`)
	kinds := []string{cfg.Users[0].User.Kind(), cfg.Users[0].Pass.Kind(), cfg.Users[1].User.Kind(), cfg.Users[1].Pass.Kind()}
	if got, want := strings.Join(kinds, ","), "argon2id,argon2i,sha256,sha256"; got != want {
		t.Errorf("kinds = %s, want %s", got, want)
	}
}

func TestDecodeCache(t *testing.T) {
	tests := []struct {
		name, src string
		ttl       time.Duration
		size      int // -1: nil
	}{
		{"defaults", "internal:\n  users: []\n", DefaultCacheTTL, -1},
		{"set", "internal:\n  cache_ttl: 30s\n  cache_size: 10\n", 30 * time.Second, 10},
		{"disabled", "internal:\n  cache_size: 0\n", DefaultCacheTTL, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustDecode(t, tt.src)
			if got := cfg.CacheTTL.Or(DefaultCacheTTL); got != tt.ttl {
				t.Errorf("ttl = %v, want %v", got, tt.ttl)
			}
			switch {
			case tt.size < 0 && cfg.CacheSize != nil:
				t.Errorf("CacheSize = %d, want nil", *cfg.CacheSize)
			case tt.size >= 0 && (cfg.CacheSize == nil || *cfg.CacheSize != tt.size):
				t.Errorf("CacheSize = %v, want %d", cfg.CacheSize, tt.size)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "line:substring", every one must appear
	}{
		{"empty user", `
internal:
  users:
  - user: ""
    permissions: [{action: read}]
`, []string{"4:empty usernames are not supported"}},
		{"missing user", `
internal:
  users:
  - pass: x
    permissions: [{action: read}]
`, []string{"4:empty usernames are not supported"}},
		{"any with pass", `
internal:
  users:
  - user: any
    pass: secret
`, []string{"5:using a password with 'any' user is not supported"}},
		{"bad plain pass", `
internal:
  users:
  - user: bob
    pass: has/slash
`, []string{"5:pass: users: invalid credential: plain value"}},
		{"bad sha256 length", `
internal:
  users:
  - user: bob
    pass: sha256:AAAAAAAAAAAAAAAAAAAAAA==
`, []string{"5:decodes to 16 bytes, want 32"}},
		{"sha256 not canonical", `
internal:
  users:
  - user: bob
    pass: sha256:validBase64EncodedHash==
`, []string{"5:not valid padded base64"}},
		{"argon2d", `
internal:
  users:
  - user: bob
    pass: argon2:$argon2d$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58
`, []string{"5:argon2d is not supported"}},
		{"malformed phc user", `
internal:
  users:
  - user: argon2:$argon2id$v=19$m=4096$MTIzNDU2Nzg$Ux
`, []string{"4:user: users: invalid credential: argon2 value is not a PHC string"}},
		{"bad ip", `
internal:
  users:
  - user: any
    ips:
    - 10.0.0.1
    - 300.1.1.1
    - 10.0.0.0/33
`, []string{`7:users: invalid IP or network "300.1.1.1"`, `8:users: invalid IP or network "10.0.0.0/33"`}},
		{"unknown key", `
internal:
  users:
  - user: any
    users: x
`, []string{`5:unknown key "users"`}},
		{"missing action", `
internal:
  users:
  - user: any
    permissions:
    - path: cam
`, []string{"6:permission has no action"}},
		{"unknown action", `
internal:
  users:
  - user: any
    permissions:
    - action: watch
`, []string{"6:unknown action"}},
		{"invalid regex", `
internal:
  users:
  - user: any
    permissions:
    - action: read
      path: ~cam(
`, []string{"6:invalid path pattern"}},
		{"negative cache", `
internal:
  cache_size: -1
`, []string{"3:cache_size must be 0"}},
		{"bad ttl", `
internal:
  cache_ttl: soon
`, []string{"3:invalid duration"}},
		{"all reported", `
internal:
  users:
  - user: ""
  - user: any
    pass: x
  - user: bob
    pass: sha256:abc
    ips: [nope]
`, []string{"4:empty usernames", "6:using a password", "8:not valid padded base64", `9:invalid IP or network "nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(t, tt.src)
			if !errors.Is(err, conf.ErrInvalid) {
				t.Fatalf("error = %v, want conf.ErrInvalid", err)
			}
			var ce *conf.Errors
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *conf.Errors", err)
			}
			for _, w := range tt.want {
				line, sub, _ := strings.Cut(w, ":")
				found := false
				for _, p := range ce.Problems {
					if p.File == "test.yml" && strings.Contains(p.Msg, sub) && strconv.Itoa(p.Line) == line {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem at line %s containing %q; got:\n%v", line, sub, err)
				}
			}
		})
	}
}

func TestDecodeErrorsHideSecrets(t *testing.T) {
	_, err := decode(t, `
internal:
  users:
  - user: bob
    pass: "hunter2 with space"
  - user: "alice/x"
    pass: sha256:c2VjcmV0c2VjcmV0
`)
	if err == nil {
		t.Fatal("decode succeeded, want errors")
	}
	for _, secret := range []string{"hunter2", "c2VjcmV0c2VjcmV0"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error contains %q:\n%v", secret, err)
		}
	}
}

func TestWarnings(t *testing.T) {
	cfg := mustDecode(t, `
internal:
  users:
  - user: bob
    permissions: [{action: read}]
  - user: `+sha256TestUser+`
    pass: ""
  - user: any
  - user: carol
    pass: x
    ips: [0.0.0.0/0]
  - user: dave
    pass: x
    ips: [0.0.0.0/0, '::/0']
`)
	got := cfg.Warnings()
	want := []string{
		`line 4: users[0]: user "bob" has an empty pass, so any password is accepted`,
		`line 6: users[1]: a hashed user has an empty pass, so any password is accepted`,
		`line 9: users[3]: ips 0.0.0.0/0 matches IPv4 clients only; add ::/0 for IPv6`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Warnings() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseNetwork(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1/32"},
		{"::1", "::1/128"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"fe80::1%eth0", ""},
		{"localhost", ""},
		{"10.0.0.0/", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseNetwork(tt.in)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidNetwork) {
					t.Errorf("ParseNetwork = %v, %v; want ErrInvalidNetwork", got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("ParseNetwork = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestDecodeProtocolsAndGlobs(t *testing.T) {
	cfg := mustDecode(t, `
internal:
  users:
  - user: any
    permissions:
    - action: read
      path: live/*
      protocols: [HLS, webrtc]
`)
	p := cfg.Users[0].Permissions[0]
	if got, want := p.String(), "read:live/* (hls,webrtc)"; got != want {
		t.Errorf("permission = %q, want %q", got, want)
	}
	req := &authz.Request{Action: authz.ActionRead, Path: "live/a", Protocol: "hls"}
	if !p.Matches(req) {
		t.Errorf("permission does not match %+v", req)
	}
}
