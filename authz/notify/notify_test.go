package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/authz/live"
)

func TestDeliverDiscord(t *testing.T) {
	checkGoroutines(t)
	tests := []struct {
		name     string
		hook     Webhook
		change   live.Change
		wantBody string
	}{
		{
			name:     "live with defaults",
			hook:     Webhook{Format: FormatDiscord},
			change:   liveChange("live/alice", "alice"),
			wantBody: `{"content":"alice is live on live/alice","allowed_mentions":{"parse":[]}}`,
		},
		{
			name:     "offline default, identity unknown falls back to the stream name",
			hook:     Webhook{Format: FormatDiscord},
			change:   offlineChange("live/alice", ""),
			wantBody: `{"content":"alice is no longer live on live/alice","allowed_mentions":{"parse":[]}}`,
		},
		{
			name: "templates, per-identity avatar escaped",
			hook: Webhook{Format: FormatDiscord, Username: "Gatehouse ({source})", AvatarURL: "https://cdn.example/av/{identity}.png",
				LiveMessage: "<@&42> **{identity}** went live: {name} via {protocol} ({event}, {reason})"},
			change: liveChange("live/al ice", "al ice/x"),
			wantBody: `{"content":"<@&42> **al ice/x** went live: al ice via rtmp (live, published)","username":"Gatehouse (ome)",` +
				`"avatar_url":"https://cdn.example/av/al%20ice%2Fx.png","allowed_mentions":{"parse":[]}}`,
		},
		{
			name:     "mentions are never parsed",
			hook:     Webhook{Format: FormatDiscord},
			change:   liveChange("live/x", "@everyone"),
			wantBody: `{"content":"@everyone is live on live/x","allowed_mentions":{"parse":[]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, status(http.StatusNoContent))
			tt.hook.URL = rc.URL + "/api/webhooks/1/tok"
			tt.hook.Headers = map[string]string{"X-Extra": "yes"}
			n, _, _ := testNotifier(t, Config{Webhooks: []Webhook{tt.hook}})
			start(t, n, nil)
			n.Notify(tt.change)
			got := rc.next(t)
			if got.Body != tt.wantBody {
				t.Errorf("body:\ngot  %s\nwant %s", got.Body, tt.wantBody)
			}
			for k, want := range map[string]string{"Content-Type": "application/json", "X-Extra": "yes",
				"User-Agent": "gatehouse-notify/1", HeaderSignature: "", HeaderTimestamp: ""} {
				if g := got.Header.Get(k); g != want {
					t.Errorf("header %s: got %q, want %q", k, g, want)
				}
			}
			if got.Path != "/api/webhooks/1/tok" {
				t.Errorf("path: got %s", got.Path)
			}
			waitFor(t, "delivered count", func() bool { return n.Stats()[0].Delivered == 1 })
		})
	}
}

func TestTruncate(t *testing.T) {
	n, _, _ := testNotifier(t, Config{Webhooks: []Webhook{{URL: "http://x", Format: FormatDiscord, Username: "{identity}"}}})
	body, err := render(n.hooks[0].cfg, job{event: EventLive, change: liveChange("a", strings.Repeat("é", 3000))})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"content":"` + strings.Repeat("é", 1999) + `…","username":"` + strings.Repeat("é", 79) + `…",`
	if !strings.HasPrefix(string(body), want) {
		t.Errorf("got %.120s..., want content cut to 2000 and username to 80 runes", body)
	}
}

func TestDeliverJSON(t *testing.T) {
	checkGoroutines(t)
	rc := newReceiver(t, status(http.StatusOK))
	secret := "s3cret-key"
	n, _, _ := testNotifier(t, Config{Webhooks: []Webhook{{Name: "ops", URL: rc.URL + "/hook", Format: FormatJSON, Secret: secret}}})
	start(t, n, nil)
	n.Notify(liveChange("live/alice", "alice"))
	n.Notify(offlineChange("live/alice", "alice"))

	wantBodies := []string{
		`{"event":"live","reason":"published","path":"live/alice","identity":"alice","source":"ome","protocol":"rtmp",` +
			`"started":"2026-05-12T13:45:00Z","time":"2026-05-12T13:45:01Z","id":"id-1"}`,
		`{"event":"offline","reason":"unpublished","path":"live/alice","identity":"alice","source":"ome","protocol":"rtmp",` +
			`"started":"2026-05-12T13:45:00Z","time":"2026-05-12T14:45:00Z","id":"id-2"}`,
	}
	for i, want := range wantBodies {
		got := rc.next(t)
		if got.Body != want {
			t.Errorf("body %d:\ngot  %s\nwant %s", i, got.Body, want)
		}
		ts := fmt.Sprint(t0.Unix())
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(ts + "." + want))
		wantSig := "sha256=" + hex.EncodeToString(m.Sum(nil))
		for k, w := range map[string]string{
			"Content-Type": "application/json", HeaderTimestamp: ts, HeaderSignature: wantSig,
			HeaderEvent: []string{"live", "offline"}[i], HeaderDelivery: fmt.Sprintf("id-%d", i+1),
		} {
			if g := got.Header.Get(k); g != w {
				t.Errorf("request %d header %s: got %q, want %q", i, k, g, w)
			}
		}
		if err := Verify([]byte(secret), got.Header.Get(HeaderTimestamp), []byte(got.Body),
			got.Header.Get(HeaderSignature), t0, DefaultMaxSkew); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("k")
	body := []byte(`{"event":"live"}`)
	ts := t0.Unix()
	good := Sign(secret, ts, body)
	tests := []struct {
		name      string
		secret    []byte
		timestamp string
		body      []byte
		signature string
		now       time.Time
		want      error
	}{
		{name: "valid", timestamp: fmt.Sprint(ts), signature: good, now: t0},
		{name: "valid at the edge of the skew", timestamp: fmt.Sprint(ts), signature: good, now: t0.Add(DefaultMaxSkew)},
		{name: "one of several signatures", timestamp: fmt.Sprint(ts), signature: "sha256=00, " + good, now: t0},
		{name: "upper-case hex", timestamp: fmt.Sprint(ts), signature: "sha256=" + strings.ToUpper(good[7:]), now: t0},
		{name: "tampered body", timestamp: fmt.Sprint(ts), body: []byte(`{"event":"offline"}`), signature: good, now: t0, want: ErrBadSignature},
		{name: "wrong secret", secret: []byte("other"), timestamp: fmt.Sprint(ts), signature: good, now: t0, want: ErrBadSignature},
		{name: "timestamp changed", timestamp: fmt.Sprint(ts + 1), signature: good, now: t0, want: ErrBadSignature},
		{name: "old timestamp (replay)", timestamp: fmt.Sprint(ts), signature: good, now: t0.Add(DefaultMaxSkew + time.Second), want: ErrStaleTimestamp},
		{name: "future timestamp", timestamp: fmt.Sprint(ts), signature: good, now: t0.Add(-DefaultMaxSkew - time.Second), want: ErrStaleTimestamp},
		{name: "far past timestamp", timestamp: "-9223372036854775808", signature: good, now: t0, want: ErrStaleTimestamp},
		{name: "malformed timestamp", timestamp: "yesterday", signature: good, now: t0, want: ErrBadTimestamp},
		{name: "empty timestamp", timestamp: "", signature: good, now: t0, want: ErrBadTimestamp},
		{name: "plus sign", timestamp: fmt.Sprintf("+%d", ts), signature: good, now: t0, want: ErrBadTimestamp},
		{name: "no prefix", timestamp: fmt.Sprint(ts), signature: good[7:], now: t0, want: ErrBadSignature},
		{name: "other algorithm", timestamp: fmt.Sprint(ts), signature: "sha1=" + good[7:], now: t0, want: ErrBadSignature},
		{name: "empty signature", timestamp: fmt.Sprint(ts), now: t0, want: ErrBadSignature},
		{name: "truncated signature", timestamp: fmt.Sprint(ts), signature: good[:40], now: t0, want: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.secret == nil {
				tt.secret = secret
			}
			if tt.body == nil {
				tt.body = body
			}
			err := Verify(tt.secret, tt.timestamp, tt.body, tt.signature, tt.now, DefaultMaxSkew)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{1, 0.998, 999 * time.Millisecond},
		{2, 0, time.Second},
		{3, 0.5, 3 * time.Second},
		{7, 0, 30 * time.Second}, // capped at 1m
		{1000, 1, time.Minute},   // no overflow
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("attempt %d jitter %v", tt.attempt, tt.jitter), func(t *testing.T) {
			got := backoff(time.Second, time.Minute, tt.attempt, tt.jitter).Round(time.Microsecond)
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	checkGoroutines(t)
	rateLimited := func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"You are being rate limited.","retry_after":2.5,"global":false}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	headerOnly := func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	dateRetry := func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.Header().Set("Retry-After", t0.Add(20*time.Second).Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	tooLong := func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}
	tests := []struct {
		name          string
		answer        reply
		maxAttempts   int
		wantRequests  int
		wantSleeps    []time.Duration
		wantDelivered bool
		wantLog       string
	}{
		{name: "500 twice then success, exponential backoff", answer: status(500, 502, 204), wantRequests: 3,
			wantSleeps: []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond}, wantDelivered: true},
		{name: "408 is retried", answer: status(408, 200), wantRequests: 2,
			wantSleeps: []time.Duration{750 * time.Millisecond}, wantDelivered: true},
		{name: "discord 429 retry_after from the body", answer: rateLimited, wantRequests: 2,
			wantSleeps: []time.Duration{2500 * time.Millisecond}, wantDelivered: true},
		{name: "429 Retry-After header", answer: headerOnly, wantRequests: 2,
			wantSleeps: []time.Duration{7 * time.Second}, wantDelivered: true},
		{name: "503 Retry-After date", answer: dateRetry, wantRequests: 2,
			wantSleeps: []time.Duration{20 * time.Second}, wantDelivered: true},
		{name: "gives up after max attempts", answer: status(500), maxAttempts: 3, wantRequests: 3,
			wantSleeps: []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond}, wantLog: "attempts exhausted"},
		{name: "4xx is permanent", answer: status(404), wantRequests: 1, wantLog: "permanent error"},
		{name: "redirects are not followed", answer: func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, wantRequests: 1, wantLog: "permanent error"},
		{name: "a wait beyond max_backoff gives up", answer: tooLong, wantRequests: 1,
			wantLog: "receiver asked to wait longer than max_backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.answer)
			n, sl, logs := testNotifier(t, Config{Webhooks: []Webhook{{
				URL: rc.URL + "/secret-token-path", Format: FormatJSON, Secret: "k", MaxAttempts: tt.maxAttempts,
			}}})
			start(t, n, nil)
			n.Notify(liveChange("live/a", "a"))
			waitFor(t, "the outcome", func() bool { s := n.Stats()[0]; return s.Delivered+s.Failed == 1 })
			if got := len(rc.requests()); got != tt.wantRequests {
				t.Errorf("requests: got %d, want %d", got, tt.wantRequests)
			}
			if got := sl.list(); !slices.Equal(got, tt.wantSleeps) {
				t.Errorf("sleeps: got %v, want %v", got, tt.wantSleeps)
			}
			if got := n.Stats()[0].Delivered == 1; got != tt.wantDelivered {
				t.Errorf("delivered: got %v, want %v", got, tt.wantDelivered)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs)
			}
			if strings.Contains(logs.String(), "secret-token-path") {
				t.Errorf("log contains the webhook URL:\n%s", logs)
			}
			ids := map[string]bool{}
			for _, r := range rc.requests() {
				ids[r.Header.Get(HeaderDelivery)] = true
			}
			if len(ids) != 1 {
				t.Errorf("delivery ids across retries: got %v, want one", ids)
			}
		})
	}
}

