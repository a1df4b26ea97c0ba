package jwks

import (
	"context"
	"fmt"
	"testing"

	"gatehouse/authz"
)

// BenchmarkVerify measures Authorize for RS256 and EdDSA tokens with and without the verified-token
// cache. Compare the ns/op of cached against uncached in the same run.
func BenchmarkVerify(b *testing.B) {
	clk := newClock()
	keys := []testKey{rsaKey("rsa"), edKey("ed")}
	srv := newJWKSServer(b, jwksDoc(b, keys...))
	for _, k := range keys {
		for _, cached := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/cached=%v", k.alg, cached), func(b *testing.B) {
				cfg := Config{Providers: []Provider{testProvider(srv.URL)}}
				if !cached {
					cfg.CacheSize = -1
				}
				be := newTestBackend(b, cfg, WithClock(clk.Now))
				req := &authz.Request{Action: authz.ActionPublish, Path: "cam1", Protocol: "rtsp",
					Token: k.sign(b, claimsAt(clk.Now(), publishPerm("cam1")))}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					d, err := be.Authorize(ctx, req)
					if err != nil || d.Outcome != authz.Allow {
						b.Fatalf("got %v %q %v", d.Outcome, d.Reason, err)
					}
				}
			})
		}
	}
}
