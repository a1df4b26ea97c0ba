package jwks

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
)

// tokenFrom picks the JWT to verify: the request's token, when it has a JWT's header (see the
// package doc). Where it came from is the engine's concern (authz.Policy.QueryTokenOnHTTP).
func tokenFrom(req *authz.Request) string {
	if strings.HasPrefix(req.Token, "eyJ") {
		return req.Token
	}
	return ""
}

// header is the part of the JOSE header we route on.
type header struct {
	Alg string `json:"alg"`
	Kid any    `json:"kid"`
}

// peek decodes the header and iss without verifying anything, to choose the provider.
func peek(tok string) (alg, kid, iss, reason string) {
	h, rest, ok1 := strings.Cut(tok, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return "", "", "", ReasonMalformedToken
	}
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "", "", "", ReasonMalformedToken
	}
	var hd header
	if err := json.Unmarshal(hb, &hd); err != nil {
		return "", "", "", ReasonMalformedToken
	}
	switch k := hd.Kid.(type) {
	case nil:
	case string:
		kid = k
	default:
		return "", "", "", ReasonMalformedToken
	}
	pb, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", "", "", ReasonMalformedToken
	}
	var pl struct {
		Iss *string `json:"iss"`
	}
	if err := json.Unmarshal(pb, &pl); err != nil {
		return "", "", "", ReasonMalformedToken
	}
	if pl.Iss != nil {
		iss = *pl.Iss
	}
	if hd.Alg == "" {
		return "", "", "", ReasonMalformedToken
	}
	return hd.Alg, kid, iss, ""
}

// verify checks tok against the providers its iss routes it to.
func (b *Backend) verify(ctx context.Context, tok string) (*grant, string, error) {
	alg, kid, iss, reason := peek(tok)
	if reason != "" {
		return nil, reason, nil
	}
	if strings.EqualFold(alg, "none") {
		return nil, ReasonAlgNotAllowed, nil
	}
	cands := b.byIssuer[iss]
	if len(cands) == 0 {
		cands = b.wildcard
	}
	if len(cands) == 0 {
		return nil, ReasonBadIssuer, nil
	}
	first := ""
	for _, p := range cands {
		g, reason, err := p.verify(ctx, tok, alg, kid)
		if err != nil || reason == "" {
			return g, "", err
		}
		if first == "" {
			first = reason
		}
		if reason != ReasonUnknownKey {
			break // the provider owning the key has spoken
		}
	}
	return nil, first, nil
}

func (p *provider) verify(ctx context.Context, tok, alg, kid string) (*grant, string, error) {
	if !slices.Contains(p.algs, alg) {
		return nil, ReasonAlgNotAllowed, nil
	}
	var ks *keySet
	if !strings.HasPrefix(alg, "HS") {
		ks = p.keySet()
		if ks == nil {
			p.awaitFirst(ctx)
			if ks = p.keySet(); ks == nil {
				p.nudge()
				return nil, "", p.unavailable()
			}
		}
		if kid != "" && ks.byKID[kid] == nil {
			if p.refreshForUnknownKID(ctx) {
				ks = p.keySet()
			}
			if ks.byKID[kid] == nil {
				return nil, ReasonUnknownKey, nil
			}
		}
	}
	var c claims
	_, err := p.parser.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) { return p.keyFor(ks, t) })
	if err != nil {
		return nil, classify(err), nil
	}
	if p.audience != "" && !slices.Contains(c.Audience, p.audience) && !(p.matchAZP && c.AZP == p.audience) {
		return nil, ReasonBadAudience, nil
	}
	if p.maxLifetime > 0 && (c.IssuedAt == nil || c.ExpiresAt == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) > p.maxLifetime) {
		return nil, ReasonTokenLifetime, nil
	}
	perms, err := c.permissions(p.claimKey)
	if err != nil {
		return nil, ReasonBadPermissions, nil
	}
	if len(p.roles) > 0 {
		for role := range c.roleNames(p.rolesClient) {
			perms = append(perms, p.roles[role]...)
		}
	}
	if len(p.scopes) > 0 {
		for scope := range c.scopeNames() {
			perms = append(perms, p.scopes[scope]...)
		}
	}
	g := &grant{prov: p, identity: c.PreferredUsername, perms: perms}
	if g.identity == "" {
		g.identity = c.Subject
	}
	if ks != nil {
		g.gen = ks.gen
	} else {
		g.hmac = true
	}
	if c.ExpiresAt != nil {
		g.exp = c.ExpiresAt.Time
	}
	return g, "", nil
}

