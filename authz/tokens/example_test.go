package tokens_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"gatehouse/authz/tokens"
)

// The issuer publishes its public keys as a JWKS (mounted at /.well-known/jwks.json by gatehouse)
// so MediaMTX's authJWTJWKS can verify gatehouse's tokens; a rotation keeps the previous key
// published, so tokens minted before it stay valid until they expire. Minting and verifying:
// see backends/jwks's ExampleWithIssuer.
func ExampleIssuer_JWKSHandler() {
	dir, err := os.MkdirTemp("", "gatehouse-keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	iss, err := tokens.LoadIssuer(dir) // creates dir/signing-key.pem on first run
	if err != nil {
		log.Fatal(err)
	}
	if err := iss.Rotate(); err != nil {
		log.Fatal(err)
	}
	w := httptest.NewRecorder()
	iss.JWKSHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"), len(iss.KeySet().Keys), "keys")
	// Output:
	// 200 application/json 2 keys
}
