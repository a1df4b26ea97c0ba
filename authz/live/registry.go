package live

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
)

// Default values of Config.
const (
	DefaultSweepInterval    = 30 * time.Second
	DefaultStaleAfter       = 2 * time.Minute
	DefaultSilentStaleAfter = 24 * time.Hour
	DefaultReorderWindow    = time.Minute
	DefaultSubscriberBuffer = 256
	DefaultMaxViewers       = 10_000
)

// Reasons carried by a Change.
const (
	ReasonPublished   = "published"   // a publisher started on an offline path
	ReasonUnpublished = "unpublished" // the current publisher's session ended
	ReasonExpired     = "expired"     // no event for the publisher's session within its stale time
)

// Config tunes expiry of sessions whose end was never reported (a lost done callback, a server
// that crashed, OME dropping "closing" for keys with ?key=). The zero Config means the defaults.
//
// A session that has sent at least one Alive (nginx-rtmp with on_update, the SFU) is expected to
// keep doing so and expires after StaleAfter of silence. A session that never sent one (SRS, OME,
// MediaMTX, nginx-rtmp without on_update) only reports start and end, so silence says nothing
// and it expires only after SilentStaleAfter, which must exceed the longest real stream: raise
// it (e.g. 8760h) for 24/7 streams. Sources overrides both for every session of one source.
type Config struct {
	// SweepInterval is how often Run sweeps (default 30s).
	SweepInterval conf.Duration `yaml:"sweep_interval" conf:"nonzero"`
	// StaleAfter expires a session that has sent Alive and then gone silent (default 2m: four
	// nginx-rtmp on_update periods).
	StaleAfter conf.Duration `yaml:"stale_after" conf:"nonzero"`
	// SilentStaleAfter expires a session that never sent Alive (default 24h).
	SilentStaleAfter conf.Duration `yaml:"silent_stale_after" conf:"nonzero"`
	// ReorderWindow is how long an ended session is remembered so that its late or duplicated
	// start (OME delivering "closing" before "opening") is ignored (default 1m).
	ReorderWindow conf.Duration `yaml:"reorder_window" conf:"nonzero"`
	// Sources sets per-source expiry, keyed by Event.Source ("nginx-rtmp", "ome", "srs", ...).
	Sources map[string]SourceConfig `yaml:"sources"`
	// MaxViewers bounds the viewer sessions held, over all paths (default 10000). Beyond it a
	// Joined for a new session is not recorded (the viewer was already admitted: the registry is
	// bookkeeping, not admission), and Sweep logs a warning. Publishers are never limited.
	MaxViewers int `yaml:"max_viewers" conf:"nonzero"`
}

// UnmarshalYAML decodes strictly and reports a negative max_viewers with its line.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config // no UnmarshalYAML: avoids recursion
	var raw plain
	err := conf.Strict(n, &raw)
	*c = Config(raw)
	if c.MaxViewers < 0 {
		at := n
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "max_viewers" {
				at = n.Content[i+1]
			}
		}
		err = conf.Join(err, conf.Errorf(at, "max_viewers must be 0 (the default, %d) or more", DefaultMaxViewers))
	}
	return err
}

func (c Config) maxViewers() int {
	if c.MaxViewers <= 0 {
		return DefaultMaxViewers
	}
	return c.MaxViewers
}

// SourceConfig is the expiry of one source's sessions.
type SourceConfig struct {
	// StaleAfter expires every session of the source after this much silence, whether or not it
	// sends Alive. Absent (Go: zero): the global rules; a written 0 is refused.
	StaleAfter conf.Duration `yaml:"stale_after" conf:"nonzero"`
}

func (c Config) staleFor(source string, alive bool) time.Duration {
	if sc, ok := c.Sources[source]; ok && sc.StaleAfter > 0 {
		return sc.StaleAfter.Std()
	}
	if alive {
		return c.StaleAfter.Or(DefaultStaleAfter)
	}
	return c.SilentStaleAfter.Or(DefaultSilentStaleAfter)
}