func TestTimeoutIsRetriedAndURLNotLogged(t *testing.T) {
	checkGoroutines(t)
	rc := newReceiver(t, hang)
	n, sl, logs := testNotifier(t, Config{Webhooks: []Webhook{{
		URL: rc.URL + "/api/webhooks/1/TOKEN", Format: FormatDiscord, Timeout: 20 * time.Millisecond, MaxAttempts: 2,
	}}})
	start(t, n, nil)
	n.Notify(liveChange("live/a", "a"))
	waitFor(t, "failure", func() bool { return n.Stats()[0].Failed == 1 })
	if got := len(rc.requests()); got != 2 {
		t.Errorf("requests: got %d, want 2", got)
	}
	if got := len(sl.list()); got != 1 {
		t.Errorf("sleeps: got %d, want 1", got)
	}
	if l := logs.String(); strings.Contains(l, "TOKEN") || strings.Contains(l, rc.URL) {
		t.Errorf("log contains the URL:\n%s", l)
	} else if !strings.Contains(l, "err=timeout") {
		t.Errorf("log lacks err=timeout:\n%s", l)
	}
}

func TestEventsFilter(t *testing.T) {
	checkGoroutines(t)
	rc := newReceiver(t, status(204))
	n, _, _ := testNotifier(t, Config{Webhooks: []Webhook{{URL: rc.URL, Format: FormatDiscord, Events: []Event{EventOffline}}}})
	start(t, n, nil)
	n.Notify(liveChange("live/a", "a"))
	n.Notify(offlineChange("live/a", "a"))
	if got := rc.next(t).Body; !strings.Contains(got, "no longer live") {
		t.Errorf("got %s, want the offline message only", got)
	}
	waitFor(t, "delivery", func() bool { return n.Stats()[0].Delivered == 1 })
	if got := len(rc.requests()); got != 1 {
		t.Errorf("requests: got %d, want 1", got)
	}
}

