package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"gatehouse/authz"
	"gatehouse/protocols/mediamtx"
)

// server owns everything a running gatehouse has: the engine, the current generation of
// backends, both listeners, and the reload machinery.
type server struct {
	path   string
	log    *slog.Logger
	level  *slog.LevelVar
	engine *authz.Engine

	mu  sync.Mutex // guards gen and sum; held only while swapping, never across I/O
	gen *generation
	sum [32]byte
}

func newLogger(w io.Writer, cfg *Config, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs gatehouse until ctx ends or SIGINT/SIGTERM arrives. ready, if not nil, receives the
// bound addresses once both listeners accept connections (tests use it).
func serve(ctx context.Context, path string, stderr io.Writer, ready func(public, hooks net.Addr)) error {
	src, cfg, err := readConfig(path)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	lv, _ := cfg.logLevel()
	level.Set(lv)
	log := newLogger(stderr, cfg, level)
	for _, w := range cfg.warnings() {
		log.Warn("config", "warning", w)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	gen, err := build(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	s := &server{path: path, log: log, level: level, gen: gen, sum: sha256.Sum256(src)}
	s.engine = authz.NewEngine(gen.chain, log.With("component", "authz"))
	defer func() { s.mu.Lock(); s.gen.stop(); s.mu.Unlock() }()

	publicLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	hooksLn, err := net.Listen("tcp", cfg.HooksListen)
	if err != nil {
		publicLn.Close()
		return fmt.Errorf("hooks_listen %s: %w", cfg.HooksListen, err)
	}
	public := newHTTPServer(s.publicMux(), log)
	hooks := newHTTPServer(s.hooksMux(), log)

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for _, p := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{public, publicLn}, {hooks, hooksLn}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	log.Info("gatehouse started", "version", version(), "listen", publicLn.Addr().String(), "hooks_listen", hooksLn.Addr().String(), "methods", methodList(cfg))
	if ready != nil {
		ready(publicLn.Addr(), hooksLn.Addr())
	}

	wg.Add(1)
	go func() { defer wg.Done(); s.reloadLoop(ctx, *cfg.WatchConfig) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	stop() // the reload loop ends with ctx
	_ = public.Shutdown(sctx)
	_ = hooks.Shutdown(sctx)
	wg.Wait()
	return runErr
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func methodList(cfg *Config) []string {
	out := make([]string, len(cfg.Auth.Methods))
	for i, m := range cfg.Auth.Methods {
		out[i] = m.Name
	}
	return out
}

func readConfig(path string) ([]byte, *Config, error) {
	var src []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read config: %w", err)
		}
		src = b
	}
	name := path
	if name == "" {
		name = "defaults"
	}
	cfg, err := parseConfig(name, src)
	return src, cfg, err
}

// reloadLoop reloads on SIGHUP and, when watch is set, when the file's content changes (polled:
// portable, and editors that replace the file by rename are handled).
func (s *server) reloadLoop(ctx context.Context, watch bool) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if watch && s.path != "" {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.reload(ctx, "signal")
		case <-tick:
			b, err := os.ReadFile(s.path)
			if err != nil {
				continue
			}
			s.mu.Lock()
			changed := sha256.Sum256(b) != s.sum
			s.mu.Unlock()
			if changed {
				s.reload(ctx, "file change")
			}
		}
	}
}

// reload validates the file and swaps in a new generation. On any error the running config stays.
// Requests in flight finish on the chain they started with.
func (s *server) reload(ctx context.Context, why string) {
	src, cfg, err := readConfig(s.path)
	if err != nil {
		s.log.Error("reload failed; keeping the running config", "trigger", why, "errors", err.Error())
		if len(src) > 0 {
			s.mu.Lock()
			s.sum = sha256.Sum256(src) // do not retry the same broken file every tick
			s.mu.Unlock()
		}
		return
	}
	gen, err := build(ctx, cfg, s.log, true)
	if err != nil {
		s.log.Error("reload failed; keeping the running config", "trigger", why, "error", err.Error())
		return
	}
	for _, w := range cfg.warnings() {
		s.log.Warn("config", "warning", w)
	}
	s.mu.Lock()
	old := s.gen
	s.gen, s.sum = gen, sha256.Sum256(src)
	s.engine.Swap(gen.chain)
	s.mu.Unlock()
	if lv, err := cfg.logLevel(); err == nil {
		s.level.Set(lv)
	}
	old.stop()
	s.log.Info("config reloaded", "trigger", why, "methods", methodList(cfg))
}

func (s *server) publicMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

func (s *server) hooksMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("/hooks/mediamtx", mediamtx.New(s.engine))
	return mux
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(map[string]string{"status": "ok", "version": version()})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}
