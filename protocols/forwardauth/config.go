package forwardauth

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/clientip"
	"gatehouse/authz/conf"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultCookieName   = "gatehouse_media"
	DefaultCookieMaxAge = 2 * time.Hour
	DefaultRealm        = "gatehouse"
	// MinSecretLen is the shortest accepted cookie secret (bytes).
	MinSecretLen = 32
)

// Config configures the forward-auth endpoint. The zero value maps every URL with the default
// rule, trusts proxies on loopback only, and signs cookies with a random per-process key.
type Config struct {
	// Rules map a playlist or segment URL to a stream path; the first rule whose prefix matches
	// wins. Default: [{prefix: /, strip_suffix: true}] (/live/cam/index.m3u8 → live/cam).
	Rules []Rule `yaml:"rules"`
	// TrustedProxies lists the addresses or CIDRs allowed to call the endpoint; their
	// X-Forwarded-* / X-Original-* headers are believed. Requests from anywhere else get 403.
	// Default (nil): 127.0.0.0/8 and ::1; an empty list trusts nobody.
	TrustedProxies clientip.Proxies `yaml:"trusted_proxies"`
	// Realm is the realm of the WWW-Authenticate: Bearer challenge sent with 401. Default gatehouse.
	Realm string `yaml:"realm"`
	// Cookie configures the segment cookie.
	Cookie CookieConfig `yaml:"cookie"`
}

// CookieConfig configures the cookie set after a request with credentials is allowed, so that
// the segments and variant playlists that follow (fetched by relative URLs, without the token)
// need no credentials. The cookie is an HMAC-SHA256-signed (path, identity, session, expiry,
// configuration generation, and the managed stream key that earned it): a reload or a restart
// ends every cookie issued before it, so a removed user or permission loses access at once, as
// with credentials, and Handler.RevokeKey ends the cookies of a revoked key.
type CookieConfig struct {
	// Disable turns the cookie off: every request then needs its own credentials.
	Disable bool `yaml:"disable"`
	// Name of the cookie. Default gatehouse_media.
	Name string `yaml:"name"`
	// Secret is the HMAC key, at least 32 bytes; share it between gatehouse instances behind one
	// proxy (their clocks in step: another instance's cookie is accepted if it was issued after
	// this one last reloaded). Empty: a random key per process. Either way a cookie issued before
	// a restart or a reload is refused; viewers then fetch the playlist with their token again.
	Secret string `yaml:"secret"`
	// MaxAge bounds the cookie's life; it is also never longer than the grant (Decision.Expires).
	// It is how long a viewer whose player fetches variant playlists by relative URL (a master
	// playlist: MediaMTX, OME) can watch without sending credentials again, and how long a grant
	// revoked without a gatehouse reload (an http backend's upstream) stays usable. Default 2h.
	MaxAge conf.Duration `yaml:"max_age" conf:"nonzero"`
	// InsecureNoSecure omits the Secure attribute, for plain-HTTP test setups only: browsers
	// drop Secure cookies set over http (except on localhost). Default false.
	InsecureNoSecure bool `yaml:"insecure_no_secure"`
}

// Rule maps URLs under Prefix to a stream path.
type Rule struct {
	// Prefix is the URL path prefix this rule handles, starting and ending with '/' ("/hls/").
	// It is removed before mapping.
	Prefix string `yaml:"prefix"`
	// StripSuffix drops the file name: /hls/live/cam/index.m3u8 and /hls/live/cam/seg12.ts →
	// live/cam (nested layouts: MediaMTX, OME, nginx-rtmp hls_nested on). Without it the file
	// name minus its extension is the last path element (/hls/cam.m3u8 → cam), cut further at
	// SegmentSeparator for non-playlist files.
	StripSuffix bool `yaml:"strip_suffix"`
	// SegmentSeparator, without StripSuffix, cuts a segment's name at its last occurrence
	// (nginx-rtmp flat layout: "-" maps /hls/cam-12.ts → cam). Playlists (.m3u8, .mpd) are not cut.
	SegmentSeparator string `yaml:"segment_separator"`
	// PathPrefix is prepended to the result ("live/": /hls/cam.m3u8 → live/cam), for servers
	// that serve one application's HLS directory under a fixed URL.
	PathPrefix string `yaml:"path_prefix"`
	// Protocol overrides the protocol put in the request. Default: dash for .mpd and .m4s, else hls.
	Protocol string `yaml:"protocol"`
}

// UnmarshalYAML decodes strictly and validates, so problems are reported with their line.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type raw Config
	var r raw
	if err := conf.Strict(n, &r); err != nil {
		return err
	}
	*c = Config(r)
	var errs []error
	for i, rl := range c.Rules {
		if err := rl.validate(); err != nil {
			errs = append(errs, conf.Errorf(conf.Item(n, "rules", i), "%v", err))
		}
	}
	if err := c.Cookie.validate(); err != nil {
		errs = append(errs, conf.Errorf(conf.Value(conf.Value(n, "cookie"), c.Cookie.badKey()), "%v", err))
	}
	if strings.ContainsAny(c.Realm, "\"\\\r\n") {
		errs = append(errs, conf.Errorf(conf.Value(n, "realm"), "realm must not contain quotes, backslashes or newlines"))
	}
	return conf.Join(errs...)
}

// Validate reports the first problem in c; New drops invalid entries instead (failing closed).
func (c Config) Validate() error {
	for i, rl := range c.Rules {
		if err := rl.validate(); err != nil {
			return fmt.Errorf("forwardauth: rules[%d]: %w", i, err)
		}
	}
	if err := c.Cookie.validate(); err != nil {
		return fmt.Errorf("forwardauth: cookie: %w", err)
	}
	return nil
}

func (rl Rule) validate() error {
	if !strings.HasPrefix(rl.Prefix, "/") || !strings.HasSuffix(rl.Prefix, "/") {
		return fmt.Errorf("%w: prefix %q must start and end with /", ErrConfig, rl.Prefix)
	}
	if strings.Contains(rl.Prefix, "//") || strings.Contains(rl.Prefix, "/../") || strings.Contains(rl.Prefix, "/./") {
		return fmt.Errorf("%w: prefix %q must be a clean path", ErrConfig, rl.Prefix)
	}
	if rl.StripSuffix && rl.SegmentSeparator != "" {
		return fmt.Errorf("%w: segment_separator applies only without strip_suffix", ErrConfig)
	}
	if strings.Contains(rl.SegmentSeparator, "/") {
		return fmt.Errorf("%w: segment_separator must not contain /", ErrConfig)
	}
	if strings.HasPrefix(rl.PathPrefix, "/") || strings.Contains(rl.PathPrefix, "..") {
		return fmt.Errorf("%w: path_prefix %q must be relative, like live/", ErrConfig, rl.PathPrefix)
	}
	return nil
}

func (cc CookieConfig) validate() error {
	if cc.Secret != "" && len(cc.Secret) < MinSecretLen {
		return fmt.Errorf("%w: secret must be at least %d bytes", ErrConfig, MinSecretLen)
	}
	if cc.Name != "" && !validCookieName(cc.Name) {
		return fmt.Errorf("%w: name %q is not a valid cookie name", ErrConfig, cc.Name)
	}
	return nil
}

// badKey names the key validate complains about, so the error carries that key's line.
func (cc CookieConfig) badKey() string {
	if cc.Secret != "" && len(cc.Secret) < MinSecretLen {
		return "secret"
	}
	return "name"
}

func validCookieName(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return s != ""
}
