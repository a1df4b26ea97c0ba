package httpauth

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// Defaults applied by Config's YAML decoding (cache) and by New (timeout).
const (
	// DefaultTimeout bounds one upstream call, connection included. It stays below
	// OvenMediaEngine's 3 s admission-webhook timeout so a dead auth service still lets gatehouse
	// answer the streaming server with a denial rather than time it out.
	DefaultTimeout = 2 * time.Second
	// DefaultAllowTTL is how long an allow is reused for an identical request.
	DefaultAllowTTL = 30 * time.Second
	// DefaultDenyTTL is how long a denial is reused for an identical request.
	DefaultDenyTTL = 5 * time.Second
	// DefaultCacheSize is the default number of cached decisions.
	DefaultCacheSize = 10000
	// MaxCacheSize bounds cache.size so a typo cannot reserve unbounded memory.
	MaxCacheSize = 1_000_000
)

// reservedHeaders are set by gatehouse or the HTTP stack; a static header may not replace them.
var reservedHeaders = []string{"Connection", "Content-Length", "Content-Type", "Host", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// Config configures a Backend. In YAML (every key but address is optional):
//
//	address: https://auth.example.com/mediamtx   # http:// or https:// only
//	headers:                                      # sent with every request
//	  X-Gatehouse-Secret: ${AUTH_SHARED_SECRET}
//	fingerprint: ""   # sha256 hex of the server's leaf certificate; replaces chain verification
//	timeout: 2s       # per upstream call, connect included
//	cache: {allow_ttl: 30s, deny_ttl: 5s, size: 10000}   # 0 disables a part
//	exclude:          # MediaMTX authHTTPExclude: allowed without any check, identity ""
//	  - action: metrics
//
// YAML decoding validates every key and reports each problem with its line; keys left out of
// cache get DefaultAllowTTL, DefaultDenyTTL and DefaultCacheSize. A Config built in Go is checked
// by New instead: there a zero Timeout means DefaultTimeout and a zero Cache disables caching (use
// DefaultCache for the defaults).
type Config struct {
	// Address is the URL POSTed to, with MediaMTX's authHTTPAddress body. Required.
	Address string `yaml:"address"`
	// Headers are static request headers, for example a shared secret the service checks
	// (MediaMTX #6012). Values may use ${ENV}; they are never logged.
	Headers map[string]string `yaml:"headers"`
	// Fingerprint pins the server's leaf certificate: the SHA-256 of its DER in hex, lower-case
	// without colons as MediaMTX's authHTTPFingerprint (upper-case and colons are accepted too).
	// When set it replaces certificate-chain and host-name verification. https only.
	Fingerprint string `yaml:"fingerprint"`
	// Timeout bounds one upstream call; zero means DefaultTimeout.
	Timeout conf.Duration `yaml:"timeout"`
	// Cache reuses upstream decisions for identical requests.
	Cache CacheConfig `yaml:"cache"`
	// Exclude lists requests allowed without asking the service, with identity "" — MediaMTX's
	// authHTTPExclude semantics: an excluded request is not authenticated at all.
	Exclude authz.Permissions `yaml:"exclude"`
}

// CacheConfig bounds the decision cache. A zero TTL disables caching of that kind of decision; a
// zero Size disables the cache (and with it, collapsing of concurrent requests that differ only
// in their session id). Errors are never cached.
type CacheConfig struct {
	AllowTTL conf.Duration `yaml:"allow_ttl"` // how long a 2xx is reused
	DenyTTL  conf.Duration `yaml:"deny_ttl"`  // how long a 3xx/4xx denial is reused
	Size     int           `yaml:"size"`      // at most this many decisions, least recently used evicted
}

// DefaultCache returns the cache settings YAML decoding uses for keys left out.
func DefaultCache() CacheConfig {
	return CacheConfig{AllowTTL: conf.Duration(DefaultAllowTTL), DenyTTL: conf.Duration(DefaultDenyTTL), Size: DefaultCacheSize}
}

// UnmarshalYAML decodes and validates the config strictly; every problem carries its line.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		Address     string            `yaml:"address"`
		Headers     map[string]string `yaml:"headers"`
		Fingerprint string            `yaml:"fingerprint"`
		Timeout     *conf.Duration    `yaml:"timeout"`
		Cache       *CacheConfig      `yaml:"cache"`
		Exclude     authz.Permissions `yaml:"exclude"`
	}
	var errs []error
	if err := conf.Strict(n, &raw); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return err
		}
		errs = append(errs, err) // keep going: report the other keys' problems too
	}
	u, err := parseAddress(raw.Address)
	if err != nil {
		errs = append(errs, conf.Errorf(conf.Value(n, "address"), "%v", err))
	}
	if raw.Fingerprint != "" {
		if _, err := parseFingerprint(raw.Fingerprint); err != nil {
			errs = append(errs, conf.Errorf(conf.Value(n, "fingerprint"), "%v", err))
		} else if u != nil && u.Scheme != "https" {
			errs = append(errs, conf.Errorf(conf.Value(n, "fingerprint"), "fingerprint needs an https:// address"))
		}
	}
	if hn := conf.Value(n, "headers"); hn != n && hn.Kind == yaml.MappingNode {
		seen := map[string]bool{}
		for i := 0; i+1 < len(hn.Content); i += 2 {
			k, v := hn.Content[i], hn.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				continue // Strict has reported the type
			}
			if err := checkHeader(k.Value, v.Value); err != nil {
				errs = append(errs, conf.Errorf(k, "%v", err))
				continue
			}
			canon := http.CanonicalHeaderKey(k.Value)
			if seen[canon] {
				errs = append(errs, conf.Errorf(k, "header %q is given twice (names are case-insensitive)", k.Value))
			}
			seen[canon] = true
		}
	}
	timeout := conf.Duration(DefaultTimeout)
	if raw.Timeout != nil {
		// conf.Duration rejects negatives and garbage itself; only zero is left to refuse.
		if tn := conf.Value(n, "timeout"); *raw.Timeout == 0 && isZeroDuration(tn.Value) {
			errs = append(errs, conf.Errorf(tn, "timeout must be positive (default %s)", DefaultTimeout))
		}
		timeout = *raw.Timeout
	}
	cache := DefaultCache()
	if raw.Cache != nil {
		cache = *raw.Cache
	}
	if err := conf.Join(errs...); err != nil {
		return err
	}
	*c = Config{
		Address:     raw.Address,
		Headers:     raw.Headers,
		Fingerprint: raw.Fingerprint,
		Timeout:     timeout,
		Cache:       cache,
		Exclude:     raw.Exclude,
	}
	return nil
}

