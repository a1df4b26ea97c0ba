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
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/banapi"
	"gatehouse/authz/conf"
	"gatehouse/authz/decisions"
	"gatehouse/authz/live"
	"gatehouse/authz/logline"
	"gatehouse/authz/metrics"
	"gatehouse/authz/notify"
	"gatehouse/authz/revoke"
	"gatehouse/authz/state/redisstate"
	"gatehouse/authz/tokens"
	"gatehouse/backends/keys"
	"gatehouse/protocols/forwardauth"
	"gatehouse/protocols/mediamtx"
	"gatehouse/protocols/nginxrtmp"
	"gatehouse/protocols/ome"
	"gatehouse/protocols/srs"
	"gatehouse/sfu"
	"gatehouse/web"
)

// server owns everything a running gatehouse has: the engine, the current generation of
// backends, both listeners, and the reload machinery.
type server struct {
	path    string
	log     *slog.Logger
	level   *slog.LevelVar
	engine  *authz.Engine
	reg     *live.Registry
	sfu     *sfu.SFU                      // nil when the sfu section is absent
	web     *web.App                      // nil when the web section is absent
	issuer  atomic.Pointer[tokens.Issuer] // reloaded from data_dir on every reload (key rotation)
	keys    keyStore                      // managed stream keys; nil if the store could not be opened
	state   *stateLayer                   // the state section: key store, Redis client and health
	mtx     *mediamtx.Handler             // remembers MediaMTX sessions for kicks and re-checks
	srs     *srs.Handler                  // remembers SRS sessions for re-checks
	ome     *ome.Handler                  // remembers OME publish sessions for re-checks
	fwd     *forwardauth.Handler          // forward auth; its segment cookies end with their key
	revoke  *revoke.Revoker               // ends the live sessions of revoked keys and operator kicks
	recent  *decisions.Recent             // the engine's recent decisions, for /api/v1/decisions and /manage
	metrics *metrics.Metrics              // /metrics; the engine, http methods and state collectors report to it

	mu  sync.Mutex // guards gen and sum; held only while swapping, never across I/O
	gen *generation
	sum [32]byte

	retiring sync.WaitGroup // old generations waiting out retireGrace before they stop
	systemd  sdNotifier     // $NOTIFY_SOCKET: READY, RELOADING and STOPPING for Type=notify units
}