// Stream is a snapshot of one live path. Session is the server's id for the publisher's session
// (what an operator passes to DELETE /api/v1/sessions/{id}); no session id is a capability (the
// SFU ends a session only for its creating credential or an operator), and the API that shows
// them needs the api action. KeyID and KeyLabel name the stream key that admitted it, never the
// secret. Kick says what the last kick of the session did ("pending", "done", "failed: ...").
type Stream struct {
	Path     string    `json:"path"`
	Source   string    `json:"source"`
	Identity string    `json:"identity,omitempty"`
	Protocol string    `json:"protocol,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Session  string    `json:"session,omitempty"`
	KeyID    string    `json:"key_id,omitempty"`
	KeyLabel string    `json:"key_label,omitempty"`
	Kick     string    `json:"kick,omitempty"`
	Started  time.Time `json:"started"`   // when the path went live; a publisher reconnect keeps it
	LastSeen time.Time `json:"last_seen"` // the publisher's latest event
	Viewers  int       `json:"viewers"`
	Readers  []Reader  `json:"readers,omitempty"` // only from Get, oldest first
	// Node is the fleet node whose registry holds the stream, for another node's stream
	// (SetRemote); "" for this node's own.
	Node string `json:"node,omitempty"`
}

// Reader is one viewer session of a path.
type Reader struct {
	Source   string    `json:"source"`
	Identity string    `json:"identity,omitempty"`
	Protocol string    `json:"protocol,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Session  string    `json:"session,omitempty"`
	KeyID    string    `json:"key_id,omitempty"`
	KeyLabel string    `json:"key_label,omitempty"`
	Kick     string    `json:"kick,omitempty"`
	Joined   time.Time `json:"joined"`
	LastSeen time.Time `json:"last_seen"`
}

// Change is a real transition of a path: offline→live (Live true) or live→offline (Live false).
// Duplicated or reordered events and publisher reconnects never produce one.
type Change struct {
	Live   bool
	Reason string    // ReasonPublished, ReasonUnpublished or ReasonExpired
	Stream Stream    // the stream as it was at the transition (without Readers)
	Time   time.Time // when it happened (the event's Time, or the sweep's now)
}

// Option configures a Registry.
type Option func(*Registry)

// WithConfig sets expiry and sweeping (default: the zero Config, i.e. the defaults).
func WithConfig(c Config) Option { return func(r *Registry) { r.cfg = c } }

// WithClock sets the clock used for events without a Time and by Run (default time.Now).
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// WithLogger sets the logger for expiries and dropped changes (default: discard).
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.log = l } }

// WithSubscriberBuffer sets the channel capacity given to each Subscribe call (default 256).
func WithSubscriberBuffer(n int) Option { return func(r *Registry) { r.subBuf = n } }

type sessionKey struct{ source, session string }

type tombKey struct{ path, source, session string }

type session struct {
	key                        sessionKey
	identity, protocol, remote string
	keyID, keyLabel            string
	kick                       string // what the last kick did; "" if never kicked
	started, lastSeen          time.Time
	alive                      bool // has sent Alive: expires after StaleAfter
}

type entry struct {
	pub       *session // nil: offline
	liveSince time.Time
	readers   map[sessionKey]*session
}

type subscriber struct {
	ch  chan Change
	all bool // also other nodes' streams (SubscribeAll)
}

// Registry is the set of live streams and their viewers, fed by Record from every adapter and
// the SFU. It is safe for concurrent use; Record takes one short lock and never does I/O. Run
// starts the only goroutine (the sweeper). See Record for the rules that make it idempotent and
// tolerant of reordered callbacks.
type Registry struct {
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	subBuf int

	mu      sync.Mutex
	paths   map[string]*entry
	remote  map[string]Stream // other nodes' live streams by path (SetRemote)
	tombs   map[tombKey]time.Time
	subs    []*subscriber
	dropped atomic.Uint64
	logged  uint64 // dropped count at the last sweep's log line (guarded by mu)
	viewers int    // viewer sessions over all paths (guarded by mu)
	refused uint64 // Joined events not recorded because of MaxViewers (guarded by mu)
	warned  uint64 // refused count at the last sweep's log line (guarded by mu)
}

