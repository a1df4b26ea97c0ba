package users

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gatehouse/authz"
)

// manyUsers returns a config of 49 users that do not match the benchmark request, then target.
func manyUsers(b *testing.B, perm, target string) Config {
	var sb strings.Builder
	sb.WriteString("internal:\n  users:\n")
	for i := range 49 {
		fmt.Fprintf(&sb, "  - user: user%d\n    pass: pass%d\n    permissions: [{action: publish, path: %s}]\n", i, i, strings.ReplaceAll(perm, "N", fmt.Sprint(i)))
	}
	sb.WriteString(target)
	return mustDecode(b, sb.String())
}

// BenchmarkAuthorize measures one decision. Compare argon2id/cold with argon2id/cached (same
// run) for the cache's gain; sha256 is the cheapest real credential.
func BenchmarkAuthorize(b *testing.B) {
	hashed, err := HashArgon2id([]byte("testuser"))
	if err != nil {
		b.Fatal(err)
	}
	one := func(pass, extra string) Config {
		return mustDecode(b, "internal:\n"+extra+"  users:\n  - user: alice\n    pass: "+pass+"\n    permissions: [{action: publish}]\n")
	}
	alice := req(authz.ActionPublish, "live/cam", "192.0.2.1", "alice", "testuser")
	cases := []struct {
		name string
		cfg  Config
		r    *authz.Request
		want authz.Outcome
	}{
		{"sha256", one(sha256TestUser, ""), alice, authz.Allow},
		{"argon2id-m4096/cold", one(argon2TestUser, "  cache_size: 0\n"), alice, authz.Allow},
		{"argon2id-m4096/cached", one(argon2TestUser, ""), alice, authz.Allow},
		{"argon2id-m19456/cold", one(hashed, "  cache_size: 0\n"), alice, authz.Allow},
		{"argon2id-m19456/cached", one(hashed, ""), alice, authz.Allow},
		{"argon2id-m4096/unknown-user", one(argon2TestUser, ""), req(authz.ActionPublish, "x", "", "mallory", "x"), authz.Unauthenticated},
		{"50users/regex", manyUsers(b, "~^privateN/", "  - user: alice\n    pass: testuser\n    permissions: [{action: publish, path: ~^live/}]\n"), alice, authz.Allow},
		{"50users/glob", manyUsers(b, "privateN/**", "  - user: alice\n    pass: testuser\n    permissions: [{action: publish, path: live/*}]\n"), alice, authz.Allow},
		{"50users/regex-forbidden", manyUsers(b, "~^privateN/", "  - user: alice\n    pass: testuser\n    permissions: [{action: read, path: ~^live/}]\n"), alice, authz.Forbidden},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			be := New(c.cfg)
			ctx := context.Background()
			for b.Loop() {
				d, err := be.Authorize(ctx, c.r)
				if err != nil || d.Outcome != c.want {
					b.Fatalf("decision = %v, %v; want %v", d.Outcome, err, c.want)
				}
			}
			b.ReportMetric(float64(be.Stats().Argon2Runs)/float64(b.N), "argon2/op")
		})
	}
}
