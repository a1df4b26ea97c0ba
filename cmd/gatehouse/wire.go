package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"gatehouse/authz"
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

// builder constructs one method's backend. run, if set, is started in its own goroutine with the
// generation's context; stop, if set, is called when the generation is replaced.
type builder func(cfg *Config, d deps, log *slog.Logger) (b authz.Backend, run func(context.Context), stop func(), err error)

// deps are the long-lived objects that outlive a generation and that builders may use.
type deps struct {
	issuer *jwks.Issuer // gatehouse's own token issuer; nil in commands that need none
	// prev is the running generation a reload replaces (nil at start). Builders may take over its
	// unchanged parts (the jwt method's providers); prev still stops its own references later.
	prev *generation
}

// builders is the explicit table of methods (no self-registration).
func builders() map[string]builder {
	return map[string]builder{
		"internal": func(cfg *Config, _ deps, _ *slog.Logger) (authz.Backend, func(context.Context), func(), error) {
			return users.New(*cfg.Auth.Internal), nil, nil, nil
		},
		"keys": func(cfg *Config, _ deps, _ *slog.Logger) (authz.Backend, func(context.Context), func(), error) {
			b, err := keys.New(*cfg.Auth.Keys, nil)
			return b, nil, nil, err
		},
		"jwt": func(cfg *Config, d deps, log *slog.Logger) (authz.Backend, func(context.Context), func(), error) {
			var c jwks.Config
			if cfg.Auth.JWT != nil {
				c = *cfg.Auth.JWT
			}
			opts := []jwks.Option{jwks.WithLogger(log)}
			if d.issuer != nil {
				opts = append(opts, jwks.WithIssuer(d.issuer))
			}
			if prev, ok := d.prev.backend("jwt").(*jwks.Backend); ok {
				// Unchanged providers keep their keys, refresh goroutine and token cache: a reload
				// during an IdP outage refuses nothing and fetches nothing. Reference counted:
				// prev's stop releases its share, the last Close stops the goroutine.
				opts = append(opts, jwks.WithPrevious(prev))
			}
			b, err := jwks.New(c, opts...) // starts (or shares) its key fetchers; Close releases them
			if err != nil {
				return nil, nil, nil, err
			}
			return b, nil, func() { _ = b.Close() }, nil
		},
		"http": func(cfg *Config, _ deps, log *slog.Logger) (authz.Backend, func(context.Context), func(), error) {
			b, err := httpauth.New(*cfg.Auth.HTTP, httpauth.WithLogger(log))
			if err != nil {
				return nil, nil, nil, err
			}
			return b, nil, func() { _ = b.Close() }, nil
		},
	}
}

// build creates every configured backend and the chain over them. Background tasks start only
// when start is true (the CLI's check command builds without starting refreshers it won't need).
func build(parent context.Context, cfg *Config, d deps, log *slog.Logger, start bool) (*generation, error) {
	ctx, cancel := context.WithCancel(parent)
	g := &generation{cfg: cfg, cancel: cancel}
	table := builders()
	methods := make([]authz.Method, 0, len(cfg.Auth.Methods))
	for _, m := range cfg.Auth.Methods {
		mk, ok := table[m.Name]
		if !ok { // loadConfig rejects unknown names; this guards the table staying in sync
			g.stop()
			return nil, fmt.Errorf("method %q has no builder", m.Name)
		}
		b, run, stop, err := mk(cfg, d, log.With("method", m.Name))
		if err != nil {
			g.stop()
			return nil, fmt.Errorf("auth method %s: %w", m.Name, err)
		}
		if stop != nil {
			g.stops = append(g.stops, stop)
		}
		if run != nil && start {
			done := make(chan struct{})
			go func() { defer close(done); run(ctx) }()
			g.stops = append(g.stops, func() { <-done })
		}
		methods = append(methods, authz.Method{Name: m.Name, Backend: b, Actions: m.Actions})
	}
	g.chain = authz.NewChain(methods...).WithPolicy(policy(cfg))
	return g, nil
}

// policy is what the engine applies to every request under cfg.
func policy(cfg *Config) authz.Policy {
	return authz.Policy{
		QueryTokenOnHTTP: cfg.Auth.QueryTokenOnHTTP || (cfg.Auth.JWT != nil && cfg.Auth.JWT.QueryTokenOnHTTP),
		DecisionTimeout:  cfg.Auth.DecisionTimeout.Std(),
	}
}

// backend returns the backend of the named method, or nil (also for a nil generation).
func (g *generation) backend(name string) authz.Backend {
	if g == nil || g.chain == nil {
		return nil
	}
	for _, m := range g.chain.Methods() {
		if m.Name == name {
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
// rotate-key` is picked up; keeping the same *jwks.Issuer also lets the jwt backend keep its
// verified-token cache across the reload.
func loadIssuer(cfg *Config, running *jwks.Issuer) (*jwks.Issuer, error) {
	if running != nil {
		if _, err := running.Reload(); err != nil {
			return nil, err
		}
		return running, nil
	}
	return jwks.LoadIssuer(filepath.Join(cfg.DataDir, "keys"), issuerOptions(cfg)...)
}

// issuerOptions are the jwks.Issuer settings from the tokens section.
func issuerOptions(cfg *Config) []jwks.IssuerOption {
	return []jwks.IssuerOption{
		jwks.IssuerName(cfg.Tokens.Issuer),
		jwks.IssuerAudience(cfg.Tokens.Audience),
		jwks.IssuerMaxTTL(cfg.Tokens.MaxTTL.Std()),
	}
}