// NewRegistry returns an empty registry. It starts no goroutine; call Run to expire stale
// sessions.
func NewRegistry(opts ...Option) *Registry {
	r := &Registry{
		now:    time.Now,
		subBuf: DefaultSubscriberBuffer,
		paths:  map[string]*entry{},
		remote: map[string]Stream{},
		tombs:  map[tombKey]time.Time{},
	}
	for _, o := range opts {
		o(r)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.subBuf < 0 {
		r.subBuf = 0
	}
	return r
}

// maxTombs bounds the memory of ended sessions; beyond it, reorder protection is skipped for new
// ends until the next sweep.
const maxTombs = 100_000

// Record applies one event. It never blocks on I/O and never blocks on subscribers. Events
// without a valid Type, Path or Source are ignored; Path is trimmed of slashes; a zero Time
// means now. Paths form one namespace across sources.
//
// The rules, which make callbacks idempotent and order-tolerant (a session is identified by
// Source and Session; an empty Session is a session too, but cannot be told apart):
//   - Published on an offline path: the path goes live (Change live, ReasonPublished).
//   - Published by the current publisher again: refreshes LastSeen and fills fields still
//     empty; nothing else.
//   - Published by another session on a live path (a publisher reconnect whose old end is late
//     or lost): the new session takes over silently; Started is kept; the old session is ended.
//   - Unpublished by the current publisher: the path goes offline (Change offline,
//     ReasonUnpublished). Unpublished by any other session, or on an unknown path, changes no
//     stream.
//   - Every end (Unpublished, Left, a takeover) is remembered for ReorderWindow, and a
//     Published, Joined or Alive for an ended non-empty session in that time is ignored: it is
//     a late duplicate or arrived out of order.
//   - Joined adds a viewer once per session; Left removes it; both are idempotent. Viewers may
//     join an offline path (players waiting for a publisher) and are counted when it goes live.
//     A Joined for a new session while Config.MaxViewers sessions are held is not recorded.
//   - Alive refreshes the matching publisher or viewer session and marks it as one that sends
//     keep-alives (see Config); Alive for an unknown session is ignored.
func (r *Registry) Record(ev Event) {
	if ev.Type < Published || ev.Type > Alive || ev.Source == "" {
		return
	}
	path := strings.Trim(ev.Path, "/")
	if path == "" {
		return
	}
	t := ev.Time
	key := sessionKey{ev.Source, ev.Session}
	tk := tombKey{path, ev.Source, ev.Session}

	r.mu.Lock()
	defer r.mu.Unlock()
	if t.IsZero() {
		t = r.now()
	}
	e := r.paths[path]
	if ev.Session != "" && (ev.Type == Published || ev.Type == Joined || ev.Type == Alive) {
		if _, ended := r.tombs[tk]; ended {
			return
		}
	}
	switch ev.Type {
	case Published:
		if e == nil {
			e = &entry{}
			r.paths[path] = e
		}
		switch {
		case e.pub == nil:
			e.pub = newSession(key, ev, t)
			e.liveSince = t
			r.emit(Change{Live: true, Reason: ReasonPublished, Stream: e.snapshot(path, false), Time: t})
		case e.pub.key == key:
			e.pub.refresh(ev, t)
		default:
			r.tomb(tombKey{path, e.pub.key.source, e.pub.key.session}, t)
			e.pub = newSession(key, ev, t)
		}
	case Unpublished:
		r.tomb(tk, t)
		if e == nil || e.pub == nil || e.pub.key != key {
			return
		}
		c := Change{Live: false, Reason: ReasonUnpublished, Stream: e.snapshot(path, false), Time: t}
		e.pub = nil
		r.dropIfEmpty(path, e)
		r.emit(c)
		r.uncover(path, t)
	case Joined:
		if e != nil {
			if s, ok := e.readers[key]; ok {
				s.refresh(ev, t)
				return
			}
		}
		if r.viewers >= r.cfg.maxViewers() {
			r.refused++ // logged by Sweep: Record does no I/O
			return
		}
		if e == nil {
			e = &entry{}
			r.paths[path] = e
		}
		if e.readers == nil {
			e.readers = map[sessionKey]*session{}
		}
		e.readers[key] = newSession(key, ev, t)
		r.viewers++
	case Left:
		r.tomb(tk, t)
		if e == nil {
			return
		}
		if _, ok := e.readers[key]; ok {
			delete(e.readers, key)
			r.viewers--
		}
		r.dropIfEmpty(path, e)
	case Alive:
		if e == nil {
			return
		}
		s := e.readers[key]
		if e.pub != nil && e.pub.key == key {
			s = e.pub
		}
		if s != nil {
			s.alive = true
			if t.After(s.lastSeen) {
				s.lastSeen = t
			}
		}
	}
}

func newSession(key sessionKey, ev Event, t time.Time) *session {
	return &session{key: key, identity: ev.Identity, protocol: ev.Protocol, remote: ev.Remote,
		keyID: ev.KeyID, keyLabel: ev.KeyLabel, started: t, lastSeen: t}
}

func (s *session) refresh(ev Event, t time.Time) {
	if t.After(s.lastSeen) {
		s.lastSeen = t
	}
	if s.identity == "" {
		s.identity = ev.Identity
	}
	if s.protocol == "" {
		s.protocol = ev.Protocol
	}
	if s.remote == "" {
		s.remote = ev.Remote
	}
	if s.keyID == "" {
		s.keyID, s.keyLabel = ev.KeyID, ev.KeyLabel
	}
}

// tomb remembers an ended session (mu held).
func (r *Registry) tomb(k tombKey, t time.Time) {
	if k.session == "" || r.cfg.ReorderWindow.Or(DefaultReorderWindow) <= 0 {
		return
	}
	if _, ok := r.tombs[k]; !ok && len(r.tombs) >= maxTombs {
		return
	}
	r.tombs[k] = t
}

func (r *Registry) dropIfEmpty(path string, e *entry) {
	if e.pub == nil && len(e.readers) == 0 {
		delete(r.paths, path)
	}
}

// emit delivers c to every subscriber without blocking (mu held, so subscribers see changes in
// order and cancel cannot close a channel mid-send).
func (r *Registry) emit(c Change) {
	for _, s := range r.subs {
		select {
		case s.ch <- c:
		default:
			r.dropped.Add(1)
		}
	}
}

// emitAll delivers a change of another node's stream to the subscribers of SubscribeAll (mu
// held).
func (r *Registry) emitAll(c Change) {
	for _, s := range r.subs {
		if !s.all {
			continue
		}
		select {
		case s.ch <- c:
		default:
			r.dropped.Add(1)
		}
	}
}

// uncover announces, to the subscribers of SubscribeAll, another node's stream of path that a
// local publisher hid until it went offline (mu held).
func (r *Registry) uncover(path string, t time.Time) {
	if st, ok := r.remote[path]; ok {
		r.emitAll(Change{Live: true, Reason: ReasonPublished, Stream: st, Time: t})
	}
}

// localLive reports whether a local publisher holds path (mu held).
func (r *Registry) localLive(path string) bool {
	e := r.paths[path]
	return e != nil && e.pub != nil
}

// SetRemote replaces the other nodes' live streams (each with its Node set; those without a
// Node, a Path, or on a path already given are skipped) at t. List, Get and the subscribers of
// SubscribeAll see them; a local stream wins over another node's on the same path. A stream
// that appears emits a live Change, one that disappears (or moves to another node) an offline
// Change (ReasonUnpublished), to SubscribeAll's subscribers only: go-live notifications, publish
// leases and sessions (Sessions, kicks) stay this node's own. The caller bounds streams.
func (r *Registry) SetRemote(streams []Stream, t time.Time) {
	next := make(map[string]Stream, len(streams))
	for _, st := range streams {
		st.Path = strings.Trim(st.Path, "/")
		if st.Node == "" || st.Path == "" {
			continue
		}
		if _, dup := next[st.Path]; dup {
			continue
		}
		st.Readers = nil
		next[st.Path] = st
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.IsZero() {
		t = r.now()
	}
	old := r.remote
	r.remote = next
	for path, st := range old {
		if n, ok := next[path]; (!ok || n.Node != st.Node) && !r.localLive(path) {
			r.emitAll(Change{Live: false, Reason: ReasonUnpublished, Stream: st, Time: t})
		}
	}
	for path, st := range next {
		if o, ok := old[path]; (!ok || o.Node != st.Node) && !r.localLive(path) {
			r.emitAll(Change{Live: true, Reason: ReasonPublished, Stream: st, Time: t})
		}
	}
}

func (e *entry) snapshot(path string, withReaders bool) Stream {
	p := e.pub
	st := Stream{
		Path: path, Source: p.key.source, Session: p.key.session, Identity: p.identity,
		Protocol: p.protocol, Remote: p.remote, Started: e.liveSince, LastSeen: p.lastSeen,
		Viewers: len(e.readers), KeyID: p.keyID, KeyLabel: p.keyLabel, Kick: p.kick,
	}
	if withReaders && len(e.readers) > 0 {
		st.Readers = make([]Reader, 0, len(e.readers))
		for _, s := range e.readers {
			st.Readers = append(st.Readers, Reader{
				Source: s.key.source, Session: s.key.session, Identity: s.identity,
				Protocol: s.protocol, Remote: s.remote, Joined: s.started, LastSeen: s.lastSeen,
				KeyID: s.keyID, KeyLabel: s.keyLabel, Kick: s.kick,
			})
		}
		slices.SortFunc(st.Readers, func(a, b Reader) int {
			return cmp.Or(a.Joined.Compare(b.Joined), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Session, b.Session))
		})
	}
	return st
}

// List returns every live stream, this node's and the other nodes' (SetRemote; a local one
// wins on the same path), sorted by path, without Readers (Viewers counts them).
func (r *Registry) List() []Stream {
	r.mu.Lock()
	out := make([]Stream, 0, len(r.paths)+len(r.remote))
	for path, e := range r.paths {
		if e.pub != nil {
			out = append(out, e.snapshot(path, false))
		}
	}
	for path, st := range r.remote {
		if !r.localLive(path) {
			out = append(out, st)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Stream) int { return cmp.Compare(a.Path, b.Path) })
	return out
}

// Local returns this node's live streams only, sorted by path, without Readers: what it
// publishes to the other nodes of a fleet.
func (r *Registry) Local() []Stream {
	r.mu.Lock()
	out := make([]Stream, 0, len(r.paths))
	for path, e := range r.paths {
		if e.pub != nil {
			out = append(out, e.snapshot(path, false))
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Stream) int { return cmp.Compare(a.Path, b.Path) })
	return out
}

// Get returns the live stream at path (slashes trimmed), and whether it is live: this node's
// with its Readers, else another node's (SetRemote; without Readers).
func (r *Registry) Get(path string) (Stream, bool) {
	path = strings.Trim(path, "/")
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.paths[path]
	if e == nil || e.pub == nil {
		st, ok := r.remote[path]
		return st, ok
	}
	return e.snapshot(path, true), true
}

// Subscribe returns a channel of this node's Changes, buffered (WithSubscriberBuffer), and a
// cancel func that unsubscribes and closes the channel; cancel is idempotent and safe to call
// concurrently with Record. A full channel never blocks Record: the change is dropped for that
// subscriber and counted in Dropped. The caller owns draining the channel and calling cancel.
func (r *Registry) Subscribe() (<-chan Change, func()) { return r.subscribe(false) }

// SubscribeAll is Subscribe with the other nodes' streams too (SetRemote): what a list of the
// fleet's live streams follows (Events).
func (r *Registry) SubscribeAll() (<-chan Change, func()) { return r.subscribe(true) }

func (r *Registry) subscribe(all bool) (<-chan Change, func()) {
	s := &subscriber{ch: make(chan Change, r.subBuf), all: all}
	r.mu.Lock()
	r.subs = append(r.subs, s)
	r.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			r.mu.Lock()
			r.subs = slices.DeleteFunc(r.subs, func(x *subscriber) bool { return x == s })
			close(s.ch)
			r.mu.Unlock()
		})
	}
}

