package main

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/clientip"
	"gatehouse/authz/conf"
)

// LimitsConfig caps open connections per listener, so a flood on the public listener cannot take
// the file descriptors the hooks listener needs. Zero values are sized from the fd limit.
type LimitsConfig struct {
	PublicMaxConns      int `yaml:"public_max_conns"`        // default: fd limit - hooks_max_conns - a reserve, at most 16384
	PublicMaxConnsPerIP int `yaml:"public_max_conns_per_ip"` // default 128; trusted_proxies are exempt
	HooksMaxConns       int `yaml:"hooks_max_conns"`         // default: fd limit / 8, 32..1024
}

// UnmarshalYAML implements yaml.Unmarshaler: strict, and no negative caps.
func (l *LimitsConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain LimitsConfig
	if err := conf.Strict(n, (*plain)(l)); err != nil {
		return err
	}
	var errs []error
	for _, f := range []struct {
		key string
		v   int
	}{{"public_max_conns", l.PublicMaxConns}, {"public_max_conns_per_ip", l.PublicMaxConnsPerIP}, {"hooks_max_conns", l.HooksMaxConns}} {
		if f.v < 0 {
			errs = append(errs, conf.Errorf(conf.Value(n, f.key), "%s must be 0 (sized from the file descriptor limit) or positive, not %d", f.key, f.v))
		}
	}
	return conf.Join(errs...)
}

// defaultPerIP is the default public_max_conns_per_ip: far above what a browser (6 per host) or
// OBS opens, far below what one address needs to exhaust the process.
const defaultPerIP = 128

// connCaps are the resolved connection limits.
type connCaps struct {
	public, perIP, hooks int
}

// sizeLimits fills the zero values of l from fds, the soft RLIMIT_NOFILE (0: unknown). The public
// cap leaves the hooks cap plus a reserve (outbound calls to backends, data files, UDP sockets)
// free, so a full public listener never starves the hooks.
func sizeLimits(l LimitsConfig, fds int) connCaps {
	if fds <= 0 {
		fds = 4096
	}
	c := connCaps{public: l.PublicMaxConns, perIP: l.PublicMaxConnsPerIP, hooks: l.HooksMaxConns}
	if c.hooks == 0 {
		c.hooks = min(max(fds/8, 32), 1024)
	}
	if c.public == 0 {
		reserve := min(max(fds/8, 64), 1024)
		// Each idle HTTP connection costs ~20 KB; 16384 bounds that to ~320 MB.
		c.public = min(max(fds-c.hooks-reserve, 16), 16384)
	}
	if c.perIP == 0 {
		c.perIP = defaultPerIP
	}
	c.perIP = min(c.perIP, c.public)
	return c
}

// limitListener accepts at most max connections at once, and at most perIP from one TCP peer
// address unless the peer is exempt (a trusted proxy: all its clients share its address; 0: no
// per-address cap). An over-limit connection is closed in Accept, before any goroutine or buffer
// is spent on it, and Accept goes on to the next one.
type limitListener struct {
	net.Listener
	name   string
	max    int
	perIP  int
	exempt clientip.Proxies
	log    *slog.Logger

	mu      sync.Mutex
	open    int
	byIP    map[netip.Prefix]int // by clientip.Key: an IPv6 /64 is one client
	refused int                  // since the last log line
	logged  time.Time            // when refusals were last logged
}

func newLimitListener(ln net.Listener, name string, max, perIP int, exempt clientip.Proxies, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, name: name, max: max, perIP: perIP, exempt: exempt, log: log, byIP: map[netip.Prefix]int{}}
}

// Accept implements net.Listener.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientip.Parse(c.RemoteAddr().String())
		if why := l.admit(ip); why != "" {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST: no TIME_WAIT, the client learns at once
			}
			_ = c.Close()
			l.noteRefused(why)
			continue
		}
		return &limitConn{Conn: c, l: l, ip: ip}, nil
	}
}

// admit counts a new connection from ip, or says which cap refuses it.
func (l *limitListener) admit(ip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		return "max_conns"
	}
	perIP := l.perIP > 0 && !l.exempt.Trusts(ip)
	k := clientip.Key(ip)
	if perIP && l.byIP[k] >= l.perIP {
		return "max_conns_per_ip"
	}
	l.open++
	if perIP {
		l.byIP[k]++
	}
	return ""
}

func (l *limitListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perIP > 0 && !l.exempt.Trusts(ip) {
		k := clientip.Key(ip)
		if l.byIP[k] <= 1 {
			delete(l.byIP, k)
		} else {
			l.byIP[k]--
		}
	}
}

// noteRefused logs refusals at most every 10 s (a flood must not become a log flood).
func (l *limitListener) noteRefused(why string) {
	l.mu.Lock()
	l.refused++
	now := time.Now()
	if now.Sub(l.logged) < 10*time.Second {
		l.mu.Unlock()
		return
	}
	n := l.refused
	l.refused, l.logged = 0, now
	open := l.open
	l.mu.Unlock()
	l.log.Warn("connections refused: listener at its limit", "listener", l.name, "limit", why, "refused", n, "open", open, "max_conns", l.max, "max_conns_per_ip", l.perIP)
}

// limitConn gives its slot back on the first Close.
type limitConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
