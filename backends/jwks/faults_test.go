package jwks

// Fault tests of the JWKS backend (run the whole fault suite with `go test -run Fault ./...`):
//
//	TestFaultIdPHanging    IdP accepts TCP and never answers: one fetch, unknown kids answer fast
//	TestFaultJWKSRotated   new kid appears, old one removed: new tokens allowed, old ones denied
//
// Covered elsewhere in this package: IdP down at start (TestJWKSDownFromStart), down or hanging
// after start with the last keys kept (TestStaleIfError), known kids not held up by a hung fetch
// (TestHangingJWKS), random kids rate-limited (TestRotationUnknownKIDRefresh).

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz"
)

// tcpIdP is a JWKS endpoint on loopback that can turn into a black hole: while hanging, it
// accepts connections and never reads or writes a byte. Keep-alives are off, so every fetch is a
// new connection and accepted counts fetch attempts.
type tcpIdP struct {
	ln       net.Listener
	url      string
	hanging  atomic.Bool
	accepted atomic.Int64 // connections accepted while hanging
	body     atomic.Pointer[[]byte]
	conns    chan net.Conn // served connections, handed to the HTTP server
	mu       sync.Mutex
	held     []net.Conn
}

func newTCPIdP(t *testing.T, body []byte) *tcpIdP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpIdP{ln: ln, url: "http://" + ln.Addr().String() + "/certs", conns: make(chan net.Conn)}
	s.body.Store(&body)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(*s.body.Load())
	})}
	srv.SetKeepAlivesEnabled(false)
	cl := &chanListener{addr: ln.Addr(), conns: s.conns, done: make(chan struct{})}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(cl) }()
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if s.hanging.Load() {
				s.accepted.Add(1)
				s.mu.Lock()
				s.held = append(s.held, c)
				s.mu.Unlock()
				continue
			}
			select {
			case s.conns <- c:
			case <-cl.done:
				_ = c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-accepting
		_ = srv.Close()
		<-served
		s.releaseHeld()
	})
	return s
}

func (s *tcpIdP) set(body []byte) { s.body.Store(&body) }

// releaseHeld closes the connections held while hanging (the IdP process "comes back").
func (s *tcpIdP) releaseHeld() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.held {
		_ = c.Close()
	}
	s.held = nil
}

