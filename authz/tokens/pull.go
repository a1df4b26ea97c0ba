package tokens

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Node-to-node pull tokens. An SFU edge that pulls a stream from another node of its fleet
// presents one of these instead of its viewers' credentials (which never travel upstream). They
// are signed with the issuer's key like every own token but carry another audience (Audience()
// + PullAudienceSuffix) and no mediamtx_permissions claim, so a pull token is never accepted as
// a viewer token (by backends/jwks or MediaMTX) and a viewer token is never accepted as a pull
// token. A fleet whose nodes share the key directory (data_dir/keys, copied to every node)
// mints and verifies the same tokens on every node.

// Pull token limits.
const (
	// PullAudienceSuffix is appended to the issuer's audience to form the aud of pull tokens.
	PullAudienceSuffix = "#sfu-pull"
	// MaxPullTTL is the longest lifetime of a pull token: it is presented once, when the pull
	// connects, so it only needs to outlive one HTTP round trip and clock skew.
	MaxPullTTL = 2 * time.Minute
	// pullLeeway is the clock skew tolerated between nodes.
	pullLeeway = 5 * time.Second
	// maxVia bounds the node list a pull token carries (and so a token's size).
	maxVia = 16
)

// ErrPullToken is wrapped by VerifyPull for every token it refuses. Its text never contains the
// token.
var ErrPullToken = errors.New("tokens: invalid pull token")

// PullClaims is what a pull token grants: Node may read Path, Hop hops away from the viewer that
// caused the pull (1: the node pulls for its own viewers), through the nodes in Via (the
// requesting chain, oldest first, ending with Node).
type PullClaims struct {
	Node    string
	Path    string
	Hop     int
	Via     []string
	Expires time.Time // set by VerifyPull
}

type pullJWT struct {
	jwt.RegisteredClaims
	Path string   `json:"gh_pull_path"`
	Hop  int      `json:"gh_pull_hop"`
	Via  []string `json:"gh_pull_via"`
}

// PullAudience returns the aud of pull tokens.
func (i *Issuer) PullAudience() string { return i.audience + PullAudienceSuffix }

// IssuePull returns a pull token for c, valid for ttl (at most MaxPullTTL).
func (i *Issuer) IssuePull(c PullClaims, ttl time.Duration) (string, error) {
	switch {
	case c.Node == "" || c.Path == "":
		return "", fmt.Errorf("%w: pull token needs a node and a path", ErrIssuer)
	case c.Hop < 1:
		return "", fmt.Errorf("%w: pull token hop %d < 1", ErrIssuer, c.Hop)
	case len(c.Via) > maxVia:
		return "", fmt.Errorf("%w: pull chain longer than %d nodes", ErrIssuer, maxVia)
	case ttl <= 0 || ttl > MaxPullTTL:
		return "", fmt.Errorf("%w: %w: pull token lifetime %s (max %s)", ErrIssuer, ErrTTL, ttl, MaxPullTTL)
	}
	now := i.now()
	cur := i.cur.Load()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, pullJWT{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.name,
			Audience:  jwt.ClaimStrings{i.PullAudience()},
			Subject:   c.Node,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Path: c.Path, Hop: c.Hop, Via: c.Via,
	})
	t.Header["kid"] = cur.kid
	s, err := t.SignedString(cur.priv)
	if err != nil {
		return "", fmt.Errorf("%w: sign: %w", ErrIssuer, err)
	}
	return s, nil
}

// VerifyPull checks a pull token: EdDSA with one of the published keys (current or retired),
// this issuer's iss and pull audience, exp required and at most MaxPullTTL after iat, a node,
// a path and a hop of at least 1. Every refusal wraps ErrPullToken.
func (i *Issuer) VerifyPull(token string) (PullClaims, error) {
	if len(token) > 8<<10 {
		return PullClaims{}, fmt.Errorf("%w: too long", ErrPullToken)
	}
	ks := i.KeySet()
	var c pullJWT
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range ks.Keys {
			if k.ID == kid {
				return ed25519.PublicKey(k.Public), nil
			}
		}
		return nil, errors.New("unknown key")
	},
		jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithIssuer(i.name),
		jwt.WithAudience(i.PullAudience()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(pullLeeway),
		jwt.WithTimeFunc(i.now),
	)
	if err != nil {
		return PullClaims{}, fmt.Errorf("%w: %s", ErrPullToken, reasonOf(err))
	}
	if c.IssuedAt == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxPullTTL {
		return PullClaims{}, fmt.Errorf("%w: lifetime over %s", ErrPullToken, MaxPullTTL)
	}
	if c.Subject == "" || c.Path == "" || c.Hop < 1 || len(c.Via) > maxVia {
		return PullClaims{}, fmt.Errorf("%w: missing node, path or hop", ErrPullToken)
	}
	return PullClaims{Node: c.Subject, Path: c.Path, Hop: c.Hop, Via: c.Via, Expires: c.ExpiresAt.Time}, nil
}

// reasonOf names a jwt parse failure without quoting the token.
func reasonOf(err error) string {
	for _, k := range []struct {
		err error
		msg string
	}{
		{jwt.ErrTokenExpired, "expired"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenSignatureInvalid, "bad signature"},
		{jwt.ErrTokenUnverifiable, "unknown key or algorithm"},
		{jwt.ErrTokenMalformed, "malformed"},
		{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{jwt.ErrTokenRequiredClaimMissing, "missing exp"},
	} {
		if errors.Is(err, k.err) {
			return k.msg
		}
	}
	return "invalid"
}
