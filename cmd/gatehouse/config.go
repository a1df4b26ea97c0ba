package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/conf"
	"gatehouse/authz/live"
	"gatehouse/authz/notify"
	"gatehouse/backends/httpauth"
	"gatehouse/backends/jwks"
	"gatehouse/backends/keys"
	"gatehouse/backends/users"
	"gatehouse/protocols/forwardauth"
	"gatehouse/protocols/nginxrtmp"
	"gatehouse/protocols/ome"
	"gatehouse/protocols/srs"
	"gatehouse/sfu"
)

// Config is gatehouse's configuration file. Every key is documented in config.example.yml.
type Config struct {
	Listen      string `yaml:"listen"`       // public listener (WHIP/WHEP, pages, JWKS, API); default ":8089"
	HooksListen string `yaml:"hooks_listen"` // callbacks from streaming servers; default "127.0.0.1:8090"
	DataDir     string `yaml:"data_dir"`     // keys and state; default "./data"
	WatchConfig *bool  `yaml:"watch_config"` // reload when the file changes; default true
	// TrustedProxies are the reverse proxies (addresses or CIDRs) whose X-Forwarded-For /
	// X-Real-IP the public listener believes, for every route; default none. Restart to change.
	TrustedProxies clientip.Proxies `yaml:"trusted_proxies"`
	// AllowedHosts are the Host names the public listener answers (421 otherwise); default any.
	AllowedHosts hostList     `yaml:"allowed_hosts"`
	Limits       LimitsConfig `yaml:"limits"` // connection caps; restart to change
	Log          LogConfig    `yaml:"log"`
	Auth         AuthConfig   `yaml:"auth"`
	Tokens       TokensConfig `yaml:"tokens"`
	// The sections below are read at start; changing them needs a restart (a reload says so).
	Hooks  HooksConfig   `yaml:"hooks"`
	Live   live.Config   `yaml:"live"`
	Notify notify.Config `yaml:"notify"`
	SFU    *sfu.Config   `yaml:"sfu"` // nil: no WebRTC server
}

// TokensConfig configures the tokens gatehouse mints (gatehouse token) and publishes at
// /.well-known/jwks.json. The Ed25519 signing key lives in data_dir/keys.
type TokensConfig struct {
	Issuer   string        `yaml:"issuer"`   // the iss claim; default "gatehouse"
	Audience string        `yaml:"audience"` // the aud claim, required on own tokens; default: data_dir/keys/audience (random, made on first run)
	MaxTTL   conf.Duration `yaml:"max_ttl"`  // longest lifetime minted or accepted; default 24h (jwks.DefaultMaxTTL)
}

