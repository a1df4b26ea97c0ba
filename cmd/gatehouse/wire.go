package main

import (
	"context"
	"fmt"
	"log/slog"

	"gatehouse/authz"
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
type builder func(cfg *Config, log *slog.Logger) (b authz.Backend, run func(context.Context), stop func(), err error)

// builders is the explicit table of methods (no self-registration).
func builders() map[string]builder {
	return map[string]builder{
		"internal": func(cfg *Config, _ *slog.Logger) (authz.Backend, func(context.Context), func(), error) {
			return users.New(*cfg.Auth.Internal), nil, nil, nil
		},
	}
}

// build creates every configured backend and the chain over them. Background tasks start only
// when start is true (the CLI's check command builds without starting refreshers it won't need).
func build(parent context.Context, cfg *Config, log *slog.Logger, start bool) (*generation, error) {
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
		b, run, stop, err := mk(cfg, log.With("method", m.Name))
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
	g.chain = authz.NewChain(methods...)
	return g, nil
}
