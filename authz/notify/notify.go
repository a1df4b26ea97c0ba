// Package notify delivers go-live and offline notifications to webhooks: Discord's
// execute-webhook body, or a generic JSON event signed with HMAC-SHA256 (Stripe-style, with a
// timestamp against replays; receivers check it with Verify). It consumes the live registry's
// Changes; every webhook has its own bounded queue and worker, so a slow or hanging receiver
// delays nobody, and enqueueing never blocks.
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gatehouse/authz/live"
)

// Sentinel errors of package notify.
var (
	// ErrInvalidConfig wraps every configuration problem returned by New.
	ErrInvalidConfig = errors.New("notify: invalid configuration")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("notify: notifier closed")
	// ErrRunning is returned by a second concurrent or repeated Run.
	ErrRunning = errors.New("notify: Run already called")
	// ErrBadTimestamp is returned by Verify for a timestamp that is not Unix seconds.
	ErrBadTimestamp = errors.New("notify: malformed timestamp")
	// ErrStaleTimestamp is returned by Verify for a timestamp outside the allowed skew (a replay).
	ErrStaleTimestamp = errors.New("notify: timestamp outside the allowed skew")
	// ErrBadSignature is returned by Verify when no signature matches.
	ErrBadSignature = errors.New("notify: signature mismatch")
)

// maxResponse bounds how much of a receiver's reply is read.
const maxResponse = 64 << 10

// Option configures a Notifier.
type Option func(*Notifier)

// WithHTTPClient sets the client used for deliveries (default: a client on its own transport
// that follows no redirects, so signatures and header secrets never go elsewhere). Per-attempt
// timeouts come from the webhook's Timeout, not from the client.
func WithHTTPClient(c *http.Client) Option {
	return func(n *Notifier) { n.client = c; n.transport = nil }
}

// WithClock sets the clock used for signature timestamps and Retry-After dates (default time.Now).
func WithClock(now func() time.Time) Option { return func(n *Notifier) { n.now = now } }

// Notifier delivers Changes to webhooks. New starts nothing; Run starts one worker per webhook
// and returns after they stop (ctx done or Close). Notify enqueues without ever blocking. It is
// safe for concurrent use.
type Notifier struct {
	hooks     []*hook
	queueSize int
	log       *slog.Logger
	client    *http.Client
	transport *http.Transport // ours to close, nil if the client was given
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
	jitter    func() float64 // in [0, 1)
	newID     func() string

	mu      sync.Mutex
	running bool
	closed  atomic.Bool
	cancel  context.CancelFunc
	done    chan struct{}
}

type hook struct {
	cfg                        Webhook
	queue                      chan job
	delivered, failed, dropped atomic.Uint64
	wantsLive, wantsOffline    bool
}

type job struct {
	id     string
	event  Event
	change live.Change
}

// New checks cfg and returns a Notifier logging to log (nil: discard). All problems are
// returned at once, wrapped in ErrInvalidConfig, and never contain a URL, secret or header value.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Notifier, error) {
	hooks, err := resolveAll(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	n := &Notifier{
		queueSize: cfg.QueueSize,
		log:       log,
		transport: tr,
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now:    time.Now,
		sleep:  sleepCtx,
		jitter: mrand.Float64,
		newID:  randomID,
		done:   make(chan struct{}),
	}
	if n.queueSize == 0 {
		n.queueSize = DefaultQueueSize
	}
	for _, o := range opts {
		o(n)
	}
	for _, w := range hooks {
		h := &hook{cfg: w, queue: make(chan job, n.queueSize)}
		for _, e := range w.Events {
			h.wantsLive = h.wantsLive || e == EventLive
			h.wantsOffline = h.wantsOffline || e == EventOffline
		}
		n.hooks = append(n.hooks, h)
	}
	return n, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Run starts one delivery worker per webhook, feeds them every Change received from changes
// (typically the channel of live.Registry.Subscribe; nil if Notify is called directly), and
// blocks until ctx is done or Close is called, then stops the workers (abandoning queued and
// in-flight deliveries) and returns nil. A closed changes channel stops intake only. Run may be
// called once; the caller owns its goroutine.
func (n *Notifier) Run(ctx context.Context, changes <-chan live.Change) error {
	n.mu.Lock()
	switch {
	case n.closed.Load():
		n.mu.Unlock()
		return ErrClosed
	case n.running:
		n.mu.Unlock()
		return ErrRunning
	}
	n.running = true
	ctx, cancel := context.WithCancel(ctx)
	n.cancel = cancel
	n.mu.Unlock()
	defer close(n.done)
	defer cancel()

	var wg sync.WaitGroup
	for _, h := range n.hooks {
		wg.Go(func() { n.worker(ctx, h) })
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case c, ok := <-changes:
			if !ok {
				changes = nil // intake ends; deliveries continue until ctx is done
				continue
			}
			n.Notify(c)
		}
	}
	cancel()
	wg.Wait()
	if n.transport != nil {
		n.transport.CloseIdleConnections()
	}
	return nil
}

