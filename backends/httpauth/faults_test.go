package httpauth

// Fault tests of the HTTP auth backend (run the whole fault suite with `go test -run Fault ./...`):
//
//	TestFaultUpstream/down      nothing listens: fast denials, goroutines back, allows when it listens again
//	TestFaultUpstream/slow      answers after the timeout: denials at the timeout, recovery when fast again
//	TestFaultUpstream/flapping  500s, hangs and resets mixed with 200s: never an allow from a failure
//
// Covered elsewhere in this package: TestSlowUpstream, TestDownUpstream, TestFlapping (single
// calls and the cache), TestHangingCallBlocksNobodyElse (no lock across the call), TestClose.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// faultUpstream is an auth service on a fixed loopback address that can go away and come back
// on the same address, and whose behaviour per call the test switches.
type faultUpstream struct {
	addr string
	mode atomic.Value // func(http.ResponseWriter, *http.Request)
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func newFaultUpstream(t *testing.T) *faultUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &faultUpstream{addr: ln.Addr().String()}
	u.mode.Store(http.HandlerFunc(status(http.StatusOK)))
	u.serve(ln)
	t.Cleanup(u.down)
	return u
}

func (u *faultUpstream) url() string { return "http://" + u.addr + "/auth" }

func (u *faultUpstream) set(h http.HandlerFunc) { u.mode.Store(h) }

func (u *faultUpstream) serve(ln net.Listener) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mode.Load().(http.HandlerFunc)(w, r)
	})}
	u.done = make(chan struct{})
	srv, done := u.srv, u.done
	go func() { defer close(done); _ = srv.Serve(ln) }()
}

// down stops the service: its connections close and nothing listens on its address.
func (u *faultUpstream) down() {
	u.mu.Lock()
	srv, done := u.srv, u.done
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		<-done
	}
}

// up listens on the same address again.
func (u *faultUpstream) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", u.addr, err)
	}
	u.serve(ln)
}

// hang holds the call until the client gives up. It reads the body first: only then does the
// server notice the client closing the connection (and this fake's goroutine end).
func hang(_ http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// reset closes the connection without an answer.
func reset(w http.ResponseWriter, _ *http.Request) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = c.Close()
	}
}

// TestFaultUpstream: for each fault a burst of distinct requests (no cache, no collapsing) is
// denied upstream_unavailable — never allowed — within a generous bound of the backend's
// timeout; the goroutines return to their level before the burst, give or take the bounded
// idle-connection pool; when the service is healthy
// again the same requests are allowed.
func TestFaultUpstream(t *testing.T) {
	const (
		burst   = 300 // well above the idle pool, so a leak per request shows
		timeout = 200 * time.Millisecond
		bound   = 5 * time.Second // generous: a denial must not wait for the service
		// Goroutines allowed to stay: runner noise, plus kept-alive connections after error
		// replies (at most idleConns, three goroutines each: the transport's read and write
		// loops and this fake server's connection).
		slack = 10 + 3*idleConns
	)
	tests := []struct {
		name  string
		fault func(*faultUpstream)
		heal  func(*testing.T, *faultUpstream)
	}{
		{"down", func(u *faultUpstream) { u.down() }, func(t *testing.T, u *faultUpstream) { u.up(t) }},
		{"slow", func(u *faultUpstream) { u.set(hang) }, func(_ *testing.T, u *faultUpstream) { u.set(status(http.StatusOK)) }},
		{"flapping", func(u *faultUpstream) {
			var n atomic.Int64
			u.set(func(w http.ResponseWriter, r *http.Request) {
				switch n.Add(1) % 4 {
				case 0:
					w.WriteHeader(http.StatusInternalServerError)
				case 1:
					hang(w, r)
				case 2:
					reset(w, r)
				case 3:
					w.WriteHeader(http.StatusBadGateway)
				}
			})
		}, func(_ *testing.T, u *faultUpstream) { u.set(status(http.StatusOK)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := newFaultUpstream(t)
			b := newBackend(t, Config{Address: u.url(), Timeout: conf.Duration(timeout)})
			chain := authz.NewChain(authz.Method{Name: "http", Backend: b})
			req := func(i int) *authz.Request {
				r := publishReq()
				r.User = fmt.Sprint("user-", i) // distinct: every request is its own upstream call
				return r
			}
			// Warm up (one healthy call), then count.
			if d, _ := chain.Authorize(context.Background(), req(-1)); !d.Allowed() {
				t.Fatalf("healthy: got %v %q, want allow", d.Outcome, d.Reason)
			}
			before := runtime.NumGoroutine()
			tc.fault(u)

			var fast, allowed, wrongReason atomic.Int64
			var slowest atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for i := range burst {
				wg.Go(func() {
					t0 := time.Now()
					d, _ := chain.Authorize(context.Background(), req(i))
					took := time.Since(t0)
					if took < bound {
						fast.Add(1)
					}
					for old := slowest.Load(); int64(took) > old && !slowest.CompareAndSwap(old, int64(took)); old = slowest.Load() {
					}
					switch {
					case d.Allowed():
						allowed.Add(1)
					case d.Reason != authz.ReasonUpstream:
						wrongReason.Add(1)
					}
				})
			}
			wg.Wait()
			during := runtime.NumGoroutine()
			after := during
			settle := time.Now()
			for after = runtime.NumGoroutine(); after > before+slack && time.Since(settle) < 10*time.Second; after = runtime.NumGoroutine() {
				time.Sleep(20 * time.Millisecond)
			}
			if allowed.Load() != 0 {
				t.Errorf("%d of %d requests allowed while the service failed, want 0", allowed.Load(), burst)
			}
			if wrongReason.Load() != 0 {
				t.Errorf("%d of %d denials without reason %q", wrongReason.Load(), burst, authz.ReasonUpstream)
			}
			if fast.Load() != burst {
				t.Errorf("denied within %v: got %d of %d, want all", bound, fast.Load(), burst)
			}
			if after > before+slack {
				t.Errorf("goroutines: %d before the burst, %d after, want at most %d", before, after, before+slack)
			}

			tc.heal(t, u)
			healed := time.Now()
			for i := 0; ; i++ {
				d, _ := chain.Authorize(context.Background(), req(i))
				if d.Allowed() {
					break
				}
				if time.Since(healed) > 10*time.Second {
					t.Fatalf("never allowed after the service recovered: last %v %q", d.Outcome, d.Reason)
				}
				time.Sleep(10 * time.Millisecond)
			}
			recovered := time.Since(healed)
			for i := range 10 { // and stays allowed
				if d, _ := chain.Authorize(context.Background(), req(1000+i)); !d.Allowed() {
					t.Errorf("after recovery, request %d: got %v %q, want allow", i, d.Outcome, d.Reason)
				}
			}
			t.Logf("%s: %d requests, %d denied %s within %v (slowest %v, burst %v), 0 allowed; goroutines %d before, %d right after, %d settled; allowed again %v after recovery",
				tc.name, burst, fast.Load(), authz.ReasonUpstream, bound, time.Duration(slowest.Load()).Round(time.Millisecond),
				time.Since(start).Round(time.Millisecond), before, during, after, recovered.Round(time.Millisecond))
		})
	}
}
