package tokens_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
)

// Gatehouse mints a token for a publisher; its permissions are in MediaMTX's claim format.
// backends/jwks verifies it (jwks.WithIssuer), as does MediaMTX given the JWKSHandler's URL.
func ExampleIssuer_Issue() {
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
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		log.Fatal(err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(claims["sub"]), string(claims[tokens.ClaimKey]))
	// Output:
	// "alice" [{"action":"publish","path":"live/alice"}]
}
