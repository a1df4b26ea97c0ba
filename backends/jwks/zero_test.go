package jwks

import (
	"strings"
	"testing"
	"time"

	"gatehouse/authz/conf"
)

// TestWrittenZeroLeeway: leeway: 0s is kept (no tolerance: tokens 2s and 8s past exp are
// refused); an absent leeway takes the 10s default; 0 where 0 makes no sense is refused with its
// line; cache_size: 0 means no cache.
func TestWrittenZeroLeeway(t *testing.T) {
	srv := newJWKSServer(t, jwksDoc(t, rsaKey("k1")))
	decodeCfg := func(extra string) (Config, error) {
		var f file
		src := "jwt:\n  providers:\n    - name: idp\n      jwks: " + srv.URL + "\n      issuer: test-issuer\n      audience: gatehouse\n" + extra
		err := conf.Decode("g.yml", []byte(src), nil, &f)
		return f.JWT, err
	}
	for _, tt := range []struct {
		name, extra string
		late        time.Duration
		allowed     bool
	}{
		{"leeway 0s, 2s late", "      leeway: 0s\n", 2 * time.Second, false},
		{"leeway 0s, 8s late", "      leeway: 0s\n", 8 * time.Second, false},
		{"default leeway, 8s late", "", 8 * time.Second, true},
		{"leeway 5s, 8s late", "      leeway: 5s\n", 8 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := decodeCfg(tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			clk := newClock()
			b := newTestBackend(t, cfg, WithClock(clk.Now))
			c := claimsAt(clk.Now(), publishPerm("cam1"))
			c["exp"] = clk.Now().Add(-tt.late).Unix()
			d, err := authorize(t, b, publishReq("cam1", rsaKey("k1").sign(t, c)))
			if err != nil || d.Allowed() != tt.allowed {
				t.Errorf("got %v %s (err %v), want allowed=%v", d.Outcome, d.Reason, err, tt.allowed)
			}
		})
	}
	for _, tt := range []struct{ extra, want string }{
		{"      fetch_timeout: 0s\n", "g.yml:7: jwt.providers[0].fetch_timeout: fetch_timeout must not be 0"},
		{"      refresh_interval: 0s\n", "refresh_interval must not be 0"},
		{"      unknown_kid_refresh: 0s\n", "unknown_kid_refresh must not be 0"},
		{"  max_token_size: 0\n", "g.yml:7: jwt.max_token_size: max_token_size must not be 0"},
	} {
		if _, err := decodeCfg(tt.extra); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error containing %q", tt.extra, err, tt.want)
		}
	}
	cfg, err := decodeCfg("  cache_size: 0\n")
	if err != nil || cfg.CacheSize >= 0 {
		t.Errorf("cache_size: 0: got %d (err %v), want no cache (negative)", cfg.CacheSize, err)
	}
}