// Close stops Run and waits for its workers to exit; later Notify calls drop. It is idempotent
// and safe to call whether or not Run was started.
func (n *Notifier) Close() {
	n.mu.Lock()
	n.closed.Store(true)
	running, cancel := n.running, n.cancel
	n.mu.Unlock()
	if running {
		cancel()
		<-n.done
	}
}

// Notify enqueues c for every webhook that wants its event and returns at once: a webhook whose
// queue is full drops it, counts it (Stats) and logs a warning. After Close it drops silently.
func (n *Notifier) Notify(c live.Change) {
	if n.closed.Load() {
		return
	}
	j := job{id: n.newID(), event: EventOffline, change: c}
	if c.Live {
		j.event = EventLive
	}
	for _, h := range n.hooks {
		if (c.Live && !h.wantsLive) || (!c.Live && !h.wantsOffline) {
			continue
		}
		select {
		case h.queue <- j:
		default:
			h.dropped.Add(1)
			n.log.Warn("notify: queue full, notification dropped", "webhook", h.cfg.Name,
				"event", string(j.event), "path", c.Stream.Path, "dropped", h.dropped.Load())
		}
	}
}

// Stats are one webhook's counters since New.
type Stats struct {
	Name      string
	Delivered uint64 // accepted by the receiver (2xx)
	Failed    uint64 // given up: permanent error or attempts exhausted
	Dropped   uint64 // not enqueued: queue full
	Queued    int    // waiting now
}

// Stats returns each webhook's counters, in configuration order.
func (n *Notifier) Stats() []Stats {
	out := make([]Stats, len(n.hooks))
	for i, h := range n.hooks {
		out[i] = Stats{Name: h.cfg.Name, Delivered: h.delivered.Load(), Failed: h.failed.Load(),
			Dropped: h.dropped.Load(), Queued: len(h.queue)}
	}
	return out
}

func (n *Notifier) worker(ctx context.Context, h *hook) {
	for {
		select {
		case <-ctx.Done():
			if q := len(h.queue); q > 0 {
				n.log.Warn("notify: stopping with undelivered notifications", "webhook", h.cfg.Name, "queued", q)
			}
			return
		case j := <-h.queue:
			n.deliver(ctx, h, j)
		}
	}
}

// result is one attempt's outcome.
type result struct {
	status     int
	retry      bool          // worth another attempt
	retryAfter time.Duration // the receiver's requested wait, if any
	err        error         // never contains the URL
}

func (n *Notifier) deliver(ctx context.Context, h *hook, j job) {
	body, err := render(h.cfg, j)
	if err != nil { // cannot happen with the types marshalled; counted rather than ignored
		n.log.Error("notify: cannot render notification", "webhook", h.cfg.Name, "err", err)
		h.failed.Add(1)
		return
	}
	for attempt := 1; ; attempt++ {
		res := n.attempt(ctx, h, j, body)
		// Each outcome is logged before it is counted: whoever sees it in Stats finds its line.
		if res.err == nil && !res.retry {
			n.log.Debug("notify: delivered", "webhook", h.cfg.Name, "event", string(j.event),
				"path", j.change.Stream.Path, "attempts", attempt)
			h.delivered.Add(1)
			return
		}
		if ctx.Err() != nil {
			return // shutting down: not a receiver failure
		}
		wait := backoff(h.cfg.Backoff, h.cfg.MaxBackoff, attempt, n.jitter())
		giveUp := ""
		switch {
		case !res.retry:
			giveUp = "permanent error"
		case attempt >= h.cfg.MaxAttempts:
			giveUp = "attempts exhausted"
		case res.retryAfter > h.cfg.MaxBackoff:
			giveUp = "receiver asked to wait longer than max_backoff"
		case res.retryAfter > 0:
			wait = res.retryAfter
		}
		if giveUp != "" {
			n.log.Warn("notify: delivery failed", "webhook", h.cfg.Name, "event", string(j.event),
				"path", j.change.Stream.Path, "attempts", attempt, "status", res.status, "err", res.err, "why", giveUp)
			h.failed.Add(1)
			return
		}
		n.log.Debug("notify: retrying", "webhook", h.cfg.Name, "attempt", attempt, "status", res.status,
			"err", res.err, "wait", wait)
		if n.sleep(ctx, wait) != nil {
			return
		}
	}
}

// backoff is the wait after the given failed attempt (1-based): base doubled per attempt, capped
// at limit, with equal jitter (half fixed, half random) so many gateways do not retry in step.
func backoff(base, limit time.Duration, attempt int, jitter float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + time.Duration(jitter*float64(d/2))
}

