// Package sfubench measures the CPU cost of forwarding media through gatehouse's SFU against a
// naive pion forwarder built like pion's sfu-ws example (Naive), both speaking WHIP/WHEP on
// loopback.
//
// The server under test runs in its own process (Serve, started by StartProcess) so that its
// CPU time can be read exactly from /proc/<pid>/stat. The load generator (Publish, View, Step,
// Sweep) runs a synthetic publisher, about 2.5 Mbit/s of VP8 at 30 fps in 1,200-byte packets
// plus 50 Opus packets per second, each payload ending with a counter and its send time, and N
// WHEP viewers that measure loss (counter gaps), one-way latency (same clock) and join time.
// The result of a step is server CPU microseconds per forwarded packet: CPU time over the
// measured window divided by packets sent in the window times N.
//
// cmd/sfubench is the command-line front end (serve and run) and the only importer: the package
// is internal to it, so none of its names are part of the SFU's API.
package sfubench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
	"gatehouse/sfu"
)

// Sentinel errors of package sfubench.
var (
	// ErrConfig wraps invalid options.
	ErrConfig = errors.New("sfubench: invalid configuration")
	// ErrSignal wraps a WHIP/WHEP exchange that did not return 201.
	ErrSignal = errors.New("sfubench: signalling failed")
	// ErrServer wraps failures of the server process (start, ready line, exit).
	ErrServer = errors.New("sfubench: server process")
)

// Mode selects the server under test.
type Mode string

// Server modes.
const (
	ModeGatehouse Mode = "gatehouse" // gatehouse's sfu package with an allow-all authorizer
	ModeNaive     Mode = "naive"     // Naive, the sfu-ws-style baseline
)

// ParseMode parses a Mode name.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeGatehouse, ModeNaive:
		return Mode(s), nil
	}
	return "", fmt.Errorf("%w: unknown mode %q (want gatehouse or naive)", ErrConfig, s)
}

// Server is a server under test: an HTTP handler for WHIP/WHEP and a Close that stops it.
type Server interface {
	Handler() http.Handler
	Close() error
}

// gatehouseServer runs an SFU with its Run loop.
type gatehouseServer struct {
	sfu    *sfu.SFU
	cancel context.CancelFunc
	done   chan struct{}
}

func (g *gatehouseServer) Handler() http.Handler { return g.sfu.Handler() }

func (g *gatehouseServer) Close() error {
	g.cancel()
	<-g.done
	return g.sfu.Close()
}

// EdgeOptions makes a gatehouse server a node of a fleet (the edge workload), wired the way
// cmd/gatehouse wires sfu.edge: pull tokens from the fleet's signing key and, with Origin, that
// node as the origin of every path. The zero value is a lone server that neither pulls nor
// serves pulls.
type EdgeOptions struct {
	// Keys is the fleet's signing key directory (created on first use); every node of a fleet
	// names the same one. Empty: no pulls either way.
	Keys string
	// NodeID names this node in pulls. Default: a random id.
	NodeID string
	// Origin is the base URL of the node this one pulls every path from ("": none).
	Origin string
	// OriginNode is the origin's node id, if known.
	OriginNode string
}

// NewServer builds the server for mode. The gatehouse SFU gets an authz engine whose only
// backend allows everything (authorisation happens once per session, off the media path),
// an ephemeral UDP port, loopback candidates (local and remote), no session caps and, from
// edge, its place in a fleet. log may be nil.
func NewServer(mode Mode, edge EdgeOptions, log *slog.Logger) (Server, error) {
	if mode != ModeGatehouse && edge != (EdgeOptions{}) {
		return nil, fmt.Errorf("%w: only the gatehouse mode pulls from other nodes", ErrConfig)
	}
	switch mode {
	case ModeNaive:
		return NewNaive(log)
	case ModeGatehouse:
		allow := authz.BackendFunc(func(context.Context, *authz.Request) (authz.Decision, error) {
			return authz.Allowing("sfubench", time.Time{}), nil
		})
		engine := authz.NewEngine(authz.NewChain(authz.Method{Name: "allow", Backend: allow}), nil)
		cfg := sfu.DefaultConfig()
		cfg.UDPPort = 0
		cfg.IncludeLoopback = true
		cfg.Pages = false
		// One load generator on loopback opens every session from one address: lift the caps.
		cfg.MaxSessions, cfg.MaxSessionsPerClient, cfg.MaxViewersPerPath = 1<<20, 1<<20, 1<<20
		cfg.AllowPrivateCandidates = true
		if edge.Keys != "" {
			iss, err := tokens.LoadIssuer(edge.Keys)
			if err != nil {
				return nil, err
			}
			cfg.PullTokens = iss
			cfg.Edge.NodeID = edge.NodeID
			if edge.Origin != "" {
				cfg.Origins = sfu.StaticOrigin{NodeID: edge.OriginNode, BaseURL: edge.Origin}
			}
		} else if edge.Origin != "" {
			return nil, fmt.Errorf("%w: an edge needs the fleet's key directory", ErrConfig)
		}
		s, err := sfu.New(cfg, engine, nil, log)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		g := &gatehouseServer{sfu: s, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(g.done); _ = s.Run(ctx) }()
		return g, nil
	}
	return nil, fmt.Errorf("%w: unknown mode %q", ErrConfig, mode)
}

// ServeConfig configures Serve.
type ServeConfig struct {
	Mode Mode
	// Addr is the HTTP listen address. Default "127.0.0.1:0".
	Addr string
	// Pprof also serves /debug/pprof/profile (CPU profile for ?seconds=N).
	Pprof bool
	// Log receives the server's logs (nil: discard).
	Log *slog.Logger
	// Edge places a gatehouse server in a fleet (the edge workload); zero: a lone server.
	Edge EdgeOptions
}

// ReadyPrefix starts the line Serve writes once it accepts requests, followed by the base URL.
const ReadyPrefix = "sfubench ready "

// Serve runs the server for cfg.Mode on loopback until ctx is done, writing ReadyPrefix and the
// base URL as one line to ready once it listens. It closes the server before returning.
func Serve(ctx context.Context, cfg ServeConfig, ready io.Writer) error {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	srv, err := NewServer(cfg.Mode, cfg.Edge, cfg.Log)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler())
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if _, err := fmt.Fprintf(ready, "%shttp://%s\n", ReadyPrefix, ln.Addr()); err != nil {
		_ = hs.Close()
		<-errc
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	<-errc
	return nil
}
