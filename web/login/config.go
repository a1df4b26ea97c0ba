package login

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// Defaults of Config.
const (
	DefaultSessionTTL     = 8 * time.Hour
	DefaultViewerTokenTTL = 5 * time.Minute
	// FlowTTL is how long a started login may take at the identity provider.
	FlowTTL = 10 * time.Minute
)

// Secret is a string that never prints: fmt and slog render it as "[redacted]".
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return `"[redacted]"` }

// Config is the browser login (the `login:` key of the `web:` section): gatehouse is a
// confidential or public OpenID Connect client of Issuer.
type Config struct {
	// Issuer is the provider's issuer URL; its discovery document is read from
	// Issuer/.well-known/openid-configuration (Keycloak: https://kc.example.com/realms/<realm>).
	Issuer string `yaml:"issuer"`
	// ClientID is gatehouse's client id at the provider.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the client secret of a confidential client; empty for a public client
	// (PKCE is used either way).
	ClientSecret Secret `yaml:"client_secret"`
	// RedirectURL is where the provider sends the browser back: this gatehouse's public origin
	// followed by /login/callback. An https URL makes every cookie Secure.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes are requested from the provider (default openid, profile). openid is always added.
	Scopes []string `yaml:"scopes"`
	// Roles maps role names (Keycloak realm_access.roles and resource_access.<roles_client>.roles)
	// to permissions, exactly as a jwt provider's roles.
	Roles map[string][]authz.Permission `yaml:"roles"`
	// RolesClient is the client whose resource_access roles count (default ClientID).
	RolesClient string `yaml:"roles_client"`
	// SessionTTL is how long a login lasts in gatehouse (default 8h).
	SessionTTL conf.Duration `yaml:"session_ttl" conf:"nonzero"`
	// ViewerTokenTTL is the lifetime of the viewer tokens handed to the pages (default 5m; at
	// most tokens.max_ttl). Pages refresh them before they expire.
	ViewerTokenTTL conf.Duration `yaml:"viewer_token_ttl" conf:"nonzero"`
	// PostLogoutRedirectURL is where the provider sends the browser after logging out there
	// (default: the origin of RedirectURL, i.e. gatehouse's grid). It must be registered at the
	// provider as a valid post-logout redirect URI.
	PostLogoutRedirectURL string `yaml:"post_logout_redirect_url"`
	// UniqueUsernames makes a room participant's name the plain preferred_username ("alice")
	// instead of "alice-<hash of issuer and subject>" (default false). OpenID Connect does not
	// promise that preferred_username is unique or stable (Core §5.1: relying parties must not
	// rely on it); set this only when the provider does (Keycloak realm user names, which no
	// other connector or federation shares), or two users with one login name publish as one.
	UniqueUsernames bool `yaml:"unique_usernames"`
}

// UnmarshalYAML decodes strictly and reports every problem with its line.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	var raw plain
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	*c = Config(raw)
	var errs []error
	for key, msg := range c.problems() {
		at := n
		if key != "" {
			at = conf.Value(n, key)
		}
		errs = append(errs, conf.Errorf(at, "%s", msg))
	}
	return conf.Join(errs...)
}

// problems returns what is wrong with c, keyed by the YAML key it is about, in key order.
func (c *Config) problems() func(yield func(string, string) bool) {
	type pr struct{ key, msg string }
	var out []pr
	add := func(key, format string, args ...any) { out = append(out, pr{key, fmt.Sprintf(format, args...)}) }
	if u, err := url.Parse(c.Issuer); c.Issuer == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("issuer", "login: issuer must be the provider's http(s) issuer URL, such as https://kc.example.com/realms/stream")
	}
	if c.ClientID == "" {
		add("client_id", "login: client_id is required")
	}
	if u, err := url.Parse(c.RedirectURL); c.RedirectURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != CallbackPath {
		add("redirect_url", "login: redirect_url must be this gatehouse's public origin followed by %s, such as https://stream.example.com%s", CallbackPath, CallbackPath)
	}
	if c.PostLogoutRedirectURL != "" {
		if u, err := url.Parse(c.PostLogoutRedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("post_logout_redirect_url", "login: post_logout_redirect_url must be an http(s) URL")
		}
	}
	if c.RolesClient != "" && len(c.Roles) == 0 {
		add("roles_client", "login: roles_client without roles")
	}
	for _, s := range c.Scopes {
		if s == "" || len(s) > 128 {
			add("scopes", "login: scopes must be non-empty names")
			break
		}
	}
	return func(yield func(string, string) bool) {
		for _, p := range out {
			if !yield(p.key, p.msg) {
				return
			}
		}
	}
}

// Validate reports the first problem of a Config built in Go (YAML decoding reports them all).
func (c *Config) Validate() error {
	for _, msg := range c.problems() {
		return fmt.Errorf("%w: %s", ErrConfig, msg)
	}
	return nil
}

func (c *Config) scopes() []string {
	s := slices.Clone(c.Scopes)
	if len(s) == 0 {
		s = []string{"openid", "profile"}
	}
	if !slices.Contains(s, "openid") {
		s = append([]string{"openid"}, s...)
	}
	return s
}

func (c *Config) rolesClient() string {
	if c.RolesClient != "" {
		return c.RolesClient
	}
	return c.ClientID
}
