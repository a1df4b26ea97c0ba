package jwks

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// Defaults applied by New (and by YAML decoding) to zero Config and Provider fields.
const (
	DefaultClaimKey          = "mediamtx_permissions"
	DefaultLeeway            = 10 * time.Second
	DefaultRefreshInterval   = 5 * time.Minute
	DefaultUnknownKIDRefresh = 30 * time.Second
	DefaultFetchTimeout      = 5 * time.Second
	DefaultMaxTokenSize      = 16 << 10 // bytes
	DefaultCacheSize         = 10000    // verified tokens
	MaxJWKSBody              = 1 << 20  // bytes read from a JWKS endpoint, at most
	minHMACSecret            = 32       // bytes
)

// DefaultAlgorithms returns the asymmetric algorithms a provider with a jwks URL accepts when its
// config lists none: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA. HS256, HS384 and HS512
// are added when the provider has an hmac_secret (and are the default of a provider with only an
// hmac_secret); "none" is never accepted.
func DefaultAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
}

func asymmetricAlgorithms() []string { return append(DefaultAlgorithms(), "ES512") }

func hmacAlgorithms() []string { return []string{"HS256", "HS384", "HS512"} }

// Config configures the JWKS backend (YAML key of the backend's section, e.g. `jwt:` in the lead's
// config). The zero Config with at least one Provider (or WithIssuer) is valid.
type Config struct {
	// Providers are the token issuers trusted, each with its own key set and rules.
	Providers []Provider `yaml:"providers"`
	// QueryTokenOnHTTP accepts a token that arrived in a query parameter (any name: token, jwt,
	// access_key, ...) for HTTP protocols (hls, webrtc, dash, http, and api/metrics/pprof/
	// playback). The engine applies it to every request (authz.Policy), not this backend. Default false,
	// as MediaMTX since v1.18 (#5648): query strings end up in access logs and browser history.
	// RTSP, RTMP and SRT always accept query tokens, because their clients have no other way.
	QueryTokenOnHTTP bool `yaml:"query_token_on_http"`
	// MaxTokenSize rejects longer tokens with reason token_too_large before parsing. Default 16 KiB.
	MaxTokenSize int `yaml:"max_token_size" conf:"nonzero"`
	// CacheSize bounds the verified-token cache. 0: DefaultCacheSize; negative: no cache. In
	// YAML, absent means the default and a written 0 means no cache.
	CacheSize int `yaml:"cache_size"`
}

// Secret is a string that never prints: fmt and slog render it as "[redacted]".
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return `"[redacted]"` }

// Provider is one trusted issuer: where its keys are, which claims its tokens must carry and how
// its claims map to permissions.
type Provider struct {
	// Name identifies the provider in logs and Stats; required, unique.
	Name string `yaml:"name"`
	// JWKS is the http(s) URL of the provider's JSON Web Key Set (Keycloak:
	// https://kc.example.com/realms/<realm>/protocol/openid-connect/certs). Required unless
	// HMACSecret is set.
	JWKS string `yaml:"jwks"`
	// Issuer, if set, must equal the token's iss (Keycloak: https://kc.example.com/realms/<realm>).
	// Tokens are routed to the provider whose Issuer equals their iss; providers without Issuer
	// get tokens whose iss matches no other provider.
	Issuer string `yaml:"issuer"`
	// Audience, if set, must be one of the token's aud (string or array), or equal azp when
	// MatchAZP is set (Keycloak access tokens carry the client id in azp, not in aud, unless an
	// audience mapper adds it).
	Audience string `yaml:"audience"`
	// MatchAZP also accepts a token whose azp equals Audience.
	MatchAZP bool `yaml:"match_azp"`
	// ClaimKey names the claim holding MediaMTX permissions, a JSON array of {"action","path"} or
	// a JSON string containing that array. Default "mediamtx_permissions".
	ClaimKey string `yaml:"claim_key"`
	// Roles grants permissions to role names found in realm_access.roles and
	// resource_access.<RolesClient>.roles. Scope values never match a role (before, they did:
	// a token whose scope happened to share a role's name got the role); map scopes in Scopes.
	Roles map[string][]authz.Permission `yaml:"roles"`
	// Scopes grants permissions to values of the space-separated scope claim.
	Scopes map[string][]authz.Permission `yaml:"scopes"`
	// RolesClient is the client whose resource_access roles count. Default: Audience.
	RolesClient string `yaml:"roles_client"`
	// Algorithms pins the accepted alg values. Default: DefaultAlgorithms() (+HS* with HMACSecret).
	Algorithms []string `yaml:"algorithms"`
	// HMACSecret, when set (at least 32 bytes), accepts HS256/HS384/HS512 tokens signed with it.
	HMACSecret Secret `yaml:"hmac_secret"`
	// Leeway tolerates clock skew on exp and nbf. nil: the default, 10s; a written 0s is kept
	// (no tolerance).
	Leeway *conf.Duration `yaml:"leeway"`
	// RequireExp rejects tokens without exp. Default true.
	RequireExp *bool `yaml:"require_exp"`
	// RefreshInterval is how often the key set is fetched again in the background. Default 5m.
	RefreshInterval conf.Duration `yaml:"refresh_interval" conf:"nonzero"`
	// UnknownKIDRefresh is the minimum time between key set fetches triggered by a token signed
	// with an unknown kid (key rotation without waiting for RefreshInterval; rate-limited so
	// random kids cannot make gatehouse hammer the IdP). Default 30s. Requests with an unknown kid
	// wait for such a fetch at most 1 s (or FetchTimeout if shorter), all of them together; a
	// slower fetch goes on in the background and serves the requests after it.
	UnknownKIDRefresh conf.Duration `yaml:"unknown_kid_refresh" conf:"nonzero"`
	// FetchTimeout bounds one key set fetch (a request waits for the first fetch at start at most
	// this long). Default 5s.
	FetchTimeout conf.Duration `yaml:"fetch_timeout" conf:"nonzero"`
	// Fingerprint pins the JWKS server's TLS leaf certificate: lower-case hex SHA-256 of its DER
	// (colons allowed), as MediaMTX's authJWTJWKSFingerprint. When set it replaces chain
	// verification.
	Fingerprint string `yaml:"fingerprint"`
}