// UnmarshalYAML decodes the cache settings; keys left out keep their defaults (DefaultCache).
func (c *CacheConfig) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		AllowTTL *conf.Duration `yaml:"allow_ttl"`
		DenyTTL  *conf.Duration `yaml:"deny_ttl"`
		Size     *int           `yaml:"size"`
	}
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	out := DefaultCache()
	if raw.AllowTTL != nil {
		out.AllowTTL = *raw.AllowTTL
	}
	if raw.DenyTTL != nil {
		out.DenyTTL = *raw.DenyTTL
	}
	if raw.Size != nil {
		if *raw.Size < 0 || *raw.Size > MaxCacheSize {
			return conf.Errorf(conf.Value(n, "size"), "cache size must be between 0 (disabled) and %d", MaxCacheSize)
		}
		out.Size = *raw.Size
	}
	*c = out
	return nil
}

func isZeroDuration(s string) bool {
	d, err := time.ParseDuration(s)
	return err == nil && d == 0
}

// parseAddress accepts absolute http and https URLs with a host. Its errors never repeat the
// address, which may carry credentials.
func parseAddress(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("address is required (the auth service URL, http:// or https://)")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("address is not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("address must start with http:// or https://")
	}
	if u.Host == "" {
		return nil, errors.New("address has no host")
	}
	return u, nil
}

// parseFingerprint decodes a SHA-256 fingerprint written as hex, tolerating colons and
// upper-case (as printed by openssl x509 -fingerprint -sha256).
func parseFingerprint(s string) ([]byte, error) {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	b, err := hex.DecodeString(norm)
	if err != nil || len(b) != 32 {
		return nil, errors.New("fingerprint must be the SHA-256 of the certificate: 64 hex digits")
	}
	return b, nil
}

// checkHeader validates one static header. Errors name the header, never its value.
func checkHeader(name, value string) error {
	if !validFieldName(name) {
		return fmt.Errorf("header name %q is not a valid HTTP field name", name)
	}
	if slices.Contains(reservedHeaders, http.CanonicalHeaderKey(name)) {
		return fmt.Errorf("header %q is set by gatehouse and cannot be configured", name)
	}
	if value == "" {
		return fmt.Errorf("header %q has an empty value (is its environment variable set?)", name)
	}
	if !validFieldValue(value) {
		return fmt.Errorf("header %q has a value with control characters or surrounding spaces", name)
	}
	return nil
}

// settings is a Config checked by New.
type settings struct {
	url         *url.URL
	headers     http.Header
	fingerprint []byte // nil: verify the chain
	timeout     time.Duration
	cache       CacheConfig
}

// check validates a Config built in Go (YAML-decoded configs have passed the same rules).
func (c *Config) check() (settings, error) {
	var (
		s    settings
		errs []error
		err  error
	)
	if s.url, err = parseAddress(c.Address); err != nil {
		errs = append(errs, err)
	}
	if c.Fingerprint != "" {
		if s.fingerprint, err = parseFingerprint(c.Fingerprint); err != nil {
			errs = append(errs, err)
		} else if s.url != nil && s.url.Scheme != "https" {
			errs = append(errs, errors.New("fingerprint needs an https:// address"))
		}
	}
	s.headers = make(http.Header, len(c.Headers)+2)
	names := make([]string, 0, len(c.Headers))
	for name := range c.Headers {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic error order
	for _, name := range names {
		if err := checkHeader(name, c.Headers[name]); err != nil {
			errs = append(errs, err)
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		if _, dup := s.headers[canon]; dup {
			errs = append(errs, fmt.Errorf("header %q is given twice (names are case-insensitive)", name))
		}
		s.headers[canon] = []string{c.Headers[name]}
	}
	s.timeout = c.Timeout.Or(DefaultTimeout)
	if s.timeout < 0 {
		errs = append(errs, errors.New("timeout must be positive"))
	}
	s.cache = c.Cache
	if s.cache.AllowTTL < 0 || s.cache.DenyTTL < 0 {
		errs = append(errs, errors.New("cache TTLs must not be negative"))
	}
	if s.cache.Size < 0 || s.cache.Size > MaxCacheSize {
		errs = append(errs, fmt.Errorf("cache size must be between 0 (disabled) and %d", MaxCacheSize))
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return s, nil
}

// validFieldName reports whether s is an RFC 9110 token (a header field name).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validFieldValue reports whether s can be sent as a header value: no control characters other
// than horizontal tab (so no CR/LF header injection) and no surrounding whitespace.
func validFieldValue(s string) bool {
	if strings.TrimSpace(s) != s {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
