// Package tokens mints gatehouse's own tokens: compact EdDSA JWTs in MediaMTX's claim format
// (mediamtx_permissions), signed with an Ed25519 key kept in a directory (data_dir/keys), with
// key rotation, a per-deployment audience file, and the public keys published as a JWKS so
// MediaMTX's authJWTJWKS, or any JWKS consumer, can verify them.
//
// Verifying is not done here: backends/jwks trusts an *Issuer given to it with jwks.WithIssuer
// and reads Issuer.KeySet per request, so a rotation takes effect at once.
package tokens

import "errors"

// Sentinel errors of package tokens.
var (
	// ErrIssuer is wrapped by Issuer errors (key files, rotation, issuing).
	ErrIssuer = errors.New("tokens: issuer")
	// ErrTTL is wrapped (with ErrIssuer) by Issue when the requested lifetime exceeds the maximum.
	ErrTTL = errors.New("tokens: token lifetime exceeds the issuer's maximum")
	// ErrAllow is returned by ParseAllow for an unusable permission string.
	ErrAllow = errors.New("tokens: invalid permission")
)