// Session is one publisher or viewer session as Sessions lists it: enough to find the sessions
// of a key or an identity and to end one through its server.
type Session struct {
	Source, ID, Path, Protocol, Identity, Remote string
	KeyID, KeyLabel                              string
	Publish                                      bool // the path's publisher; false: a viewer
}

// Sessions returns every session the registry holds, publishers and viewers, live paths or not,
// in no particular order.
func (r *Registry) Sessions() []Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Session, 0, len(r.paths)+r.viewers)
	add := func(path string, s *session, pub bool) {
		out = append(out, Session{Source: s.key.source, ID: s.key.session, Path: path, Protocol: s.protocol,
			Identity: s.identity, Remote: s.remote, KeyID: s.keyID, KeyLabel: s.keyLabel, Publish: pub})
	}
	for path, e := range r.paths {
		if e.pub != nil {
			add(path, e.pub, true)
		}
		for _, s := range e.readers {
			add(path, s, false)
		}
	}
	return out
}

// NoteKick records what the last kick of a session did (shown as Stream.Kick and Reader.Kick);
// a session the registry does not hold is ignored.
func (r *Registry) NoteKick(source, id, state string) {
	key := sessionKey{source, id}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.paths {
		if e.pub != nil && e.pub.key == key {
			e.pub.kick = state
		}
		if s, ok := e.readers[key]; ok {
			s.kick = state
		}
	}
}

