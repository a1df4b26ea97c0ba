package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"gatehouse/authz"
	"gatehouse/backends/keys"
)

// BenchmarkAuthorizeManaged measures one decision through the keys backend for a managed key
// presented as the stream name, with 10 and 10,000 keys in the store (goal: flat — one indexed
// read by digest).
func BenchmarkAuthorizeManaged(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s, err := Open(context.Background(), filepath.Join(b.TempDir(), FileName))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			tx, err := s.db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			var secret string
			for i := range n {
				if _, secret, err = s.insert(ctx, tx, keys.Spec{Path: fmt.Sprintf("live/s%d", i), Actions: []authz.Action{authz.ActionPublish}}); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			be, err := keys.New(keys.Config{}, nil, keys.WithStore(s))
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range []struct{ name, path string }{{"known", "live/" + secret}, {"unknown", ""}} {
				if c.name == "unknown" {
					c.path = "live/" + mustUnknown(b)
				}
				b.Run(c.name, func(b *testing.B) {
					req := &authz.Request{Action: authz.ActionPublish, Path: c.path}
					for b.Loop() {
						if _, err := be.Authorize(ctx, req); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

func mustUnknown(b *testing.B) string {
	s, _, err := keys.NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	return s
}