// keyFor is the jwt.Keyfunc: it returns the key named by kid (which must suit alg), or every
// key that suits alg when the token has no kid, or the HMAC secret for HS*.
func (p *provider) keyFor(ks *keySet, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if strings.HasPrefix(alg, "HS") {
		if p.hmac == nil {
			return nil, errKeyMismatch
		}
		return p.hmac, nil
	}
	if ks == nil {
		return nil, errUnknownKey
	}
	if kid, _ := t.Header["kid"].(string); kid != "" {
		k := ks.byKID[kid]
		switch {
		case k == nil:
			return nil, errUnknownKey
		case !k.compatible(alg):
			return nil, errKeyMismatch
		}
		return k.pub, nil
	}
	var set jwt.VerificationKeySet
	for _, k := range ks.all {
		if k.compatible(alg) {
			set.Keys = append(set.Keys, k.pub)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errUnknownKey
	}
	return set, nil
}

// classify maps a golang-jwt error to a reason. Order matters: a token that is both expired and
// for the wrong issuer reports expiry.
func classify(err error) string {
	switch {
	case errors.Is(err, errUnknownKey):
		return ReasonUnknownKey
	case errors.Is(err, errKeyMismatch):
		return ReasonAlgNotAllowed
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformedToken
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ReasonBadSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonAlgNotAllowed // unknown or unavailable alg
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonTokenNotYetValid
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ReasonMissingExp
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonBadIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonBadAudience
	}
	return ReasonMalformedToken
}

// claims are the registered claims plus what gatehouse reads from Keycloak/OIDC tokens. All claims
// are also kept raw, for the configurable permissions claim and the role claims.
type claims struct {
	jwt.RegisteredClaims
	AZP               string `json:"azp"`
	PreferredUsername string `json:"preferred_username"`
	raw               map[string]json.RawMessage
}

// UnmarshalJSON keeps the raw claims besides the typed ones. The time claims exp, iat and nbf
// must be JSON numbers (RFC 7519 NumericDate): golang-jwt also accepts a string holding a number
// ("exp":"1700000000") and reads null as absent; both are refused here as malformed.
func (c *claims) UnmarshalJSON(b []byte) error {
	type typed claims
	if err := json.Unmarshal(b, (*typed)(c)); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &c.raw); err != nil {
		return err
	}
	for _, k := range []string{"exp", "iat", "nbf"} {
		if v, ok := c.raw[k]; ok && !jsonNumber(v) {
			return fmt.Errorf("jwks: claim %s must be a JSON number", k)
		}
	}
	return nil
}

// jsonNumber reports whether v, a valid JSON value, is a number.
func jsonNumber(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}

// permissions parses the MediaMTX permissions claim: absent or null is none; otherwise a JSON
// array, or a JSON string holding one, of objects with exactly the keys action (required, one of
// the six actions), path (optional) and gatehouse's protocols (optional: an array of protocol
// names limiting the permission; gatehouse's own room tokens carry it, and MediaMTX refuses a
// token with it). Anything else rejects the token, as MediaMTX.
func (c *claims) permissions(key string) (authz.Permissions, error) {
	raw, ok := c.raw[key]
	if !ok {
		return nil, nil
	}
	return parsePermissions(raw)
}

func parsePermissions(raw []byte) (authz.Permissions, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		raw = bytes.TrimSpace([]byte(s))
	}
	if bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("jwks: permissions claim: want an array of {action, path}: %w", err)
	}
	perms := make(authz.Permissions, 0, len(items))
	for i, it := range items {
		var action, path string
		var protocols []string
		for k, v := range it {
			if k == "protocols" {
				if err := json.Unmarshal(v, &protocols); err != nil || protocols == nil {
					return nil, fmt.Errorf("jwks: permissions claim [%d]: protocols must be an array of strings", i)
				}
				if len(protocols) == 0 { // [] would read as "any protocol": refuse it
					return nil, fmt.Errorf("jwks: permissions claim [%d]: protocols is empty", i)
				}
				continue
			}
			var s *string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("jwks: permissions claim [%d]: %q must be a string", i, k)
			}
			switch k {
			case "action":
				if s == nil {
					return nil, fmt.Errorf("jwks: permissions claim [%d]: action is null", i)
				}
				action = *s
			case "path":
				if s != nil {
					path = *s
				}
			default:
				return nil, fmt.Errorf("jwks: permissions claim [%d]: unknown key %q", i, k)
			}
		}
		if action == "" {
			return nil, fmt.Errorf("jwks: permissions claim [%d]: no action", i)
		}
		perm, err := authz.NewPermission(action, path, protocols)
		if err != nil {
			return nil, fmt.Errorf("jwks: permissions claim [%d]: %w", i, err)
		}
		perms = append(perms, perm)
	}
	return perms, nil
}

// roleNames collects Keycloak realm roles and the client's resource roles. Scope values are not
// roles (a client may request any scope its IdP lets it, and a scope named like a role must not
// grant that role): they are matched separately, by scopeNames against Provider.Scopes.
// Claims of an unexpected shape contribute nothing (they are not ours to police).
func (c *claims) roleNames(client string) map[string]bool {
	out := map[string]bool{}
	var realm struct {
		Roles []string `json:"roles"`
	}
	if raw, ok := c.raw["realm_access"]; ok && json.Unmarshal(raw, &realm) == nil {
		for _, r := range realm.Roles {
			out[r] = true
		}
	}
	if client != "" {
		var res map[string]struct {
			Roles []string `json:"roles"`
		}
		if raw, ok := c.raw["resource_access"]; ok && json.Unmarshal(raw, &res) == nil {
			for _, r := range res[client].Roles {
				out[r] = true
			}
		}
	}
	return out
}

// scopeNames collects the values of the space-separated scope claim (RFC 8693 / RFC 9068).
func (c *claims) scopeNames() map[string]bool {
	out := map[string]bool{}
	var scope string
	if raw, ok := c.raw["scope"]; ok && json.Unmarshal(raw, &scope) == nil {
		for _, s := range strings.Fields(scope) {
			out[s] = true
		}
	}
	return out
}
