package main

import (
	"bytes"
	"errors"
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
	"gatehouse/authz/state"
	"gatehouse/backends/keys"
	"gatehouse/backends/users"
	"gatehouse/protocols/forwardauth"
	"gatehouse/protocols/mediamtx"
	"gatehouse/protocols/nginxrtmp"
	"gatehouse/protocols/ome"
	"gatehouse/protocols/srs"
	"gatehouse/sfu"
	"gatehouse/web"
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
	// Web turns on the browser app (grid, /watch, /manage, OIDC login); nil: the SFU's bare
	// pages only.
	Web *web.Config `yaml:"web"`
	// State says where keys, bans, counters and revocations live: memory (default: this process,
	// keys in data_dir) or redis (shared by every replica). Restart to change.
	State state.Config `yaml:"state"`
}

// TokensConfig configures the tokens gatehouse mints (gatehouse token) and publishes at
// /.well-known/jwks.json. The Ed25519 signing key lives in data_dir/keys.
type TokensConfig struct {
	Issuer   string        `yaml:"issuer"`   // the iss claim; default "gatehouse"
	Audience string        `yaml:"audience"` // the aud claim, required on own tokens; default: data_dir/keys/audience (random, made on first run)
	MaxTTL   conf.Duration `yaml:"max_ttl"`  // longest lifetime minted or accepted; default 24h (tokens.DefaultMaxTTL)
}