// retireGrace is how long a replaced generation keeps running, so requests that started on it
// (an upstream call, a JWKS fetch) finish instead of being cancelled by the reload.
const retireGrace = 5 * time.Second

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
	out := newLogWriter(stderr)
	defer out.Flush()
	log := newLogger(out, cfg, level)
	flushCtx, stopFlush := context.WithCancel(context.WithoutCancel(ctx))
	flushDone := make(chan struct{})
	go func() { defer close(flushDone); out.Run(flushCtx, 100*time.Millisecond) }()
	defer func() { stopFlush(); <-flushDone }()
	for _, w := range append(cfg.warnings(), configFileWarnings(path, src)...) {
		log.Warn("config", "warning", w)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP is caught before the listeners are announced: its default action ends the process,
	// and a supervisor may send it as soon as it sees "gatehouse started".
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	iss, err := loadIssuer(cfg, nil)
	if err != nil {
		return err
	}
	// Managed stream keys. A store that cannot be opened (corrupt, newer schema, unwritable
	// directory) is logged and left alone: gatehouse serves the YAML keys without it.
	// With state.backend redis the store is shared by every replica; Redis being unreachable is
	// no error here (requests that need it fail closed until it answers, see /readyz).
	st, err := openState(ctx, cfg, log)
	if st == nil {
		return err
	}
	if err != nil {
		log.Error("stream key store unavailable; only keys from the config file work", "error", err.Error())
	}
	defer st.Close() // after bg.Wait below: Run has flushed and returned
	keyStore := st.keys
	if st.sqlite != nil && st.sqlite.ReadOnly() {
		log.Warn("stream key store is read-only: keys work, but cannot be created, rotated or revoked", "file", st.sqlite.Path())
	}
	if st.rdb != nil {
		log.Info("state shared through redis", "addrs", cfg.State.Redis.Addrs, "sentinel_master", cfg.State.Redis.SentinelMaster,
			"key_prefix", cfg.State.Redis.Prefix())
	}
	s := &server{path: path, log: log, level: level, keys: keyStore, state: st, metrics: metrics.New(),
		systemd: newSDNotifier(os.Getenv("NOTIFY_SOCKET"))}
	gen, err := build(ctx, cfg, s.deps(iss, nil), log, true)
	if err != nil {
		return err
	}
	s.gen, s.sum = gen, sha256.Sum256(src)
	s.issuer.Store(iss)
	s.recent = decisions.New(0)
	// The decision line, one per request, is written by logline: slog's bytes at a fraction of
	// slog's cost. It shares the writer (whole lines, under its lock) and the level.
	decisionLog := logline.New(out, cfg.Log.Format == "json", level, slog.String("component", "authz"))
	s.engine = authz.NewEngine(gen.chain, log.With("component", "authz"),
		append([]authz.EngineOption{authz.WithObserver(s.recent), authz.WithMetrics(s.metrics), authz.WithDecisionLog(decisionLog)},
			st.engineOptions()...)...)
	defer func() { // never hold s.mu while a generation waits for its goroutines
		s.mu.Lock()
		g := s.gen
		s.mu.Unlock()
		g.stop()
	}()

	// The live registry and notifications are fed by every adapter; both stop with ctx. Shutdown
	// never waits for webhook deliveries: queued ones (such as offline events of WebRTC sessions
	// that the shutdown itself ends) are abandoned.
	s.reg = live.NewRegistry(live.WithConfig(cfg.Live), live.WithLogger(log.With("component", "live")))
	notifier, err := notify.New(cfg.Notify, log.With("component", "notify"))
	if err != nil {
		return err
	}
	changes, unsubscribe := s.reg.Subscribe()
	defer unsubscribe()
	var bg sync.WaitGroup
	defer bg.Wait() // runs after the deferred cancel below
	bgCtx, bgCancel := context.WithCancel(ctx)
	defer bgCancel()
	bg.Add(2)
	go func() { defer bg.Done(); s.reg.Run(bgCtx) }()
	go func() { defer bg.Done(); _ = notifier.Run(bgCtx, changes) }()
	if st.shared != nil { // pushes failure counts and bans, pulls the other replicas' bans
		bg.Add(1)
		go func() { defer bg.Done(); st.shared.Run(bgCtx) }()
	}
	if keyStore != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			keyStore.Run(bgCtx, func(err error) { log.Warn("stream key store", "error", err.Error()) })
		}()
	}

	if cfg.SFU != nil {
		s.sfu, err = sfu.New(s.sfuConfig(*cfg.SFU), s.engine, s.reg, log.With("component", "sfu"))
		if err != nil {
			return err
		}
		defer s.sfu.Close() // closes every session and waits for its goroutines
		bg.Add(1)
		go func() { defer bg.Done(); _ = s.sfu.Run(bgCtx) }()
	}

	// Revocation: a key revoked or rotated in the store (API or CLI), or an operator's kick, ends
	// the sessions it admitted on every server gatehouse can reach (revoke.Kicker per server).
	// MediaMTX, SRS and OME never ask again about a running session: their adapters remember the
	// requests that admitted them, and the revoker ends those whose grant expires or that a
	// re-check after a reload denies (RecheckAll); the SFU re-checks its own. (OME ends expired
	// sessions itself, at the lifetime it was given, and can end only publishers.)
	mtxCfg := cfg.Hooks.MediaMTX
	mtxCfg.Log = log.With("adapter", "mediamtx")
	s.mtx = mediamtx.New(mtxCfg, s.engine)
	s.srs = srs.New(cfg.Hooks.SRS, s.engine, s.reg, log.With("adapter", "srs"))
	s.ome = ome.New(cfg.Hooks.OME, s.engine, s.reg, log.With("adapter", "ome"))
	s.fwd = forwardauth.New(cfg.Hooks.ForwardAuth, s.engine, s.reg, log.With("adapter", "forward-auth"))
	s.watchState(s.metrics) // metrics.go
	recheckers := []revoke.Rechecker{s.mtx, s.srs, s.ome}
	if s.sfu != nil {
		recheckers = append(recheckers, sfuRechecker{s.sfu, log})
	}
	s.revoke = revoke.New(revoke.Config{}, s.kickers(cfg), []revoke.Lister{s.reg, s.mtx}, s.reg, log.With("component", "revoke"),
		revoke.WithRecheckers(recheckers...))
	bg.Add(1)
	go func() { defer bg.Done(); s.revoke.Run(bgCtx) }()
	if st.fleet != nil { // node record, publish leases, kicks announced by the other nodes
		checkCtx, cancel := context.WithTimeout(ctx, 2*redisstate.DefaultHeartbeat+3*time.Second) // CheckUnique may watch a record for two heartbeats
		err := st.fleet.CheckUnique(checkCtx)
		cancel()
		switch {
		case errors.Is(err, redisstate.ErrNodeIDInUse):
			log.Error("fleet: refusing to start", "error", err.Error())
			return err
		case err != nil:
			log.Warn("fleet: could not check that this node id is unique (Redis away)", "node_id", st.fleet.Self().ID)
		}
		local := s.revoke.Sessions
		st.local.Store(&local)
		st.fleet.OnAnnouncement(func(body []byte) {
			if endedHere(body, s.revoke.Find, s.reg) { // a done hook that reached another node
				return
			}
			var o revoke.Order
			if json.Unmarshal(body, &o) == nil {
				s.revoke.Apply(o, s.engine)
			}
		})
		st.fleet.OnGap(s.revoke.RecheckAll) // kicks lost: re-decide every running session
		fleetChanges, unsubscribeFleet := s.reg.Subscribe()
		defer unsubscribeFleet()
		bg.Add(1)
		go func() { defer bg.Done(); st.fleet.Run(bgCtx, fleetChanges) }()
		// Every node lists the fleet's live streams: its own written to Redis, the others' read.
		streamChanges, unsubscribeStreams := s.reg.Subscribe()
		defer unsubscribeStreams()
		bg.Add(1)
		go func() { defer bg.Done(); st.fleet.Streams(s.reg, s.reg).Run(bgCtx, streamChanges) }()
		log.Info("fleet node", "node_id", st.fleet.Self().ID, "node_url", st.fleet.Self().URL)
	}
	if g, ok := keyStore.(interface{ OnGap(func()) }); ok {
		// Revocations lost (beyond the feed's retention, or by Redis): re-decide every running
		// session against the store, which knows every revoked key.
		g.OnGap(s.revoke.RecheckAll)
	}
	if keyStore != nil {
		defer keyStore.Subscribe(func(rv keys.Revocation) {
			why := "stream key revoked"
			if rv.At.After(time.Now()) {
				why = "stream key rotated"
			}
			s.revoke.Revoke(revoke.Match{KeyID: rv.KeyID}, rv.At, why)
			s.fwd.RevokeKey(rv.KeyID, rv.At) // forward auth has no kicker: end the key's cookies
		})()
	}
	if cfg.Web != nil { // the browser app; its event streams end before the listener shuts down
		if s.web, err = s.newWeb(cfg, log.With("component", "web")); err != nil {
			return err
		}
		defer s.web.Close()
	}

	fds := raiseFDLimit()
	caps := sizeLimits(cfg.Limits, fds)
	log.Info("connection limits", "fd_limit", fds, "public_max_conns", caps.public,
		"public_max_conns_per_ip", caps.perIP, "hooks_max_conns", caps.hooks)
	if fds > 0 && caps.public+caps.hooks >= fds {
		log.Warn("config: limits exceed the file descriptor limit; a flood on the public listener can starve the hooks",
			"fd_limit", fds, "public_max_conns", caps.public, "hooks_max_conns", caps.hooks)
	}
	rawPublic, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	rawHooks, err := net.Listen("tcp", cfg.HooksListen)
	if err != nil {
		rawPublic.Close()
		return fmt.Errorf("hooks_listen %s: %w", cfg.HooksListen, err)
	}
	// Trusted proxies are exempt from the per-address cap: all their clients share their address.
	publicLn := newLimitListener(rawPublic, "public", caps.public, caps.perIP, cfg.TrustedProxies, log)
	hooksLn := newLimitListener(rawHooks, "hooks", caps.hooks, 0, nil, log)
	public := newHTTPServer(s.publicHandler(cfg), log, true)
	if s.web != nil {
		public.RegisterOnShutdown(s.web.Close) // Shutdown waits for handlers: end the event streams
	}
	hooks := newHTTPServer(hooksGuard(cfg.Hooks.AllowedHosts, log, s.hooksMux(cfg, log)), log, false)

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
	out.Flush() // tell supervisors (and tests) at once that both listeners are up
	if ready != nil {
		ready(publicLn.Addr(), hooksLn.Addr())
	}
	s.sdNotify("READY=1\nSTATUS=serving")

	wg.Add(1)
	go func() { defer wg.Done(); s.reloadLoop(ctx, hup, *cfg.WatchConfig) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("shutting down")
	s.sdNotify("STOPPING=1")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	stop() // the reload loop ends with ctx
	_ = public.Shutdown(sctx)
	_ = hooks.Shutdown(sctx)
	wg.Wait()
	s.retiring.Wait()
	return runErr
}