// HooksConfig holds each streaming-server adapter's settings. Every adapter is always mounted on
// the hooks listener; these only tune it.
type HooksConfig struct {
	NginxRTMP   nginxrtmp.Config   `yaml:"nginx_rtmp"`
	OME         ome.Config         `yaml:"ome"`
	SRS         srs.Config         `yaml:"srs"`
	ForwardAuth forwardauth.Config `yaml:"forward_auth"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// AuthConfig lists the methods in evaluation order and each method's settings.
type AuthConfig struct {
	Methods  []MethodRef      `yaml:"methods"`
	Internal *users.Config    `yaml:"internal"`
	Keys     *keys.Config     `yaml:"keys"`
	JWT      *jwks.Config     `yaml:"jwt"`
	HTTP     *httpauth.Config `yaml:"http"`

	// DecisionTimeout bounds every decision, whichever adapter asked (authz.Policy; default 5s).
	DecisionTimeout conf.Duration `yaml:"decision_timeout"`
	// QueryTokenOnHTTP accepts a token from any query parameter (token, jwt, access_key, an SRS or
	// OME extra name) over HTTP protocols, for every method (authz.Policy). Default false. The
	// jwt section's query_token_on_http, where it was first configured, still enables it too.
	QueryTokenOnHTTP bool `yaml:"query_token_on_http"`
}

// MethodRef names one method in auth.methods: either a bare name ("internal") or
// {method: internal, actions: [api, publish]} to limit it to some actions.
type MethodRef struct {
	Name    string
	Actions []authz.Action
	node    *yaml.Node
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (m *MethodRef) UnmarshalYAML(n *yaml.Node) error {
	m.node = n
	if n.Kind == yaml.ScalarNode {
		m.Name = n.Value
		return nil
	}
	var raw struct {
		Method  string   `yaml:"method"`
		Actions []string `yaml:"actions"`
	}
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	if raw.Method == "" {
		return conf.Errorf(n, "a method entry needs a name: write internal or {method: internal, actions: [publish]}")
	}
	m.Name = raw.Method
	for _, a := range raw.Actions {
		act, err := authz.ParseAction(a)
		if err != nil {
			return conf.Errorf(n, "%v", err)
		}
		m.Actions = append(m.Actions, act)
	}
	return nil
}

// methodNames are the method names gatehouse knows, in documentation order.
var methodNames = []string{"internal", "keys", "jwt", "http"}

// UnmarshalYAML applies the cross-key rules of the auth section, so their errors carry lines.
func (a *AuthConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain AuthConfig
	errs := []error{conf.Strict(n, (*plain)(a))} // keep going: report method errors too
	if a.DecisionTimeout < 0 {
		errs = append(errs, conf.Errorf(n, "decision_timeout must not be negative (0 or absent: 5s)"))
	}
	seen := map[string]bool{}
	for _, m := range a.Methods {
		switch {
		case !slices.Contains(methodNames, m.Name):
			errs = append(errs, conf.Errorf(m.node, "unknown method %q (known: %s)", m.Name, strings.Join(methodNames, ", ")))
		case seen[m.Name]:
			errs = append(errs, conf.Errorf(m.node, "method %q listed twice", m.Name))
		case !a.hasSection(m.Name):
			errs = append(errs, conf.Errorf(m.node, "method %q is listed but auth.%s is not configured", m.Name, m.Name))
		}
		seen[m.Name] = true
	}
	return conf.Join(errs...)
}

func (a *AuthConfig) hasSection(name string) bool {
	switch name {
	case "internal":
		return a.Internal != nil
	case "keys":
		return a.Keys != nil
	case "jwt":
		return true // with no providers it trusts gatehouse's own tokens
	case "http":
		return a.HTTP != nil
	}
	return false
}

// defaultUsers is used when the file configures no method: anyone may read and play back, only
// local clients may use api/metrics, nobody may use pprof (stack dumps, the command line) or
// publish until a user is configured. (MediaMTX's default also lets anyone publish and local
// clients use pprof; a gateway should not.)
const defaultUsers = `
users:
  - user: any
    permissions: [{action: read}, {action: playback}]
  - user: any
    ips: ["127.0.0.1", "::1"]
    permissions: [{action: api}, {action: metrics}]
`

// loadConfig reads and validates the file at path. An empty path gives the built-in defaults.
func loadConfig(path string) (*Config, error) {
	_, cfg, err := readConfig(path)
	return cfg, err
}

// readConfig reads and validates the file at path and returns its bytes too (the reload loop
// compares them). An empty path gives the built-in defaults; a named file never does: an empty
// file, or one without an auth section (what a truncated or half-written file usually is), is an
// error, so a reload keeps the running config instead of opening every stream to anyone.
func readConfig(path string) ([]byte, *Config, error) {
	if path == "" {
		cfg, err := parseConfig("defaults", nil)
		return nil, cfg, err
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	if len(bytes.TrimSpace(src)) == 0 {
		return src, nil, fmt.Errorf("%s: the file is empty; refusing to fall back to the built-in defaults (run without -config to use them)", path)
	}
	cfg, err := decodeConfig(path, src)
	if err != nil {
		return src, nil, err
	}
	if cfg.Auth.empty() {
		return src, nil, fmt.Errorf("%s: no auth section configures a method; refusing to fall back to the built-in defaults (a truncated file looks like this)", path)
	}
	if err := cfg.applyDefaults(); err != nil {
		return src, nil, err
	}
	return src, cfg, nil
}

// parseConfig decodes src (a whole file or a snippet) and fills every default, including the
// built-in users when no auth method is configured. Files go through readConfig, which refuses
// that fallback.
func parseConfig(name string, src []byte) (*Config, error) {
	c, err := decodeConfig(name, src)
	if err != nil {
		return nil, err
	}
	if err := c.applyDefaults(); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeConfig(name string, src []byte) (*Config, error) {
	var c Config
	if err := conf.Decode(name, src, os.LookupEnv, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// empty reports whether the auth section configures nothing (absent, null or {}).
func (a *AuthConfig) empty() bool {
	return len(a.Methods) == 0 && a.Internal == nil && a.Keys == nil && a.JWT == nil && a.HTTP == nil
}

func (c *Config) applyDefaults() error {
	if c.Listen == "" {
		c.Listen = ":8089"
	}
	if c.HooksListen == "" {
		c.HooksListen = "127.0.0.1:8090"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Tokens.Issuer == "" {
		c.Tokens.Issuer = "gatehouse"
	}
	if c.WatchConfig == nil {
		t := true
		c.WatchConfig = &t
	}
	if len(c.Auth.Methods) == 0 && c.Auth.Internal == nil {
		var u users.Config
		if err := conf.Decode("defaults", []byte(defaultUsers), nil, &u); err != nil {
			return fmt.Errorf("built-in defaults: %w", err)
		}
		c.Auth.Internal = &u
	}
	if len(c.Auth.Methods) == 0 {
		for _, n := range methodNames {
			if c.Auth.hasSection(n) && (n != "jwt" || c.Auth.JWT != nil) {
				c.Auth.Methods = append(c.Auth.Methods, MethodRef{Name: n})
			}
		}
	}
	_, err := c.logLevel()
	return err
}

func (c *Config) logLevel() (slog.Level, error) {
	var l slog.Level
	if c.Log.Level == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return 0, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	return l, nil
}

// warnings lists non-fatal findings to log at load.
func (c *Config) warnings() []string {
	var w []string
	if c.Auth.Internal != nil {
		w = append(w, c.Auth.Internal.Warnings()...)
	}
	return w
}

// restartOnlySections lists the sections that apply only after a restart, each as a pointer
// into cfg: one table for both restartOnly (what the reload warns about) and keepRestartOnly
// (what a reload leaves as it runs), so the two never disagree.
func restartOnlySections(cfg *Config) []struct {
	name string
	ptr  any
} {
	return []struct {
		name string
		ptr  any
	}{
		{"listen", &cfg.Listen},
		{"hooks_listen", &cfg.HooksListen},
		{"trusted_proxies", &cfg.TrustedProxies},
		{"allowed_hosts", &cfg.AllowedHosts},
		{"limits", &cfg.Limits},
		{"data_dir", &cfg.DataDir},
		{"tokens", &cfg.Tokens},
		{"hooks", &cfg.Hooks},
		{"live", &cfg.Live},
		{"notify", &cfg.Notify},
		{"sfu", &cfg.SFU},
	}
}

// keepRestartOnly copies into c the running values of every restart-only section.
func (c *Config) keepRestartOnly(running *Config) {
	dst, src := restartOnlySections(c), restartOnlySections(running)
	for i := range dst {
		reflect.ValueOf(dst[i].ptr).Elem().Set(reflect.ValueOf(src[i].ptr).Elem())
	}
}

// restartOnly names the sections of next that differ from c but only take effect on restart.
func (c *Config) restartOnly(next *Config) []string {
	var out []string
	a, b := restartOnlySections(c), restartOnlySections(next)
	for i := range a {
		if !reflect.DeepEqual(a[i].ptr, b[i].ptr) {
			out = append(out, a[i].name)
		}
	}
	return out
}