// UnmarshalYAML decodes a Provider strictly and validates it, reporting every problem with its line.
func (p *Provider) UnmarshalYAML(n *yaml.Node) error {
	type plain Provider
	var raw plain
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	*p = Provider(raw)
	var errs []error
	for _, pr := range p.problems() {
		errs = append(errs, conf.Errorf(pr.node(n), "%s", pr.msg))
	}
	return conf.Join(errs...)
}

// UnmarshalYAML decodes a Config strictly and checks what spans providers (unique names).
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	var raw plain
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	*c = Config(raw)
	if v := conf.Value(n, "cache_size"); v != n && c.CacheSize == 0 {
		c.CacheSize = -1 // written 0: no cache, not the default
	}
	var errs []error
	for _, pr := range c.problems() {
		errs = append(errs, conf.Errorf(pr.node(n), "%s", pr.msg))
	}
	return conf.Join(errs...)
}

// problem is one thing wrong with a Config or Provider, with the key (and list item) it is
// about, so that YAML decoding reports it at that key's line.
type problem struct {
	key  string // "": the whole section
	item int    // index in the list under key; -1: the key itself
	msg  string
}

func (pr problem) node(n *yaml.Node) *yaml.Node {
	if pr.key == "" {
		return n
	}
	if pr.item >= 0 {
		return conf.Item(n, pr.key, pr.item)
	}
	return conf.Value(n, pr.key)
}

func messages(prs []problem) []string {
	out := make([]string, len(prs))
	for i, pr := range prs {
		out[i] = pr.msg
	}
	return out
}

func (c *Config) problems() []problem {
	var out []problem
	seen := map[string]bool{}
	for i, p := range c.Providers {
		if p.Name != "" && seen[p.Name] {
			out = append(out, problem{"providers", i, fmt.Sprintf("provider name %q is used twice", p.Name)})
		}
		seen[p.Name] = true
	}
	if c.MaxTokenSize < 0 {
		out = append(out, problem{"max_token_size", -1, "max_token_size must not be negative"})
	}
	return out
}

// problems lists what is wrong with p (empty: valid). It does not modify p.
func (p *Provider) problems() []problem {
	var out []problem
	key, item := "", -1
	add := func(format string, args ...any) { out = append(out, problem{key, item, fmt.Sprintf(format, args...)}) }
	at := func(k string, i int) { key, item = k, i }
	if p.Name == "" {
		at("", -1)
		add("provider has no name")
	}
	if p.JWKS == "" && p.HMACSecret == "" {
		at("", -1)
		add("provider %q: jwks (key set URL) is required unless hmac_secret is set", p.Name)
	}
	if p.JWKS != "" {
		at("jwks", -1)
		u, err := url.Parse(p.JWKS)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("provider %q: jwks must be an http:// or https:// URL", p.Name)
		}
	}
	if p.HMACSecret != "" && len(p.HMACSecret) < minHMACSecret {
		at("hmac_secret", -1)
		add("provider %q: hmac_secret must be at least %d bytes", p.Name, minHMACSecret)
	}
	if p.MatchAZP && p.Audience == "" {
		at("match_azp", -1)
		add("provider %q: match_azp needs audience", p.Name)
	}
	if p.RolesClient != "" && len(p.Roles) == 0 {
		at("roles_client", -1)
		add("provider %q: roles_client without roles", p.Name)
	}
	for i, a := range p.Algorithms {
		at("algorithms", i)
		switch {
		case strings.EqualFold(a, "none"):
			add("provider %q: algorithm %q is never accepted", p.Name, a)
		case slices.Contains(hmacAlgorithms(), a):
			if p.HMACSecret == "" {
				add("provider %q: algorithm %s needs hmac_secret", p.Name, a)
			}
		case !slices.Contains(asymmetricAlgorithms(), a):
			add("provider %q: unknown algorithm %q (want one of %s, %s)", p.Name, a,
				strings.Join(asymmetricAlgorithms(), " "), strings.Join(hmacAlgorithms(), " "))
		case p.JWKS == "":
			add("provider %q: algorithm %s needs jwks", p.Name, a)
		}
	}
	if p.Fingerprint != "" {
		at("fingerprint", -1)
		if _, err := parseFingerprint(p.Fingerprint); err != nil {
			add("provider %q: fingerprint must be 64 hex digits (SHA-256 of the certificate DER)", p.Name)
		}
	}
	return out
}

func parseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ToLower(strings.ReplaceAll(s, ":", "")))
	if err != nil || len(b) != 32 {
		return nil, ErrConfig
	}
	return b, nil
}

// algorithms returns the effective pinned list.
func (p *Provider) algorithms() []string {
	if len(p.Algorithms) > 0 {
		return slices.Clone(p.Algorithms)
	}
	if p.JWKS == "" {
		return hmacAlgorithms()
	}
	algs := DefaultAlgorithms()
	if p.HMACSecret != "" {
		algs = append(algs, hmacAlgorithms()...)
	}
	return algs
}