// newHTTPServer returns the server for one listener. The public one has short timeouts: each
// connection holds a file descriptor and ~20 KB, so a silent or idle client must let go soon.
// WHIP/WHEP are unaffected: a request is a few KB of SDP sent at once, and the ICE gathering wait
// (sfu.gather_timeout) is handler time, which no read timeout counts. No WriteTimeout: a pprof
// profile streams for its full duration.
func newHTTPServer(h http.Handler, log *slog.Logger, public bool) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if public {
		srv.ReadHeaderTimeout = 5 * time.Second
		srv.ReadTimeout = 15 * time.Second
		srv.IdleTimeout = 30 * time.Second
	}
	return srv
}

func methodList(cfg *Config) []string {
	out := make([]string, len(cfg.Auth.Methods))
	for i, m := range cfg.Auth.Methods {
		out[i] = m.ID
		if m.ID != m.Type {
			out[i] += " (" + m.Type + ")"
		}
	}
	return out
}

// reloadLoop reloads on every value from hup (SIGHUP, registered by serve) and, when watch is
// set, when the file's content changes (polled: portable, and editors that replace the file by
// rename are handled). It returns when ctx ends.
func (s *server) reloadLoop(ctx context.Context, hup <-chan os.Signal, watch bool) {
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
			s.notifiedReload(ctx, "signal")
		case <-tick:
			b, err := os.ReadFile(s.path)
			if err != nil {
				continue
			}
			s.mu.Lock()
			changed := sha256.Sum256(b) != s.sum
			s.mu.Unlock()
			if !changed {
				continue
			}
			// A writer that is not atomic (cat > file, cp, an editor saving in place) leaves
			// the file half-written for a moment: reload only content that has settled.
			select {
			case <-ctx.Done():
				return
			case <-time.After(settleDelay):
			}
			if again, err := os.ReadFile(s.path); err != nil || !bytes.Equal(again, b) {
				continue // still changing: the next tick looks again
			}
			s.notifiedReload(ctx, "file change")
		}
	}
}

