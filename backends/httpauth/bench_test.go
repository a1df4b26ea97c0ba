package httpauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAuthorize compares a decision served from the cache with one that asks a service on
// loopback (keep-alive connection, 204 reply). Report the ratio uncached/cached.
func BenchmarkAuthorize(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	for _, bc := range []struct {
		name  string
		cache CacheConfig
	}{
		{"cached", DefaultCache()},
		{"uncached", CacheConfig{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			be, err := New(Config{Address: up.URL, Cache: bc.cache})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			req := publishReq()
			ctx := context.Background()
			if _, err := be.Authorize(ctx, req); err != nil { // warm: connection and cache
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				d, err := be.Authorize(ctx, req)
				if err != nil || !d.Allowed() {
					b.Fatalf("got %v %v, want allow", d.Outcome, err)
				}
			}
		})
	}
}
