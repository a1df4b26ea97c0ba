package users_test

import (
	"context"
	"fmt"
	"net/netip"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/backends/users"
)

// A MediaMTX authInternalUsers list, pasted under users:, decides requests with MediaMTX's rules
// plus a 401/403 split.
func ExampleNew() {
	const src = `
internal:
  cache_ttl: 2m
  users:
  - user: any
    permissions: [{action: read, path: ~^public/}]
  - user: studio
    pass: sha256:E9JJ8stBJ7QM+nV4ZoUCeHk/gU3tPFh/5YieiJp6n2w=  # testpass
    ips: [192.0.2.0/24]
    permissions: [{action: publish, path: live/*}]
`
	var cfg struct {
		Internal users.Config `yaml:"internal"`
	}
	if err := conf.Decode("gatehouse.yml", []byte(src), nil, &cfg); err != nil {
		fmt.Println(err)
		return
	}
	b := users.New(cfg.Internal)
	ip := netip.MustParseAddr("192.0.2.10")
	for _, r := range []authz.Request{
		{Action: authz.ActionRead, Path: "public/lobby"},
		{Action: authz.ActionPublish, Path: "live/main", IP: ip, User: "studio", Pass: "testpass"},
		{Action: authz.ActionPublish, Path: "backstage", IP: ip, User: "studio", Pass: "testpass"},
		{Action: authz.ActionPublish, Path: "live/main", IP: ip, User: "studio", Pass: "guess"},
		{Action: authz.ActionPublish, Path: "live/main", IP: ip},
	} {
		d, _ := b.Authorize(context.Background(), &r)
		fmt.Printf("%s %s: %s %s %q\n", r.Action, r.Path, d.Outcome, d.Reason, d.Identity)
	}
	// Output:
	// read public/lobby: allow allowed ""
	// publish live/main: allow allowed "studio"
	// publish backstage: forbidden not_permitted "studio"
	// publish live/main: unauthenticated bad_credentials ""
	// publish live/main: abstain  ""
}

// HashArgon2id's output pastes into pass: and verifies.
func ExampleHashArgon2id() {
	h, err := users.HashArgon2id([]byte("s3cret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := users.ParseCredential(h)
	fmt.Println(c.Kind(), err)
	// Output: argon2id <nil>
}