// HooksConfig holds each streaming-server adapter's settings. Every adapter is always mounted on
// the hooks listener; these only tune it.
type HooksConfig struct {
	MediaMTX    mediamtx.Config    `yaml:"mediamtx"`
	NginxRTMP   nginxrtmp.Config   `yaml:"nginx_rtmp"`
	OME         ome.Config         `yaml:"ome"`
	SRS         srs.Config         `yaml:"srs"`
	ForwardAuth forwardauth.Config `yaml:"forward_auth"`
	// AllowedHosts are the DNS names, besides localhost, that the streaming servers may call the
	// hooks listener by (its Host header); IP literals are always fine. Others get 421, and
	// browsers (Origin, Sec-Fetch-*) get 403, except on /hooks/forward-auth (hooksGuard).
	// Default none.
	AllowedHosts hostList `yaml:"allowed_hosts"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// AuthConfig lists the method instances in evaluation order. Each instance has a type (an entry
// of methodTypes), an id that is unique in the file and names it in decision logs
// (backend=<id>), and its own settings:
//
//	methods:
//	  - internal                                  # type and id internal, settings auth.internal
//	  - {method: internal, actions: [api]}        # the same, limited to some actions
//	  - {type: http, id: billing, actions: [publish], config: {address: https://a.example/auth}}
//	  - {type: jwt, id: staff, config: {providers: [...]}}
//
// An entry without config takes its settings from the section named like its type
// (auth.internal, auth.keys, auth.jwt, auth.http); every type but jwt needs settings from one of
// the two. Without methods, every configured section is one instance, in methodTypes order.
type AuthConfig struct {
	Methods []MethodRef
	// sections are the auth.<type> settings, decoded by the type's factory, by type name.
	sections map[string]any

	// DecisionTimeout bounds every decision, whichever adapter asked (authz.Policy; default 5s).
	DecisionTimeout conf.Duration
	// QueryTokenOnHTTP accepts a token from any query parameter (token, jwt, access_key, an SRS or
	// OME extra name) over HTTP protocols, for every method (authz.Policy). Default false. The
	// jwt section's query_token_on_http, where it was first configured, still enables it too.
	QueryTokenOnHTTP bool
	// BruteForce is auth.bruteforce (nil: authz.DefaultBruteForce).
	BruteForce *BruteForceConfig
}

// MethodRef is one entry of auth.methods: one instance of a method type. A bare name is
// {type: name}; method is the older spelling of type.
type MethodRef struct {
	Type    string         // an entry of methodTypes
	ID      string         // unique among the methods; default the type
	Actions []authz.Action // nil: every action
	// settings are the instance's decoded settings (a pointer to the type's config struct), or
	// nil for a type whose settings may be left out.
	settings any
	config   *yaml.Node // the entry's config, nil when it has none
	node     *yaml.Node
}

// methodKeys are the keys of a mapping entry in auth.methods.
var methodKeys = []string{"type", "method", "id", "actions", "config"}

// UnmarshalYAML decodes one entry; its config is decoded by the type's factory.
func (m *MethodRef) UnmarshalYAML(n *yaml.Node) error {
	m.node = n
	if n.Kind == yaml.ScalarNode {
		m.Type, m.ID = n.Value, n.Value
		return checkType(n, m.Type)
	}
	if n.Kind != yaml.MappingNode {
		return conf.Errorf(n, "a method entry is a type name (internal) or a mapping {type: http, id: billing, config: {...}}")
	}
	var (
		errs    []error
		typeKey *yaml.Node // the type: or method: key, nil when the entry has neither
		typeVal *yaml.Node // its value
		typeOK  bool       // the type decoded as a string
		seen    = map[string]bool{}
	)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			errs = append(errs, conf.Errorf(k, "key %q is given twice", k.Value))
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "type", "method":
			if typeKey != nil {
				errs = append(errs, conf.Errorf(k, "give the type once (method is the older spelling of type)"))
				continue
			}
			typeKey, typeVal = k, v
			err := v.Decode(&m.Type)
			typeOK = err == nil
			errs = append(errs, err)
		case "id":
			errs = append(errs, v.Decode(&m.ID))
			if m.ID != "" && !validID(m.ID) {
				errs = append(errs, conf.Errorf(v, "id %q may contain only letters, digits, '.', '_' and '-'", m.ID))
			}
		case "actions":
			var names []string
			if err := v.Decode(&names); err != nil {
				errs = append(errs, err)
				continue
			}
			for j, a := range names {
				act, err := authz.ParseAction(a)
				if err != nil {
					errs = append(errs, conf.Errorf(v.Content[j], "%v", err))
					continue
				}
				m.Actions = append(m.Actions, act)
			}
		case "config":
			if !isNull(v) {
				m.config = v
			}
		default:
			errs = append(errs, conf.Errorf(k, "unknown key %q (known keys: %s)", k.Value, strings.Join(methodKeys, ", ")))
		}
	}
	switch {
	case typeKey == nil:
		errs = append(errs, conf.Errorf(n, "a method entry needs a type: write {type: http, id: billing, config: {...}} or {method: internal, actions: [publish]}"))
	case typeOK:
		if err := checkType(typeVal, m.Type); err != nil {
			errs = append(errs, err)
		} else if m.config != nil {
			m.settings, err = methodTypeNamed(m.Type).factory.decode(m.config)
			errs = append(errs, err)
		}
	}
	if m.ID == "" {
		m.ID = m.Type
	}
	return conf.Join(errs...)
}

// checkType reports a type that methodTypes does not list, with the known ones.
func checkType(n *yaml.Node, name string) error {
	if methodTypeNamed(name) != nil {
		return nil
	}
	var known []string
	for _, t := range methodTypes() {
		known = append(known, t.name)
	}
	return conf.Errorf(n, "unknown method type %q (known types: %s)", name, strings.Join(known, ", "))
}

// validID reports whether s may be a method id: it is logged as backend=<id> and named in errors.
func validID(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// UnmarshalYAML decodes the auth section: methods, and one section per method type, each decoded
// by its type's factory. It resolves every method's settings and reports every problem (unknown
// keys and types, a repeated id, a method without settings) with its line.
func (a *AuthConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return conf.Errorf(n, "auth must be a mapping (methods: [...] and one section per method type)")
	}
	known := []string{"methods", "decision_timeout", "query_token_on_http", "bruteforce"}
	for _, t := range methodTypes() {
		known = append(known, t.name)
	}
	var errs []error
	seenKey := map[string]bool{}
	empty := map[string]*yaml.Node{} // sections written with nothing under them
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case seenKey[k.Value]:
			errs = append(errs, conf.Errorf(k, "key %q is given twice", k.Value))
			continue
		case !slices.Contains(known, k.Value):
			errs = append(errs, conf.Errorf(k, "unknown key %q (known keys: %s)", k.Value, strings.Join(known, ", ")))
			continue
		}
		seenKey[k.Value] = true
		switch k.Value {
		case "methods":
			errs = append(errs, a.decodeMethods(v)) // keep going: report section errors too
			continue
		case "decision_timeout":
			if err := v.Decode(&a.DecisionTimeout); err != nil {
				errs = append(errs, err)
			} else if a.DecisionTimeout <= 0 {
				// A written 0 would silently mean the default: only an absent key does.
				errs = append(errs, conf.Errorf(v, "decision_timeout must not be 0 or negative: leave the key out for the default (5s), or write a positive value"))
			}
			continue
		case "query_token_on_http":
			errs = append(errs, v.Decode(&a.QueryTokenOnHTTP))
			continue
		case "bruteforce":
			a.BruteForce = &BruteForceConfig{}
			errs = append(errs, v.Decode(a.BruteForce))
			continue
		}
		if isNull(v) {
			empty[k.Value] = v // "http:" with nothing under it configures nothing
			continue
		}
		s, err := methodTypeNamed(k.Value).factory.decode(v)
		errs = append(errs, err)
		if err == nil {
			if a.sections == nil {
				a.sections = map[string]any{}
			}
			a.sections[k.Value] = s
		}
	}
	errs = append(errs, a.resolve(seenKey, empty)...)
	return conf.Join(errs...)
}

// decodeMethods decodes auth.methods, keeping entries that have errors too (yaml drops them from a
// sequence) so that later checks and their indexes see every entry.
func (a *AuthConfig) decodeMethods(n *yaml.Node) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return conf.Errorf(n, "methods is a list: [internal, jwt] or [{type: http, id: billing, config: {...}}]")
	}
	a.Methods = make([]MethodRef, len(n.Content))
	errs := make([]error, len(n.Content))
	for i, c := range n.Content {
		errs[i] = a.Methods[i].UnmarshalYAML(c)
	}
	return conf.Join(errs...)
}

// resolve gives every method without config the settings of its type's section and checks that
// ids are unique. present says which keys the file has (a section with errors is present but not
// in sections: its errors are reported already); empty holds the sections written with nothing
// under them, which a method of that type cannot use (it would silently deny everything).
func (a *AuthConfig) resolve(present map[string]bool, empty map[string]*yaml.Node) []error {
	var errs []error
	first := map[string]int{}
	for i := range a.Methods {
		m := &a.Methods[i]
		if m.ID != "" {
			if j, dup := first[m.ID]; dup {
				errs = append(errs, conf.Errorf(m.node, "method id %q is used twice (also auth.methods[%d]); give each instance its own id", m.ID, j))
			} else {
				first[m.ID] = i
			}
		}
		t := methodTypeNamed(m.Type)
		if t == nil || m.config != nil {
			continue // reported, or settings decoded from config
		}
		if s, ok := a.sections[m.Type]; ok {
			m.settings = s
		} else if n := empty[m.Type]; n != nil && !t.optional && !t.emptyOK {
			errs = append(errs, conf.Errorf(n, "auth.%s is empty, so method %q would deny everything: give it its settings, or remove it from auth.methods", m.Type, m.ID))
		} else if !t.optional && !present[m.Type] {
			errs = append(errs, conf.Errorf(m.node, "method %q has no settings: add config: {...} to the entry, or an auth.%s section", m.ID, m.Type))
		}
	}
	// One secret in two keys instances would be decided by whichever comes first, under two ids.
	for i := range a.Methods {
		ci, ok := a.Methods[i].settings.(*keys.Config)
		for j := i + 1; ok && ci != nil && j < len(a.Methods); j++ {
			if cj, ok := a.Methods[j].settings.(*keys.Config); ok && cj != nil {
				if ki, kj, shared := ci.SharedSecret(*cj); shared {
					errs = append(errs, conf.Errorf(a.Methods[j].node, "method %q: its keys[%d] has the same secret as keys[%d] of method %q; a stream key belongs to one instance",
						a.Methods[j].ID, kj, ki, a.Methods[i].ID))
				}
			}
		}
	}
	return errs
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
	if err := c.checkNodeIDs(name, src); err != nil {
		return nil, err
	}
	return &c, nil
}

// checkNodeIDs refuses two names for one node: sfu.edge.node_id (in pulls) and state.node_id (in
// the fleet) must agree when both are given (the edge defaults to the fleet's).
func (c *Config) checkNodeIDs(name string, src []byte) error {
	if c.SFU == nil || c.SFU.Edge.NodeID == "" || c.State.NodeID == "" || c.SFU.Edge.NodeID == c.State.NodeID {
		return nil
	}
	line := 0
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) == nil && len(doc.Content) > 0 {
		line = conf.Value(conf.Value(conf.Value(doc.Content[0], "sfu"), "edge"), "node_id").Line
	}
	return &conf.Errors{Problems: []conf.Problem{{File: name, Line: line, Path: "sfu.edge.node_id",
		Msg: fmt.Sprintf("%q differs from state.node_id %q: a node has one name (leave sfu.edge.node_id out: it defaults to state.node_id)", c.SFU.Edge.NodeID, c.State.NodeID)}}}
}

// empty reports whether the auth section configures nothing (absent, null or {}).
func (a *AuthConfig) empty() bool {
	return len(a.Methods) == 0 && len(a.sections) == 0
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
	if len(c.Auth.Methods) == 0 {
		if _, ok := c.Auth.sections["internal"]; !ok {
			var u users.Config
			if err := conf.Decode("defaults", []byte(defaultUsers), nil, &u); err != nil {
				return fmt.Errorf("built-in defaults: %w", err)
			}
			if c.Auth.sections == nil {
				c.Auth.sections = map[string]any{}
			}
			c.Auth.sections["internal"] = &u
		}
		for _, t := range methodTypes() { // every configured section, in catalogue order
			if s, ok := c.Auth.sections[t.name]; ok {
				c.Auth.Methods = append(c.Auth.Methods, MethodRef{Type: t.name, ID: t.name, settings: s})
			}
		}
	}
	if c.Web != nil && c.Web.Login != nil && !slices.ContainsFunc(c.Auth.Methods, func(m MethodRef) bool { return m.Type == "jwt" }) {
		return errors.New("web.login: the viewer tokens it hands to pages are gatehouse tokens, verified by a method of type jwt: add one to auth.methods (- type: jwt)")
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
	seen := map[any]bool{} // instances without config share their section's settings
	for _, m := range c.Auth.Methods {
		if s, ok := m.settings.(interface{ Warnings() []string }); ok && !seen[s] {
			seen[s] = true
			w = append(w, s.Warnings()...)
		}
	}
	if c.Web != nil && c.Web.Login == nil && !slices.ContainsFunc(c.Auth.Methods, func(m MethodRef) bool { return m.Type == "jwt" }) {
		w = append(w, "web: /manage's local login calls the API with gatehouse tokens, verified by a method of type jwt; add one to auth.methods or /manage shows no data")
	}
	if c.Web != nil && c.Web.Login != nil {
		if msg := plainIssuerWarning(c.Web.Login.Issuer); msg != "" {
			w = append(w, msg)
		}
	}
	if c.Hooks.OME.Secret == "" && !reflect.ValueOf(c.Hooks.OME).IsZero() {
		w = append(w, "hooks.ome: no secret: /hooks/ome accepts unsigned callbacks, so anyone who reaches the hooks listener can forge OME openings and closings; set hooks.ome.secret to OME's <SecretKey>")
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
		{"watch_config", &cfg.WatchConfig},
		{"trusted_proxies", &cfg.TrustedProxies},
		{"allowed_hosts", &cfg.AllowedHosts},
		{"limits", &cfg.Limits},
		{"data_dir", &cfg.DataDir},
		{"tokens", &cfg.Tokens},
		{"hooks", &cfg.Hooks},
		{"live", &cfg.Live},
		{"notify", &cfg.Notify},
		{"sfu", &cfg.SFU},
		{"web", &cfg.Web},
		{"state", &cfg.State},
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