// notifiedReload reloads between RELOADING=1 and READY=1 to systemd, so `systemctl reload` (which
// sends SIGHUP) and the journal see when the new config is in place. A failed reload keeps the
// running config, so it, too, ends READY.
func (s *server) notifiedReload(ctx context.Context, why string) {
	s.sdNotify(reloading())
	s.reload(ctx, why)
	s.sdNotify("READY=1")
}

// sdNotify sends state to systemd when it started gatehouse; a failure is logged, never fatal.
func (s *server) sdNotify(state string) {
	if err := s.systemd.notify(state); err != nil {
		s.log.Warn("systemd notification failed", "error", err.Error())
	}
}

// settleDelay is how long a changed config file must stay unchanged before a watch reload.
const settleDelay = 300 * time.Millisecond

// reload validates the file and swaps in a new generation. On any error the running config stays.
// Requests in flight finish on the chain they started with.
func (s *server) reload(ctx context.Context, why string) {
	src, cfg, err := readConfig(s.path)
	if err != nil {
		s.log.Error("reload failed; keeping the running config", "trigger", why, "errors", err.Error())
		if src != nil {
			s.mu.Lock()
			s.sum = sha256.Sum256(src) // do not retry the same broken file every tick
			s.mu.Unlock()
		}
		return
	}
	s.mu.Lock()
	running := s.gen
	s.mu.Unlock()
	restart := running.cfg.restartOnly(cfg)
	// Sections that apply only after a restart keep their running values, so what the log says
	// is what happens: a changed data_dir or tokens.issuer would otherwise load another signing
	// key at once and refuse every token minted so far.
	cfg.keepRestartOnly(running.cfg)
	iss, err := loadIssuer(cfg, s.issuer.Load()) // keeps the running issuer; picks up `gatehouse rotate-key`
	if err != nil {
		s.log.Error("reload failed; keeping the running config", "trigger", why, "error", err.Error())
		return
	}
	if reflect.DeepEqual(running.cfg.Auth, cfg.Auth) {
		// Nothing that decides changed (a log level, say): keep the running generation, so
		// no grant is re-checked and no forward-auth cookie ends for an unrelated edit. A key
		// rotated with `gatehouse rotate-key` is already in the running issuer.
		s.mu.Lock()
		s.sum = sha256.Sum256(src)
		running.cfg = cfg
		s.mu.Unlock()
		if lv, err := cfg.logLevel(); err == nil {
			s.level.Set(lv)
		}
		s.log.Info("config reloaded; auth unchanged, running decisions kept", "trigger", why)
		if len(restart) > 0 {
			s.log.Warn("config: these sections changed but apply only after a restart", "sections", restart)
		}
		return
	}
	gen, err := build(ctx, cfg, s.deps(iss, running), s.log, true) // takes over unchanged JWKS providers
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
	s.issuer.Store(iss)
	s.mu.Unlock()
	if lv, err := cfg.logLevel(); err == nil {
		s.level.Set(lv)
	}
	s.retiring.Add(1)
	go func() {
		defer s.retiring.Done()
		select {
		case <-time.After(retireGrace):
		case <-ctx.Done(): // shutting down: stop now
		}
		old.stop()
	}()
	s.log.Info("config reloaded", "trigger", why, "methods", methodList(cfg))
	// Grants may have been removed or revoked: re-check every running session of every server
	// that remembers them (the SFU, MediaMTX, SRS), in the revoker's goroutine.
	s.revoke.RecheckAll()
	if len(restart) > 0 {
		s.log.Warn("config: these sections changed but apply only after a restart", "sections", restart)
	}
}

