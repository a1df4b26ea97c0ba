package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/metrics"
	"gatehouse/authz/tokens"
	"gatehouse/backends/httpauth"
	"gatehouse/backends/jwks"
	"gatehouse/backends/keys"
	"gatehouse/backends/users"
)

// generation is one configuration's set of built backends: the chain the engine evaluates and
// what must be stopped when a newer configuration replaces it.
type generation struct {
	cfg    *Config
	chain  *authz.Chain
	cancel context.CancelFunc
	stops  []func()
}

// stop ends every background task and releases every resource of the generation.
func (g *generation) stop() {
	g.cancel()
	for i := len(g.stops) - 1; i >= 0; i-- {
		g.stops[i]()
	}
}

// deps are the long-lived objects that outlive a generation and that factories may use.
type deps struct {
	issuer *tokens.Issuer // gatehouse's own token issuer; nil in commands that need none
	// prev is the running generation a reload replaces (nil at start). Factories may take over its
	// unchanged parts (a jwt instance's providers, from the instance with the same id); prev still
	// stops its own references later.
	prev *generation
	// keyStore holds managed stream keys (data_dir/streamkeys.db); nil when it could not be
	// opened or the command needs none: the keys method then knows only the YAML keys.
	keyStore keys.Store
	// metrics receives upstream calls (http methods); nil in commands that serve none.
	metrics *metrics.Metrics
}

// instance is what a factory builds one method instance from, besides its settings.
type instance struct {
	id string // the method's id: its name in the chain and in decision logs
	deps
	log *slog.Logger
}

// methodType is one entry of the method catalogue: a type name as written in auth.methods and
// as the name of its section auth.<name>, and the factory that decodes and builds its instances.
type methodType struct {
	name string
	// optional: an instance may have no settings (jwt: it then trusts gatehouse's own tokens).
	optional bool
	// emptyOK: a section written with nothing under it is useful (keys: only the managed keys
	// of data_dir); for other types it is an error, since it would silently deny everything.
	emptyOK bool
	factory methodFactory
}

// methodTypes is the catalogue of method types, in documentation order (also the order of the
// instances made from sections when auth.methods is left out). It is the one table to extend
// with a new backend type; nothing registers itself.
func methodTypes() []methodType {
	return []methodType{
		{name: "internal", factory: factory(func(c *users.Config, _ instance) (authz.Backend, func(context.Context), func(), error) {
			return users.New(*c), nil, nil, nil
		})},
		{name: "keys", emptyOK: true, factory: factory(func(c *keys.Config, in instance) (authz.Backend, func(context.Context), func(), error) {
			opts := []keys.Option{keys.WithInstance(keysInstance(in.id))}
			if in.keyStore != nil { // managed keys (gatehouse keys create, /api/v1/keys)
				opts = append(opts, keys.WithStore(in.keyStore))
			}
			b, err := keys.New(*c, nil, opts...)
			return b, nil, nil, err
		})},
		{name: "jwt", optional: true, factory: factory(func(c *jwks.Config, in instance) (authz.Backend, func(context.Context), func(), error) {
			opts := []jwks.Option{jwks.WithLogger(in.log)}
			if in.issuer != nil {
				opts = append(opts, jwks.WithIssuer(in.issuer))
			}
			if prev, ok := in.prev.backend(in.id).(*jwks.Backend); ok {
				// Unchanged providers of the instance with the same id keep their keys, refresh
				// goroutine and token cache: a reload during an IdP outage refuses nothing and
				// fetches nothing. Reference counted: prev's stop releases its share, the last
				// Close stops the goroutine.
				opts = append(opts, jwks.WithPrevious(prev))
			}
			b, err := jwks.New(*c, opts...) // starts (or shares) its key fetchers; Close releases them
			if err != nil {
				return nil, nil, nil, err
			}
			return b, nil, func() { _ = b.Close() }, nil
		})},
		{name: "http", factory: factory(func(c *httpauth.Config, in instance) (authz.Backend, func(context.Context), func(), error) {
			opts := []httpauth.Option{httpauth.WithLogger(in.log)}
			if o := in.upstreamObserver(in.id); o != nil {
				opts = append(opts, httpauth.WithObserver(o))
			}
			b, err := httpauth.New(*c, opts...)
			if err != nil {
				return nil, nil, nil, err
			}
			return b, nil, func() { _ = b.Close() }, nil
		})},
	}
}

// keysInstance is the instance name a keys method gives its YAML keys' ids: none for the
// default id "keys" (ids config:<n>, as before several instances were possible), its id for any
// other ("config:<id>:<n>"), so two instances' ids never collide.
func keysInstance(id string) string {
	if id == "keys" {
		return ""
	}
	return id
}

// methodTypeNamed returns the catalogue entry of the type name, or nil.
func methodTypeNamed(name string) *methodType {
	for _, t := range methodTypes() {
		if t.name == name {
			return &t
		}
	}
	return nil
}

