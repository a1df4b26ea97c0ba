package live

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"gatehouse/authz/guard"
)

// Defaults of Events.
const (
	// DefaultEventsRefresh is how often Events sends the full list again (viewer counts change
	// without a Change; the list doubles as a keep-alive through proxies).
	DefaultEventsRefresh = 15 * time.Second
	// DefaultMaxEventStreams bounds the open event streams.
	DefaultMaxEventStreams = 2_000
	// maxPrefix bounds the prefix query parameter (stream paths are at most authz.MaxPathLen).
	maxPrefix = 1024
)

// PublicStream is what a viewer's page may learn about a live stream: never the session id or
// the publisher's address.
type PublicStream struct {
	Path     string    `json:"path"`
	Source   string    `json:"source"`
	Identity string    `json:"identity,omitempty"`
	Protocol string    `json:"protocol,omitempty"`
	Started  time.Time `json:"started"`
	Viewers  int       `json:"viewers"`
	Node     string    `json:"node,omitempty"` // another fleet node's stream: that node's id
}

// Public returns the part of st a viewer may see.
func Public(st Stream) PublicStream {
	return PublicStream{Path: st.Path, Source: st.Source, Identity: st.Identity, Protocol: st.Protocol, Started: st.Started, Viewers: st.Viewers, Node: st.Node}
}

// Visible reports whether the viewer of one request may see a stream. It is asked again for
// every stream of every message, so a login, logout or expiry during the stream takes effect.
type Visible func(Stream) bool

// Events serves the registry's live and offline changes to browsers as server-sent events
// (text/event-stream), filtered per viewer:
//
//	event: streams  data: {"streams": [PublicStream...]}   first, and every refresh period
//	event: live     data: {"stream": PublicStream}          a path went live
//	event: offline  data: {"stream": PublicStream, "reason": "unpublished"|"expired"}
//
// GET /events?prefix=room/a/ narrows every message to the paths that start with the prefix (a
// room page follows only its room); the visibility check still applies to each of them.
//
// Each open stream holds one registry subscription, which it cancels when the client goes away
// or Close is called; Close ends every stream (call it when the server shuts down, since
// http.Server.Shutdown waits for handlers). Streams beyond the limit get 503.
type Events struct {
	reg     *Registry
	visible func(*http.Request) Visible
	refresh time.Duration
	max     int

	mu     sync.Mutex
	open   int
	closed bool
	done   chan struct{}
}

// NewEvents returns an Events over reg; visible returns, per request, which streams its viewer
// may see.
func NewEvents(reg *Registry, visible func(*http.Request) Visible) *Events {
	return &Events{reg: reg, visible: visible, refresh: DefaultEventsRefresh, max: DefaultMaxEventStreams, done: make(chan struct{})}
}

// Close ends every open stream and refuses new ones. It is idempotent.
func (e *Events) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
}

func (e *Events) acquire() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.open >= e.max {
		return false
	}
	e.open++
	return true
}

func (e *Events) release() {
	e.mu.Lock()
	e.open--
	e.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (e *Events) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	prefix := r.URL.Query().Get("prefix")
	if len(prefix) > maxPrefix {
		http.Error(w, "prefix too long", http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	if !e.acquire() {
		guard.SetRetryAfter(w.Header(), 10*time.Second)
		http.Error(w, "too many event streams", http.StatusServiceUnavailable)
		return
	}
	defer e.release()
	changes, cancel := e.reg.SubscribeAll()
	defer cancel()
	seen := e.visible(r)
	visible := func(st Stream) bool { return strings.HasPrefix(st.Path, prefix) && seen(st) }
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		// One data line: JSON never holds a raw newline.
		if _, err := w.Write([]byte("event: " + event + "\ndata: " + string(b) + "\n\n")); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	list := func() bool {
		out := []PublicStream{}
		for _, st := range e.reg.List() {
			if visible(st) {
				out = append(out, Public(st))
			}
		}
		return send("streams", struct {
			Streams []PublicStream `json:"streams"`
		}{out})
	}
	if _, err := w.Write([]byte("retry: 3000\n\n")); err != nil || !list() {
		return
	}
	t := time.NewTicker(e.refresh)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-e.done:
			return
		case <-t.C:
			if !list() {
				return
			}
		case c, ok := <-changes:
			if !ok {
				return
			}
			if !visible(c.Stream) {
				continue
			}
			var ok2 bool
			if c.Live {
				ok2 = send("live", struct {
					Stream PublicStream `json:"stream"`
				}{Public(c.Stream)})
			} else {
				ok2 = send("offline", struct {
					Stream PublicStream `json:"stream"`
					Reason string       `json:"reason"`
				}{Public(c.Stream), c.Reason})
			}
			if !ok2 {
				return
			}
		}
	}
}