// publicHandler is the public listener's one front door: the Host check (allowed_hosts), then
// the client address resolved once (trusted_proxies) and stored in the request context, where the
// pprof guard, the streams API and the SFU read it with clientip.Addr.
func (s *server) publicHandler(cfg *Config) http.Handler {
	return cfg.AllowedHosts.handler(cfg.TrustedProxies.Handler(s.publicMux()))
}

func (s *server) publicMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		s.issuer.Load().JWKSHandler().ServeHTTP(w, r)
	})
	mux.Handle("/debug/pprof/", s.guarded(authz.ActionPprof, pprofHandler()))
	mux.Handle("GET /metrics", s.guarded(authz.ActionMetrics, s.metrics.Handler()))
	api := s.apiMux()
	for _, p := range []string{"/api/v1/keys", "/api/v1/keys/", "/api/v1/streams", "/api/v1/streams/", "/api/v1/sessions", "/api/v1/sessions/",
		"/api/v1/decisions", "/api/v1/decisions/", "/api/v1/bans", "/api/v1/bans/", "/api/v1/nodes"} {
		mux.Handle(p, api)
	}
	if s.sfu != nil {
		h := s.sfu.Handler()
		paths := []string{"/whip/", "/whep/", "/publish/"}
		if s.web == nil {
			paths = append(paths, "/watch/")
		}
		for _, p := range paths {
			mux.Handle(p, h)
		}
	}
	if s.web != nil {
		h := s.web.Handler()
		for _, p := range s.web.Paths() {
			mux.Handle(p, h)
		}
	}
	return mux
}