// methodFactory decodes one instance's settings and builds its backend.
type methodFactory interface {
	// decode strictly decodes a settings node (unknown keys are errors, every problem with its
	// line) into the type's config, returned as a pointer.
	decode(n *yaml.Node) (settings any, err error)
	// build constructs the backend from what decode returned (nil: the zero config). run, if
	// set, is started in its own goroutine with the generation's context; stop, if set, is
	// called when the generation is replaced.
	build(settings any, in instance) (b authz.Backend, run func(context.Context), stop func(), err error)
}

// factory is the methodFactory of a type whose settings decode into C (through C's own
// UnmarshalYAML, which each backend's Config has) and whose backend build makes.
func factory[C any](build func(c *C, in instance) (authz.Backend, func(context.Context), func(), error)) methodFactory {
	return typedFactory[C](build)
}

type typedFactory[C any] func(c *C, in instance) (authz.Backend, func(context.Context), func(), error)

func (f typedFactory[C]) decode(n *yaml.Node) (any, error) {
	c := new(C)
	if err := conf.Strict(n, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (f typedFactory[C]) build(settings any, in instance) (authz.Backend, func(context.Context), func(), error) {
	c, _ := settings.(*C)
	if c == nil {
		c = new(C)
	}
	return f(c, in)
}

// build creates every configured backend and the chain over them. Background tasks start only
// when start is true (the CLI's check command builds without starting refreshers it won't need).
func build(parent context.Context, cfg *Config, d deps, log *slog.Logger, start bool) (*generation, error) {
	ctx, cancel := context.WithCancel(parent)
	g := &generation{cfg: cfg, cancel: cancel}
	methods := make([]authz.Method, 0, len(cfg.Auth.Methods))
	for _, m := range cfg.Auth.Methods {
		t := methodTypeNamed(m.Type)
		if t == nil { // loadConfig rejects unknown types; this guards a hand-built Config
			g.stop()
			return nil, fmt.Errorf("method %q: unknown type %q", m.ID, m.Type)
		}
		b, run, stop, err := t.factory.build(m.settings, instance{id: m.ID, deps: d, log: log.With("method", m.ID)})
		if err != nil {
			g.stop()
			return nil, fmt.Errorf("auth method %s: %w", m.ID, err)
		}
		if stop != nil {
			g.stops = append(g.stops, stop)
		}
		if run != nil && start {
			done := make(chan struct{})
			go func() { defer close(done); run(ctx) }()
			g.stops = append(g.stops, func() { <-done })
		}
		methods = append(methods, authz.Method{Name: m.ID, Backend: b, Actions: m.Actions})
	}
	g.chain = authz.NewChain(methods...).WithPolicy(policy(cfg))
	return g, nil
}

// policy is what the engine applies to every request under cfg. A jwt instance's
// query_token_on_http (where the setting was first configured) still turns the policy on.
func policy(cfg *Config) authz.Policy {
	q := cfg.Auth.QueryTokenOnHTTP
	for _, m := range cfg.Auth.Methods {
		if c, ok := m.settings.(*jwks.Config); ok && c != nil && c.QueryTokenOnHTTP {
			q = true
		}
	}
	return authz.Policy{QueryTokenOnHTTP: q, DecisionTimeout: cfg.Auth.DecisionTimeout.Std(), BruteForce: cfg.Auth.BruteForce.policy()}
}

// backend returns the backend of the method with the id, or nil (also for a nil generation).
func (g *generation) backend(id string) authz.Backend {
	if g == nil || g.chain == nil {
		return nil
	}
	for _, m := range g.chain.Methods() {
		if m.Name == id {
			return m.Backend
		}
	}
	return nil
}

// readier is implemented by backends that load state in the background (JWKS key sets).
type readier interface{ Ready() error }

// ready reports the first backend of the chain that is not ready yet.
func (g *generation) ready() error {
	for _, m := range g.chain.Methods() {
		if r, ok := m.Backend.(readier); ok {
			if err := r.Ready(); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
	}
	return nil
}

// loadIssuer returns gatehouse's token issuer. With running nil it opens (creating on first run)
// the signing key under cfg's data_dir/keys with cfg's tokens settings. With a running issuer it
// keeps that issuer (same key directory, iss, aud and max_ttl, whatever cfg says: data_dir and
// tokens apply after a restart) and only re-reads its key files, so a key written by `gatehouse
// rotate-key` is picked up; keeping the same *tokens.Issuer also lets the jwt backend keep its
// verified-token cache across the reload.
func loadIssuer(cfg *Config, running *tokens.Issuer) (*tokens.Issuer, error) {
	if running != nil {
		if _, err := running.Reload(); err != nil {
			return nil, err
		}
		return running, nil
	}
	return tokens.LoadIssuer(filepath.Join(cfg.DataDir, "keys"), issuerOptions(cfg)...)
}

// issuerOptions are the tokens.Issuer settings from the tokens section.
func issuerOptions(cfg *Config) []tokens.IssuerOption {
	return []tokens.IssuerOption{
		tokens.IssuerName(cfg.Tokens.Issuer),
		tokens.IssuerAudience(cfg.Tokens.Audience),
		tokens.IssuerMaxTTL(cfg.Tokens.MaxTTL.Std()),
	}
}
