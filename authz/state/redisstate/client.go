// Package redisstate is the Redis implementation of the state layer's shared pieces: the client
// built from state.RedisConfig (standalone, Sentinel or Cluster through go-redis's
// UniversalClient), a Health that every user of the client reports to (so /readyz can say
// "degraded" and requests fail fast while Redis is away), and Shared, the failure counters and
// bans every replica sees (authz.BanStore and authz.Counter).
//
// Keys gatehouse writes all start with the configured prefix and carry hash tags ({b} for bans
// and counters, {k} for stream keys) so that the keys one operation touches live in one Cluster
// slot.
package redisstate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz/state"
)

// Sentinel errors of package redisstate.
var (
	// ErrUnavailable is returned (wrapped) while Redis is unreachable: callers fail fast with it
	// instead of waiting for a timeout on every request.
	ErrUnavailable = errors.New("redisstate: redis unavailable")
)

// Open returns a client for cfg. It does not connect (go-redis dials on first use); the password
// is read from cfg.PasswordFile now, and the error names the file, never the password. The
// caller closes the client.
func Open(cfg *state.RedisConfig) (redis.UniversalClient, error) {
	pw, err := cfg.Password()
	if err != nil {
		return nil, fmt.Errorf("redisstate: password_file: %w", err)
	}
	opts := &redis.UniversalOptions{
		Addrs:        cfg.Addrs,
		MasterName:   cfg.SentinelMaster,
		Username:     cfg.Username,
		Password:     pw,
		DB:           cfg.DB,
		DialTimeout:  cfg.DialTimeout(),
		ReadTimeout:  cfg.DialTimeout(),
		WriteTimeout: cfg.DialTimeout(),
		// One try, no retry (go-redis's MaxRetries counts retries; 0 would mean its default of
		// 3, -1 none): a decision waits at most one timeout, Health makes later ones fail fast,
		// and a retried pipeline would apply its INCRBY deltas twice.
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true, // no CLIENT SETINFO: older servers and Valkey log it as unknown
	}
	if cfg.TLS.Enabled {
		if opts.TLSConfig, err = tlsConfig(cfg.TLS); err != nil {
			return nil, err
		}
	}
	return redis.NewUniversalClient(opts), nil
}

func tlsConfig(c state.TLSConfig) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in, named insecure_skip_verify
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redisstate: tls ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redisstate: tls ca_file %s holds no PEM certificate", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redisstate: tls cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// Health tracks whether Redis answers. Users report every operation's outcome (Report); while
// it is down, Check fails at once with ErrUnavailable except for one probe per retry interval,
// so a dead Redis costs each request nothing and is noticed again as soon as it returns. The
// zero Health is up. It starts no goroutines.
type Health struct {
	down    atomic.Bool
	mu      sync.Mutex
	since   time.Time // when it went down
	lastTry time.Time
	lastErr string // the error's text (go-redis errors carry no secrets: addresses only)
	retry   time.Duration
	now     func() time.Time
	onUp    []func()      // called (outside the lock) when Redis answers again
	onDown  []func(error) // called (outside the lock) when Redis stops answering
}

// NewHealth returns a Health that lets one probe through every retry interval while down
// (retry <= 0: 250 ms). now nil: time.Now.
func NewHealth(retry time.Duration, now func() time.Time) *Health {
	if retry <= 0 {
		retry = 250 * time.Millisecond
	}
	if now == nil {
		now = time.Now
	}
	return &Health{retry: retry, now: now}
}

// OnUp registers fn to be called, in the reporting goroutine, each time Redis answers again
// after being down (reconcile: re-read what may have been missed).
func (h *Health) OnUp(fn func()) {
	h.mu.Lock()
	h.onUp = append(h.onUp, fn)
	h.mu.Unlock()
}

// OnDown registers fn to be called, in the reporting goroutine, each time Redis stops answering
// (or refuses gatehouse), with the error that said so (for the log: it may name the address).
func (h *Health) OnDown(fn func(error)) {
	h.mu.Lock()
	h.onDown = append(h.onDown, fn)
	h.mu.Unlock()
}

// Check returns nil when a request may go to Redis, or an error wrapping ErrUnavailable when
// Redis is down and this is not the moment for a probe.
func (h *Health) Check() error {
	if !h.down.Load() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if now.Sub(h.lastTry) >= h.retry {
		h.lastTry = now
		return nil // this request is the probe
	}
	return fmt.Errorf("%w since %s: %s", ErrUnavailable, h.since.UTC().Format(time.RFC3339), h.lastErr)
}

// Report records the outcome of one operation: err nil or redis.Nil means Redis answered; a
// canceled context (the caller gave up, e.g. a client hung up during the probe) says nothing
// either way and is ignored.
func (h *Health) Report(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if err == nil || errors.Is(err, redis.Nil) {
		if h.down.Load() {
			h.mu.Lock()
			wasDown := h.down.Swap(false)
			fns := append([]func(){}, h.onUp...)
			h.mu.Unlock()
			if wasDown {
				for _, fn := range fns {
					fn()
				}
			}
		}
		return
	}
	if !unreachable(err) {
		return // Redis answered (an error reply, a missing key, a caller's own error): it is up
	}
	h.mu.Lock()
	wentDown := !h.down.Load()
	if wentDown {
		h.since = h.now()
		h.lastTry = h.since
	}
	h.lastErr = err.Error()
	h.down.Store(true)
	var fns []func(error)
	if wentDown {
		fns = append(fns, h.onDown...)
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn(err)
	}
}

// unreachable reports whether err means Redis could not be reached or cannot serve: a network
// error, a closed or exhausted pool, a timeout, or one of the replies of a server that is not
// ready. Other errors (an error reply, a caller's sentinel wrapped around a good answer) do not.
func unreachable(err error) bool {
	var nerr net.Error
	var rerr redis.Error
	switch {
	case errors.As(err, &nerr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &rerr):
		return isConnError(rerr)
	}
	return false
}

// isConnError reports error replies that mean the server cannot serve (loading, read-only
// replica after a failover, cluster down) or not serve gatehouse: a reachable Redis that refuses
// the configured user (NOAUTH, WRONGPASS) or a command it needs (NOPERM) is as unusable as an
// unreachable one, so requests fail closed and /readyz says degraded.
func isConnError(err redis.Error) bool {
	msg := err.Error()
	for _, p := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "NOAUTH", "WRONGPASS", "NOPERM"} {
		if len(msg) >= len(p) && msg[:len(p)] == p {
			return true
		}
	}
	return false
}

// Err returns nil while Redis answers, else why not (for /readyz).
func (h *Health) Err() error {
	if !h.down.Load() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Errorf("%w since %s: %s", ErrUnavailable, h.since.UTC().Format(time.RFC3339), h.lastErr)
}