// apiMux is gatehouse's JSON API (/api/v1/...), which /manage also calls on the operator's
// behalf.
func (s *server) apiMux() *http.ServeMux {
	mux := http.NewServeMux()
	keysAPI := s.keysAPI()
	mux.Handle("/api/v1/keys", keysAPI)
	mux.Handle("/api/v1/keys/", keysAPI)
	streams := live.APIHandler(s.reg, s.engine)
	mux.Handle("/api/v1/streams", streams)
	mux.Handle("/api/v1/streams/", streams)
	var fleetOpts []revoke.APIOption
	if s.state != nil && s.state.fleet != nil { // a kick of another node's session is announced
		fleetOpts = append(fleetOpts, revoke.WithBroadcaster(fleetBroadcaster{s.state.fleet}))
		mux.Handle("/api/v1/nodes", redisstate.NodesHandler(s.state.fleet, s.engine))
	}
	sessions := revoke.APIHandler(s.revoke, s.engine, s.engine, nil, fleetOpts...) // every server's sessions, the SFU's too
	mux.Handle("/api/v1/sessions", sessions)
	mux.Handle("/api/v1/sessions/", sessions)
	recent := decisions.APIHandler(s.recent, s.engine)
	mux.Handle("/api/v1/decisions", recent)
	mux.Handle("/api/v1/decisions/", recent)
	bans := banapi.Handler(s.engine, s.engine, nil)
	mux.Handle("/api/v1/bans", bans)
	mux.Handle("/api/v1/bans/", bans)
	return mux
}

// sfuRechecker re-checks the SFU's sessions for the revoker; the SFU closes the denied ones
// itself and ends expired grants in its own Run.
type sfuRechecker struct {
	sfu *sfu.SFU
	log *slog.Logger
}

func (r sfuRechecker) Recheck(ctx context.Context) []live.Session {
	if n := r.sfu.Recheck(ctx); n > 0 {
		r.log.Info("sessions closed after reload", "count", n)
	}
	return nil
}

func (sfuRechecker) Expired() []live.Session { return nil }

// kickers are the servers whose sessions gatehouse can end itself: the SFU always, nginx-rtmp
// through its control module, MediaMTX and SRS through their APIs when configured. Without one,
// a server ends a revoked session at its own next re-check (nginx-rtmp on_update) or not at all.
func (s *server) kickers(cfg *Config) map[string]revoke.Kicker {
	k := map[string]revoke.Kicker{}
	if s.sfu != nil {
		k["sfu"] = revoke.KickerFunc(func(_ context.Context, sess live.Session) error {
			if err := s.sfu.Kick(sess.ID); errors.Is(err, sfu.ErrNotFound) {
				return fmt.Errorf("sfu: %w", revoke.ErrGone)
			}
			return nil
		})
	}
	if c := cfg.Hooks.NginxRTMP.ControlURL; c != "" {
		k[nginxrtmp.Source] = nginxrtmp.NewKicker(conf.Endpoint{URL: c}, nil, revoke.ErrGone)
	}
	if api := cfg.Hooks.MediaMTX.API; api.Configured() {
		k[mediamtx.Source] = mediamtx.NewKicker(api, nil, revoke.ErrGone, s.mtx)
	}
	if api := cfg.Hooks.SRS.API; api.Configured() {
		k[srs.Source] = srs.NewKicker(api, nil, revoke.ErrGone)
	}
	if api := cfg.Hooks.OME.API; api.Configured() {
		k[ome.Source] = ome.NewKicker(api, cfg.Hooks.OME.Vhost, nil, revoke.ErrGone, revoke.ErrUnsupported)
	}
	return k
}