func TestHangingReceiverBlocksNobody(t *testing.T) {
	checkGoroutines(t)
	slow := newReceiver(t, hang)
	fast := newReceiver(t, status(204))
	reg := live.NewRegistry()
	changes, unsubscribe := reg.Subscribe()
	defer unsubscribe()
	n, _, _ := testNotifier(t, Config{QueueSize: 2, Webhooks: []Webhook{
		{Name: "slow", URL: slow.URL, Format: FormatDiscord},
		{Name: "fast", URL: fast.URL, Format: FormatDiscord, Events: []Event{EventLive}},
	}})
	start(t, n, changes)

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			reg.Record(live.Event{Type: live.Published, Path: fmt.Sprintf("live/%d", i), Source: "ome", Session: "s"})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked behind a hanging receiver")
	}
	slow.next(t) // the slow webhook's worker is stuck in its first request...
	fast.next(t) // ...while the fast one delivers
	waitFor(t, "drops on the slow webhook", func() bool { return n.Stats()[0].Dropped > 0 })
	if got := slow.requests(); len(got) != 1 {
		t.Errorf("slow receiver: got %d requests, want 1 (still hanging)", len(got))
	}
}

func TestQueueFullDrops(t *testing.T) {
	rc := newReceiver(t, status(204))
	n, _, logs := testNotifier(t, Config{QueueSize: 2, Webhooks: []Webhook{{Name: "d", URL: rc.URL, Format: FormatDiscord}}})
	for range 5 { // no Run: nothing drains the queue
		n.Notify(liveChange("live/a", "a"))
	}
	want := Stats{Name: "d", Dropped: 3, Queued: 2}
	if got := n.Stats()[0]; got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := strings.Count(logs.String(), "queue full"); got != 3 {
		t.Errorf("queue-full log lines: got %d, want 3", got)
	}
	n.Close()
}