// Dropped returns how many Changes were dropped because a subscriber's channel was full.
func (r *Registry) Dropped() uint64 { return r.dropped.Load() }

// Viewers returns how many viewer sessions the registry holds, over all paths, live or not; it
// never exceeds Config.MaxViewers.
func (r *Registry) Viewers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.viewers
}

// Sweep expires sessions that have been silent too long at now (see Config), emits an offline
// Change (ReasonExpired) for each expired publisher, and forgets ended sessions older than the
// reorder window. Run calls it; tests call it with an injected now.
func (r *Registry) Sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for path, e := range r.paths {
		for k, s := range e.readers {
			if r.expired(s, now) {
				delete(e.readers, k)
				r.viewers--
			}
		}
		if e.pub != nil && r.expired(e.pub, now) {
			c := Change{Live: false, Reason: ReasonExpired, Stream: e.snapshot(path, false), Time: now}
			r.log.Info("live: stream expired without an end event", "path", path, "source", e.pub.key.source,
				"identity", e.pub.identity, "last_seen", e.pub.lastSeen)
			e.pub = nil
			r.emit(c)
			r.uncover(path, now)
		}
		r.dropIfEmpty(path, e)
	}
	window := r.cfg.ReorderWindow.Or(DefaultReorderWindow)
	for k, t := range r.tombs {
		if now.Sub(t) >= window {
			delete(r.tombs, k)
		}
	}
	if d := r.dropped.Load(); d != r.logged {
		r.log.Warn("live: subscribers too slow, changes dropped", "dropped", d-r.logged, "total", d)
		r.logged = d
	}
	if r.refused != r.warned { // at most one line per sweep, however many were refused
		r.log.Warn("live: viewer sessions not recorded, the registry is full", "max_viewers", r.cfg.maxViewers(),
			"not_recorded", r.refused-r.warned, "total", r.refused)
		r.warned = r.refused
	}
}

func (r *Registry) expired(s *session, now time.Time) bool {
	ttl := r.cfg.staleFor(s.key.source, s.alive)
	return ttl > 0 && now.Sub(s.lastSeen) >= ttl
}

// Run sweeps every Config.SweepInterval until ctx is done. It is the registry's only goroutine;
// the caller owns it (go reg.Run(ctx)) and stops it by cancelling ctx. Subscriptions are not
// closed by Run: each subscriber cancels its own.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.SweepInterval.Or(DefaultSweepInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Sweep(r.now())
		}
	}
}
