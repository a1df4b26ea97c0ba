package sfu

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

func TestClientKey(t *testing.T) {
	tests := []struct {
		name, a, b string
		same       bool
	}{
		{"same IPv4", "203.0.113.5", "203.0.113.5", true},
		{"other IPv4", "203.0.113.5", "203.0.113.6", false},
		{"mapped IPv4", "::ffff:203.0.113.5", "203.0.113.5", true},
		{"same IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"other IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := clientKey(netip.MustParseAddr(tt.a)), clientKey(netip.MustParseAddr(tt.b))
			if got := ka == kb; got != tt.same {
				t.Errorf("clientKey(%s)=%v, clientKey(%s)=%v: same got %v, want %v", tt.a, ka, tt.b, kb, got, tt.same)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(3, 2, 1)
	a1, a2 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2") // one /64
	b := netip.MustParseAddr("198.51.100.1")
	x, err := l.acquire(a1)
	if err != nil {
		t.Fatal(err)
	}
	y, err := l.acquire(a2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire(a1); err == nil || err.status != http.StatusTooManyRequests {
		t.Fatalf("third session from one IPv6 /64: got %v, want 429", err)
	}
	z, err := l.acquire(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire(netip.MustParseAddr("192.0.2.9")); err == nil || err.status != http.StatusServiceUnavailable {
		t.Fatalf("fourth session overall: got %v, want 503", err)
	}
	if err := x.addPath("live/cam"); err != nil {
		t.Fatal(err)
	}
	if err := y.addPath("live/cam"); err == nil || err.status != http.StatusServiceUnavailable {
		t.Fatalf("second viewer of a path: got %v, want 503", err)
	}
	x.release()
	x.release() // idempotent
	if total, client, onPath := l.counts(a1, "live/cam"); total != 2 || client != 1 || onPath != 0 {
		t.Errorf("after one release: got total %d, client %d, path %d; want 2, 1, 0", total, client, onPath)
	}
	y.release()
	z.release()
	var nilLease *lease
	nilLease.release()
	if total, client, _ := l.counts(a1, ""); total != 0 || client != 0 || len(l.byClient) != 0 || len(l.byPath) != 0 {
		t.Errorf("after all releases: total %d, client %d, maps %v %v; want empty", total, client, l.byClient, l.byPath)
	}
}

// TestSessionCaps: an offer over a cap gets the cap's status with Retry-After and a problem body,
// creates no PeerConnection and no session, and a closed session frees its slot.
func TestSessionCaps(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   int
	}{
		{"global", func(c *Config) { c.MaxSessions, c.MaxSessionsPerClient = 2, 100 }, http.StatusServiceUnavailable},
		{"per client", func(c *Config) { c.MaxSessions, c.MaxSessionsPerClient = 100, 2 }, http.StatusTooManyRequests},
		{"viewers per path", func(c *Config) { c.MaxViewersPerPath = 1 }, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.mutate)
			if pub, res := e.publish("live/cam", tokPub, 1); pub == nil {
				t.Fatalf("publish: got %d", res.StatusCode)
			}
			res := e.do(http.MethodPost, "/whep/live/cam", tokView, typeSDP, offerSDP(t, e))
			mustStatus(t, res, http.StatusCreated)
			viewer := res.Header.Get("Location")

			pcs, sessions := e.sfu.pcs.Load(), e.sessionCount()
			for range 3 {
				res = e.do(http.MethodPost, "/whep/live/cam", tokView, typeSDP, offerSDP(t, e))
				body := mustStatus(t, res, tt.want)
				if res.Header.Get("Retry-After") == "" || res.Header.Get("Content-Type") != typeProblem {
					t.Errorf("refusal headers: Retry-After %q, Content-Type %q; want both set", res.Header.Get("Retry-After"), res.Header.Get("Content-Type"))
				}
				var p problemBody
				if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != tt.want {
					t.Errorf("refusal body: got %q (%v), want a problem with status %d", body, err, tt.want)
				}
			}
			if got := e.sfu.pcs.Load(); got != pcs {
				t.Errorf("PeerConnections: got %d after the refusals, want %d (refused before creating one)", got, pcs)
			}
			if got := e.sessionCount(); got != sessions {
				t.Errorf("sessions: got %d, want %d", got, sessions)
			}

			mustStatus(t, e.do(http.MethodDelete, viewer, tokView, "", ""), http.StatusOK)
			mustStatus(t, e.do(http.MethodPost, "/whep/live/cam", tokView, typeSDP, offerSDP(t, e)), http.StatusCreated)
			lo := netip.MustParseAddr("127.0.0.1")
			if total, client, onPath := e.sfu.limits.counts(lo, "live/cam"); total != 2 || client != 2 || onPath != 1 {
				t.Errorf("slots: got total %d, client %d, path %d; want 2, 2, 1 (refusals and the closed viewer hold none)", total, client, onPath)
			}
		})
	}
}

// TestUnconnectedSessionClosed: a session that never connects is closed once the connect timeout
// passes on the SFU's clock and frees its slot; a connected one stays.
func TestUnconnectedSessionClosed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ConnectTimeout = conf.Duration(10 * time.Second) })
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam") // media arrived: the publisher connected
	// An offer from a client that will never answer ICE (its PeerConnection is already gone).
	mustStatus(t, e.do(http.MethodPost, "/whep/live/cam", tokView, typeSDP, offerSDP(t, e)), http.StatusCreated)
	if got := e.sessionCount(); got != 2 {
		t.Fatalf("sessions: got %d, want 2", got)
	}
	e.clock.Advance(9 * time.Second)
	e.sfu.sweep()
	if got := e.sessionCount(); got != 2 {
		t.Fatalf("sessions before the connect timeout: got %d, want 2", got)
	}
	e.clock.Advance(time.Second)
	e.sfu.sweep()
	got := e.sfu.Sessions()
	if len(got) != 1 || got[0].Kind != KindPublish {
		t.Fatalf("sessions after the connect timeout: got %+v, want only the connected publisher", got)
	}
	if total, _, onPath := e.sfu.limits.counts(netip.Addr{}, "live/cam"); total != 1 || onPath != 0 {
		t.Errorf("slots: got total %d, path %d; want 1, 0", total, onPath)
	}
}