// deps are the long-lived objects a generation's builders may use.
func (s *server) deps(iss *tokens.Issuer, prev *generation) deps {
	d := deps{issuer: iss, prev: prev, metrics: s.metrics}
	if s.keys != nil { // never a typed nil in the interface
		d.keyStore = s.keys
	}
	return d
}

// keysAPI serves /api/v1/keys over the store (nil: YAML keys listed, changes refused with 503)
// and the running generation's YAML keys.
func (s *server) keysAPI() http.Handler {
	var admin keys.Admin
	if s.keys != nil {
		admin = s.keys
	}
	configKeys := func() []keys.Record { // every keys instance's, whatever its id
		s.mu.Lock()
		g := s.gen
		s.mu.Unlock()
		var out []keys.Record
		if g == nil || g.chain == nil {
			return nil
		}
		for _, m := range g.chain.Methods() {
			if b, ok := m.Backend.(*keys.Backend); ok {
				out = append(out, b.ConfigRecords()...)
			}
		}
		return out
	}
	return keys.APIHandler(admin, s.engine, configKeys, nil)
}

// hooksMux mounts every streaming-server adapter. Adapters are built once (their session tables
// survive reloads); they read the engine's current chain on every request.
func (s *server) hooksMux(cfg *Config, log *slog.Logger) http.Handler {
	var rec nginxrtmp.Recorder = s.reg
	if s.state != nil && s.state.fleet != nil { // a done hook for another node's session is announced
		rec = fleetRecorder{Registry: s.reg, fleet: s.state.fleet, log: log.With("component", "fleet")}
	}
	adapters := map[string]http.Handler{
		"/hooks/mediamtx":   s.mtx,
		"/hooks/nginx-rtmp": nginxrtmp.New(cfg.Hooks.NginxRTMP, s.engine, rec, log.With("adapter", "nginx-rtmp")),
		"/hooks/ome":        s.ome,
		"/hooks/srs":        s.srs,
		// No method pattern: Traefik with preserveRequestMethod forwards the client's method.
		"/hooks/forward-auth": s.fwd,
	}
	return newHookRoutes(adapters, http.HandlerFunc(s.healthz))
}

// newHookRoutes is the hooks listener's router: GET /healthz and every adapter at its path,
// registered without host or method (hookRoutes relies on that).
func newHookRoutes(adapters map[string]http.Handler, healthz http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", healthz)
	for p, h := range adapters {
		mux.Handle(p, h)
	}
	return hookRoutes{exact: adapters, mux: mux}
}

// hookRoutes sends a request for exactly one of the adapters' paths straight to its adapter,
// and every other request through mux. ServeMux's general matching (host and method patterns,
// path cleaning) cost about 3,000 instructions a hook, a tenth of a hook's own work; for these
// paths it always chooses the same adapter: they are registered without host or method, and a
// request whose path arrived escaped (RawPath set: ServeMux redirects or refuses it) or is a
// CONNECT (not cleaned) still goes through mux, so every answer is the one mux gives
// (TestHookRoutesAnswerAsServeMux, FuzzHookRoutes).
type hookRoutes struct {
	exact map[string]http.Handler
	mux   *http.ServeMux
}

func (h hookRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawPath == "" && r.Method != http.MethodConnect {
		if a, ok := h.exact[r.URL.Path]; ok {
			a.ServeHTTP(w, r)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// readyz answers 200 once every backend has what it needs to decide (JWKS key sets fetched),
// else 503 with the reason; with the state in Redis, 503 "degraded: state store unavailable"
// while Redis does not answer or refuses gatehouse (new sessions that need it are refused;
// running ones continue).
func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	err := s.gen.ready()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	if s.state != nil && s.state.health != nil {
		// Public and unauthenticated: the reason names no address or server reply; the detail
		// is logged when Health goes down (openState).
		if err := s.state.health.Err(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "degraded", "reason": "state store unavailable"})
			return
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "ready"})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(map[string]string{"status": "ok", "version": version()})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}
