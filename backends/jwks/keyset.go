package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/MicahParks/jwkset"
)

// verifyKey is one public key usable for signature verification.
type verifyKey struct {
	kid string
	alg string // the JWK's alg, "" if it did not say
	pub crypto.PublicKey
}

// keySet is an immutable snapshot of a provider's keys; readers load it atomically.
type keySet struct {
	byKID  map[string]*verifyKey
	all    []*verifyKey
	digest [32]byte // of the JWKS body, to tell a changed set from a re-fetched one
	gen    uint64   // changes whenever the keys change; cache entries remember it
}

// compatible reports whether key k can verify alg (key type, curve, and the JWK's own alg).
func (k *verifyKey) compatible(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// parseKeySet decodes a JWKS document. Keys that cannot verify signatures (use "enc", symmetric
// "oct", X25519, unsupported kty or curve, or that fail validation) are skipped and counted, so
// one odd key never makes the whole set unusable (MediaMTX rejects the whole set). A document
// that is not a JWKS, or has no usable key, is an error.
func parseKeySet(body []byte) (ks *keySet, skipped int, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, fmt.Errorf("%w: not a JSON Web Key Set", ErrMalformedJWKS)
	}
	if doc.Keys == nil {
		return nil, 0, fmt.Errorf("%w: no \"keys\" member", ErrMalformedJWKS)
	}
	ks = &keySet{byKID: map[string]*verifyKey{}, digest: sha256.Sum256(body)}
	for _, raw := range doc.Keys {
		k, ok := parseKey(raw)
		if !ok {
			skipped++
			continue
		}
		if k.kid != "" {
			if _, dup := ks.byKID[k.kid]; dup {
				skipped++
				continue
			}
			ks.byKID[k.kid] = k
		}
		ks.all = append(ks.all, k)
	}
	if len(ks.all) == 0 {
		return nil, skipped, fmt.Errorf("%w: no usable signing key (%d ignored)", ErrMalformedJWKS, skipped)
	}
	return ks, skipped, nil
}

func parseKey(raw json.RawMessage) (*verifyKey, bool) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, false // "enc" keys are for encryption, never for verifying our tokens
	}
	if m.KTY == jwkset.KtyOct {
		return nil, false // symmetric keys come from hmac_secret, never from a fetched document
	}
	// Private: false builds the public key even if the document (wrongly) carries private parts.
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, false
	}
	var pub crypto.PublicKey
	switch key := jwk.Key().(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		pub = key
	default:
		return nil, false // e.g. X25519: a key agreement key
	}
	return &verifyKey{kid: m.KID, alg: m.ALG.String(), pub: pub}, true
}