// chanListener is a net.Listener fed from a channel.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// TestFaultIdPHanging: the IdP accepts TCP and never answers. A burst of requests with unknown
// kids makes at most one fetch (one refresh in flight, rate-limited), and the requests do not
// each wait the fetch timeout: they are answered unknown_key long before it. Known kids keep
// being allowed. When the IdP comes back, the rotated key is picked up and allowed.
func TestFaultIdPHanging(t *testing.T) {
	const fetchTimeout = 20 * time.Second // longer than any bound below: only a fast answer passes
	clk := newClock()
	k1, k2 := rsaKey("k1"), ecKey("k2")
	idp := newTCPIdP(t, jwksDoc(t, k1))
	p := testProvider(idp.url)
	p.FetchTimeout = 20 * 1e9
	b := newTestBackend(t, Config{Providers: []Provider{p}, CacheSize: -1}, WithClock(clk.Now))
	if err := b.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	idp.hanging.Store(true)
	clk.Advance(time.Hour) // past the unknown-kid rate limit: the first unknown kid may fetch

	const burst = 40
	start := time.Now()
	var answered atomic.Int64 // unknown-kid requests answered unknown_key before the bound
	bound := fetchTimeout / 2
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*fetchTimeout)
			defer cancel()
			tok := rsaKey(fmt.Sprint("unknown-", i)).sign(t, claimsAt(clk.Now(), publishPerm("cam1")))
			d, err := b.Authorize(ctx, publishReq("cam1", tok))
			if err != nil || d.Reason != ReasonUnknownKey {
				t.Errorf("unknown kid %d: got %v %q %v, want %q", i, d.Outcome, d.Reason, err, ReasonUnknownKey)
			}
			if time.Since(start) < bound {
				answered.Add(1)
			}
		})
	}
	// Known kids are decided while the burst waits.
	for range 10 {
		d, err := authorize(t, b, publishReq("cam1", k1.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))))
		if err != nil || d.Outcome != authz.Allow {
			t.Fatalf("known kid while the IdP hangs: got %v %q %v, want allow", d.Outcome, d.Reason, err)
		}
	}
	wg.Wait()
	took := time.Since(start)
	fetches := idp.accepted.Load()
	t.Logf("IdP hanging: %d unknown-kid requests, %d answered within %v (all in %v), %d fetches reached the IdP",
		burst, answered.Load(), bound, took.Round(time.Millisecond), fetches)
	if fetches > 1 {
		t.Errorf("fetches while hanging: got %d, want at most 1", fetches)
	}
	if got := answered.Load(); got < burst {
		t.Errorf("unknown-kid requests answered within %v: got %d of %d, want all (none waits the %v fetch timeout)", bound, got, burst, fetchTimeout)
	}

	// The IdP comes back with a rotated key set: the hung fetch fails at once, the retry loads it.
	idp.set(jwksDoc(t, k1, k2))
	idp.hanging.Store(false)
	back := time.Now()
	idp.releaseHeld()
	tok := k2.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))
	for {
		clk.Advance(time.Hour) // each attempt may ask for a refresh
		d, err := authorize(t, b, publishReq("cam1", tok))
		if err == nil && d.Outcome == authz.Allow {
			break
		}
		if time.Since(back) > 15*time.Second {
			t.Fatalf("rotated key never allowed after the IdP came back: last %v %q %v", d.Outcome, d.Reason, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("IdP back: new kid allowed after %v", time.Since(back).Round(time.Millisecond))
}

// TestFaultJWKSRotated: the IdP publishes a new key and withdraws the old one. A token with the
// new kid is allowed after the refresh it triggers; a token signed by the withdrawn key, allowed
// and cached before, is denied unknown_key from then on.
func TestFaultJWKSRotated(t *testing.T) {
	clk := newClock()
	oldKey, newKey := rsaKey("old"), ecKey("new")
	srv := newJWKSServer(t, jwksDoc(t, oldKey))
	p := testProvider(srv.URL)
	b := newTestBackend(t, Config{Providers: []Provider{p}}, WithClock(clk.Now)) // with the token cache
	oldTok := oldKey.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))
	for range 2 { // the second answer comes from the cache
		if d, err := authorize(t, b, publishReq("cam1", oldTok)); err != nil || d.Outcome != authz.Allow {
			t.Fatalf("old key before rotation: got %v %q %v, want allow", d.Outcome, d.Reason, err)
		}
	}
	hits := srv.hits.Load()
	srv.set(jwksDoc(t, newKey)) // rotate: new key in, old key out
	clk.Advance(time.Hour)      // past the unknown-kid rate limit

	newTok := newKey.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))
	if d, err := authorize(t, b, publishReq("cam1", newTok)); err != nil || d.Outcome != authz.Allow {
		t.Fatalf("new key after rotation: got %v %q %v, want allow", d.Outcome, d.Reason, err)
	}
	if got, want := srv.hits.Load()-hits, int64(1); got != want {
		t.Errorf("fetches for the new kid: got %d, want %d", got, want)
	}
	d, err := authorize(t, b, publishReq("cam1", oldTok))
	if err != nil || d.Outcome == authz.Allow || d.Reason != ReasonUnknownKey {
		t.Fatalf("cached token of the withdrawn key: got %v %q %v, want a denial %q", d.Outcome, d.Reason, err, ReasonUnknownKey)
	}
	fresh := oldKey.sign(t, claimsAt(clk.Now(), publishPerm("cam1")))
	if d, _ := authorize(t, b, publishReq("cam1", fresh)); d.Outcome == authz.Allow || d.Reason != ReasonUnknownKey {
		t.Fatalf("new token of the withdrawn key: got %v %q, want a denial %q", d.Outcome, d.Reason, ReasonUnknownKey)
	}
}
