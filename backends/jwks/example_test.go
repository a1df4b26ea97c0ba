package jwks_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
	"gatehouse/backends/jwks"
)

// Gatehouse mints a token for a publisher (package authz/tokens) and verifies it with no provider
// configured: the Backend trusts its own issuer.
func ExampleWithIssuer() {
	dir, err := os.MkdirTemp("", "gatehouse-keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	iss, err := tokens.LoadIssuer(dir) // creates dir/signing-key.pem on first run
	if err != nil {
		log.Fatal(err)
	}
	allow, err := tokens.ParseAllow("publish:live/alice")
	if err != nil {
		log.Fatal(err)
	}
	tok, err := iss.Issue("alice", []authz.Permission{allow}, 12*time.Hour)
	if err != nil {
		log.Fatal(err)
	}

	b, err := jwks.New(jwks.Config{}, jwks.WithIssuer(iss))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	for _, path := range []string{"live/alice", "live/bob"} {
		d, _ := b.Authorize(context.Background(), &authz.Request{
			Action: authz.ActionPublish, Path: path, Protocol: "srt", User: "alice", Token: tok, TokenFrom: authz.OriginUserInfo,
		})
		fmt.Println(path, d.Outcome, d.Reason, d.Identity)
	}
	// Output:
	// live/alice allow allowed alice
	// live/bob forbidden not_permitted alice
}