func TestNewCapDefaults(t *testing.T) {
	auth := authorizerFunc(func(context.Context, *authz.Request) authz.Decision { return authz.Decision{} })
	s, err := New(Config{IncludeLoopback: true}, auth, nil, nil) // zero caps and timeout
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.cfg.MaxSessions != DefaultMaxSessions || s.cfg.MaxSessionsPerClient != DefaultMaxSessionsPerClient ||
		s.cfg.MaxViewersPerPath != DefaultMaxViewersPerPath || s.cfg.ConnectTimeout.Std() != DefaultConnectTimeout ||
		s.cfg.MaxCandidates != DefaultMaxCandidates || s.cfg.AllowPrivateCandidates {
		t.Errorf("zero config: got caps %d/%d/%d and connect timeout %v, want the defaults",
			s.cfg.MaxSessions, s.cfg.MaxSessionsPerClient, s.cfg.MaxViewersPerPath, s.cfg.ConnectTimeout.Std())
	}
	for _, c := range []Config{{MaxSessions: -1}, {MaxSessionsPerClient: -1}, {MaxViewersPerPath: -1}, {ConnectTimeout: -1}, {MaxCandidates: -1}} {
		if _, err := New(c, auth, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): got %v, want ErrConfig", c, err)
		}
	}
}

type authorizerFunc func(context.Context, *authz.Request) authz.Decision

func (f authorizerFunc) Authorize(ctx context.Context, r *authz.Request) authz.Decision {
	return f(ctx, r)
}