func (n *Notifier) attempt(ctx context.Context, h *hook, j job, body []byte) result {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return result{err: errors.New("cannot build request")}
	}
	for k, v := range h.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "gatehouse-notify/1")
	}
	if h.cfg.Format == FormatJSON {
		ts := n.now().Unix()
		req.Header.Set(HeaderEvent, string(j.event))
		req.Header.Set(HeaderDelivery, j.id)
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign([]byte(h.cfg.Secret), ts, body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return result{retry: true, err: stripURL(err)}
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	res := result{status: resp.StatusCode}
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return res
	case s == http.StatusTooManyRequests:
		res.retryAfter = n.retryAfter(resp.Header, reply)
		res.retry = true
	case s == http.StatusRequestTimeout || s >= 500:
		res.retryAfter = n.retryAfter(resp.Header, nil)
		res.retry = true
	}
	res.err = fmt.Errorf("receiver answered %s", resp.Status)
	return res
}

// stripURL drops the URL from a client error: a Discord webhook URL is a credential.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timeout")
	}
	return err
}

// retryAfter reads Discord's JSON retry_after (seconds, fractional) from a 429 body, else the
// Retry-After header (seconds or an HTTP date); 0 if neither.
func (n *Notifier) retryAfter(h http.Header, body []byte) time.Duration {
	var d struct {
		RetryAfter float64 `json:"retry_after"`
	}
	if len(body) > 0 && json.Unmarshal(body, &d) == nil && d.RetryAfter > 0 && d.RetryAfter < 1e6 {
		return time.Duration(d.RetryAfter * float64(time.Second))
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(n.now()), 0)
	}
	return 0
}

// render returns the request body for j in w's format.
func render(w Webhook, j job) ([]byte, error) {
	s := j.change.Stream
	var v any
	switch w.Format {
	case FormatJSON:
		v = jsonBody{
			Event: string(j.event), Reason: j.change.Reason, Path: s.Path, Identity: s.Identity,
			Source: s.Source, Protocol: s.Protocol, Started: s.Started.UTC(), Time: j.change.Time.UTC(), ID: j.id,
			KeyID: s.KeyID, KeyLabel: s.KeyLabel,
		}
	default:
		msg := w.LiveMessage
		if j.event == EventOffline {
			msg = w.OfflineMessage
		}
		plain, escaped := replacers(j)
		v = discordBody{
			Content:         truncate(plain.Replace(msg), 2000),
			Username:        truncate(plain.Replace(w.Username), 80),
			AvatarURL:       escaped.Replace(w.AvatarURL),
			AllowedMentions: allowedMentions{Parse: []string{}},
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Discord mentions like <@&role> stay readable
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("notify: encode body: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// jsonBody is FormatJSON's body. Field order is the wire order.
type jsonBody struct {
	Event    string    `json:"event"`
	Reason   string    `json:"reason"`
	Path     string    `json:"path"`
	Identity string    `json:"identity"`
	Source   string    `json:"source"`
	Protocol string    `json:"protocol"`
	Started  time.Time `json:"started"`
	Time     time.Time `json:"time"`
	ID       string    `json:"id"`
	KeyID    string    `json:"key_id,omitempty"`    // the stream key that went live, never its secret
	KeyLabel string    `json:"key_label,omitempty"` // that key's label
}

// discordBody is FormatDiscord's body. Mentions are never parsed from content, so an identity
// named "@everyone" cannot ping a server.
type discordBody struct {
	Content         string          `json:"content"`
	Username        string          `json:"username,omitempty"`
	AvatarURL       string          `json:"avatar_url,omitempty"`
	AllowedMentions allowedMentions `json:"allowed_mentions"`
}

type allowedMentions struct {
	Parse []string `json:"parse"`
}

// replacers returns the template substitutions for j: plain, and path-escaped for URLs.
func replacers(j job) (plain, escaped *strings.Replacer) {
	s := j.change.Stream
	name := s.Path[strings.LastIndexByte(s.Path, '/')+1:]
	identity := s.Identity
	if identity == "" {
		identity = name
	}
	kv := []string{
		"{identity}", identity, "{path}", s.Path, "{name}", name, "{source}", s.Source,
		"{protocol}", s.Protocol, "{event}", string(j.event), "{reason}", j.change.Reason,
		"{key_id}", s.KeyID, "{key_label}", s.KeyLabel,
	}
	esc := make([]string, len(kv))
	for i := range kv {
		esc[i] = kv[i]
		if i%2 == 1 {
			esc[i] = url.PathEscape(kv[i])
		}
	}
	return strings.NewReplacer(kv...), strings.NewReplacer(esc...)
}

// truncate cuts s to at most n runes, as Discord rejects longer fields.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
