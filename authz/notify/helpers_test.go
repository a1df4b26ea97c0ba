package notify

import (
	"context"
	"gatehouse/authz/logtest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"gatehouse/authz/live"
)

var t0 = time.Date(2026, 5, 12, 13, 45, 0, 0, time.UTC)

// checkGoroutines fails the test if, once its cleanups have run, more goroutines exist than at
// the start. Call it first so its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutine leak: got %d goroutines, want at most %d\n%s", runtime.NumGoroutine(), before, buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond) // waiting for goroutines to exit, not for expiry
		}
	})
}

// captured is one request a receiver got.
type captured struct {
	Path   string
	Header http.Header
	Body   string
}

// reply is what a receiver answers to its n-th request (0-based).
type reply func(n int, w http.ResponseWriter, r *http.Request)

func status(codes ...int) reply {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes)-1)])
	}
}

// hang blocks until the client gives up.
func hang(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// receiver is a loopback webhook receiver recording every request.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []captured
	hits chan captured
}

func newReceiver(t *testing.T, answer reply) *receiver {
	t.Helper()
	rc := &receiver{hits: make(chan captured, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := captured{Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)}
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, c)
		rc.mu.Unlock()
		select {
		case rc.hits <- c:
		default:
		}
		answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []captured {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]captured(nil), rc.got...)
}

// next waits for the receiver's next request.
func (rc *receiver) next(t *testing.T) captured {
	t.Helper()
	select {
	case c := <-rc.hits:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("receiver got no request")
		return captured{}
	}
}

// sleeps records the notifier's backoff waits without waiting.
type sleeps struct {
	mu  sync.Mutex
	got []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.got = append(s.got, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) list() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.got...)
}

type syncBuffer = logtest.Buffer

// testNotifier builds a notifier with a fixed clock, fixed jitter, recorded sleeps, sequential
// ids and a captured debug log.
func testNotifier(t *testing.T, cfg Config) (*Notifier, *sleeps, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	n, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	n.sleep = s.sleep
	n.jitter = func() float64 { return 0.5 }
	var mu sync.Mutex
	id := 0
	n.newID = func() string {
		mu.Lock()
		defer mu.Unlock()
		id++
		return "id-" + strconv.Itoa(id)
	}
	return n, s, logs
}

// start runs n until the test ends.
func start(t *testing.T, n *Notifier, changes <-chan live.Change) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- n.Run(t.Context(), changes) }()
	t.Cleanup(func() {
		n.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitFor polls cond until it holds (deliveries are asynchronous).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func liveChange(path, identity string) live.Change {
	return live.Change{Live: true, Reason: live.ReasonPublished, Time: t0.Add(time.Second), Stream: live.Stream{
		Path: path, Source: "ome", Identity: identity, Protocol: "rtmp", Started: t0, LastSeen: t0,
	}}
}

func offlineChange(path, identity string) live.Change {
	c := liveChange(path, identity)
	c.Live, c.Reason, c.Time = false, live.ReasonUnpublished, t0.Add(time.Hour)
	return c
}