func TestLifecycle(t *testing.T) {
	checkGoroutines(t)
	t.Run("Close waits for workers stuck in a delivery", func(t *testing.T) {
		rc := newReceiver(t, hang)
		n, _, _ := testNotifier(t, Config{Webhooks: []Webhook{{URL: rc.URL, Format: FormatDiscord}}})
		runDone := make(chan error, 1)
		go func() { runDone <- n.Run(t.Context(), nil) }()
		n.Notify(liveChange("live/a", "a"))
		rc.next(t) // the worker is now inside the request
		n.Close()
		// Run closes done once its workers have returned (its deferred close, after wg.Wait):
		// Close must not return before that. (Reading runDone here instead raced with the
		// goroutine's send of Run's result, which comes after done is closed.)
		select {
		case <-n.done:
		default:
			t.Fatal("Close returned before Run")
		}
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
		n.Close() // idempotent
		n.Notify(liveChange("live/b", "b"))
		if got := n.Stats()[0].Queued; got != 0 {
			t.Errorf("queued after Close: got %d, want 0", got)
		}
		if err := n.Run(t.Context(), nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Run after Close: got %v, want ErrClosed", err)
		}
	})
	t.Run("context cancel stops Run", func(t *testing.T) {
		n, _, _ := testNotifier(t, Config{Webhooks: []Webhook{{URL: "http://127.0.0.1:1/", Format: FormatDiscord}}})
		ctx, cancel := context.WithCancel(t.Context())
		runDone := make(chan error, 1)
		go func() { runDone <- n.Run(ctx, nil) }()
		waitFor(t, "Run to start", func() bool { n.mu.Lock(); defer n.mu.Unlock(); return n.running })
		if err := n.Run(ctx, nil); !errors.Is(err, ErrRunning) {
			t.Errorf("second Run: got %v, want ErrRunning", err)
		}
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
		n.Close()
	})
	t.Run("closed changes channel stops intake only", func(t *testing.T) {
		rc := newReceiver(t, status(204))
		reg := live.NewRegistry()
		changes, unsubscribe := reg.Subscribe()
		n, _, _ := testNotifier(t, Config{Webhooks: []Webhook{{URL: rc.URL, Format: FormatDiscord}}})
		start(t, n, changes)
		reg.Record(live.Event{Type: live.Published, Path: "live/a", Source: "srs", Session: "1"})
		rc.next(t)
		unsubscribe()
		n.Notify(liveChange("live/b", "b")) // still delivering
		if got := rc.next(t).Body; !strings.Contains(got, "live/b") {
			t.Errorf("got %s, want live/b", got)
		}
	})
	t.Run("close before run", func(t *testing.T) {
		n, _, _ := testNotifier(t, Config{})
		n.Close()
		if err := n.Run(t.Context(), nil); !errors.Is(err, ErrClosed) {
			t.Errorf("got %v, want ErrClosed", err)
		}
	})
}

// TestRenderSaysWhichKey: a go-live notification names the stream key that went live (id and
// label, never a secret), in the JSON body and through {key_id} and {key_label}.
func TestRenderSaysWhichKey(t *testing.T) {
	c := liveChange("live/alice", "alice")
	c.Stream.KeyID, c.Stream.KeyLabel = "key_3kq7w2mhxa", "Alice's OBS"
	for _, tt := range []struct {
		name string
		hook Webhook
		want string
	}{
		{"json", Webhook{URL: "http://x", Format: FormatJSON, Secret: "s3cret-key"}, `"key_id":"key_3kq7w2mhxa","key_label":"Alice's OBS"}`},
		{"discord template", Webhook{URL: "http://x", Format: FormatDiscord, LiveMessage: "{path} by {key_label} ({key_id})"},
			`"content":"live/alice by Alice's OBS (key_3kq7w2mhxa)"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, _, _ := testNotifier(t, Config{Webhooks: []Webhook{tt.hook}})
			body, err := render(n.hooks[0].cfg, job{event: EventLive, change: c})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(body), tt.want) {
				t.Errorf("got %s, want it to contain %s", body, tt.want)
			}
		})
	}
}
