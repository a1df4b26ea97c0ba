// Package revoke ends live sessions whose grant is gone: a stream key revoked or rotated (the
// key store's feed), an operator's kick, and the temporary ban a kick may carry. It finds the
// sessions of a key or identity in what the servers reported (live.Registry and any other Lister)
// and ends each through its server's Kicker (the SFU, nginx-rtmp's control module, MediaMTX's,
// SRS's and OvenMediaEngine's APIs), asynchronously: a hook answer never waits for a kick. It
// also ends the sessions that a Rechecker (an adapter whose server never asks again) finds
// expired or, after RecheckAll, denied.
//
// Servers without a Kicker end such sessions themselves at their next re-check (nginx-rtmp's
// on_update, the SFU's) or at the grant's end (OvenMediaEngine's lifetime, the only end for an
// OME viewer); the revoker notes that instead.
package revoke

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gatehouse/authz/live"
)

// Sentinel errors of package revoke.
var (
	// ErrGone is wrapped by a Kicker whose server no longer has the session: the kick is done.
	ErrGone = errors.New("revoke: session already gone")
	// ErrUnsupported is wrapped by a Kicker whose server cannot end this kind of session (an
	// OvenMediaEngine viewer): it is reported once, not retried.
	ErrUnsupported = errors.New("revoke: this server cannot end this session from outside")
	// ErrQueueFull is returned by Kick when Config.QueueSize kicks are waiting.
	ErrQueueFull = errors.New("revoke: kick queue full")
	// ErrNoKicker is returned by Kick for a source that has no Kicker.
	ErrNoKicker = errors.New("revoke: this server's sessions cannot be ended from gatehouse")
	// ErrNotFound is returned by Find for an unknown session id.
	ErrNotFound = errors.New("revoke: no such session")
	// ErrAmbiguous is returned by Find when several sources have a session with the id.
	ErrAmbiguous = errors.New("revoke: several servers have a session with this id; say which with source")
)

// Kicker ends one live session on its server. Kick must honour ctx and return an error wrapping
// ErrGone when the server no longer has the session; any other error is retried with backoff.
// The error must not contain a credential.
type Kicker interface {
	Kick(ctx context.Context, s live.Session) error
}

// KickerFunc adapts a function to Kicker.
type KickerFunc func(ctx context.Context, s live.Session) error

// Kick calls f.
func (f KickerFunc) Kick(ctx context.Context, s live.Session) error { return f(ctx, s) }

// Lister lists live sessions; *live.Registry implements it, and so does an adapter that keeps
// sessions the registry does not (MediaMTX, which reports no session end).
type Lister interface {
	Sessions() []live.Session
}

// Rechecker is a server adapter that remembers the requests that admitted its running sessions,
// because its server never asks again and cannot end a session at a time (MediaMTX, SRS). The
// revoker ends what it returns through the source's Kicker. An adapter whose server ends its own
// sessions (the SFU) may implement it returning nothing.
type Rechecker interface {
	// Recheck decides every remembered session again and returns, forgetting them, those whose
	// answer is a real denial (authz.Decision.Keep false). It must honour ctx.
	Recheck(ctx context.Context) []live.Session
	// Expired returns, forgetting them, the sessions whose grant has expired. It is called
	// often and must be cheap when nothing has expired.
	Expired() []live.Session
}

// Noter shows what a kick did next to the session; *live.Registry implements it.
type Noter interface {
	NoteKick(source, id, state string)
}

// Defaults of Config.
const (
	DefaultQueueSize   = 1024
	DefaultMaxAttempts = 8
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultTimeout     = 5 * time.Second
	maxPending         = 1024 // revocations waiting for a rotation's grace period to end
)

// Config tunes kicks. The zero Config means the defaults.
type Config struct {
	QueueSize   int           // kicks waiting or being retried (default 1024); beyond it Kick fails
	MaxAttempts int           // attempts per kick before it is reported failed (default 8)
	Backoff     time.Duration // wait before the first retry, doubled each time (default 1s)
	MaxBackoff  time.Duration // longest wait between attempts (default 1m)
	Timeout     time.Duration // one attempt's limit (default 5s)
}

// Match selects sessions: those admitted by the stream key KeyID, or of Identity. Empty fields
// match nothing.
type Match struct {
	KeyID    string `json:"key_id,omitempty"`
	Identity string `json:"identity,omitempty"`
}

func (m Match) matches(s live.Session) bool {
	return (m.KeyID != "" && s.KeyID == m.KeyID) || (m.Identity != "" && s.Identity == m.Identity)
}

type job struct {
	s       live.Session
	why     string
	attempt int
	next    time.Time
}

type pending struct {
	m   Match
	at  time.Time
	why string
}

// Revoker finds and ends sessions. Build it with New, start Run in a goroutine you own and
// cancel its context to stop it; Revoke and Kick only queue work and never block on a server.
// Safe for concurrent use.
type Revoker struct {
	cfg     Config
	kickers map[string]Kicker
	listers []Lister
	note    Noter
	log     *slog.Logger
	now     func() time.Time
	wake    chan struct{}

	recheckers []Rechecker

	mu         sync.Mutex
	queue      []*job
	pending    []pending
	recheckDue bool
}

// Option configures a Revoker.
type Option func(*Revoker)

// WithRecheckers adds adapters whose sessions Run ends when their grant expires, and re-decides
// after RecheckAll.
func WithRecheckers(rs ...Rechecker) Option {
	return func(r *Revoker) { r.recheckers = append(r.recheckers, rs...) }
}

// RecheckAll asks Run to decide every remembered session of every Rechecker again (after a
// reload: a user or key removed or revoked) and to end those now denied. It returns at once.
func (r *Revoker) RecheckAll() {
	r.mu.Lock()
	r.recheckDue = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(r *Revoker) { r.now = now } }

// New returns a revoker that ends sessions of each source (live.Session.Source) through
// kickers[source], finds them in listers and notes kicks on note (nil: nowhere), logging each
// kick to log (nil: discard). It starts nothing.
func New(cfg Config, kickers map[string]Kicker, listers []Lister, note Noter, log *slog.Logger, opts ...Option) *Revoker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	r := &Revoker{cfg: cfg, kickers: map[string]Kicker{}, listers: listers, note: note, log: log,
		now: time.Now, wake: make(chan struct{}, 1)}
	for src, k := range kickers {
		if k != nil {
			r.kickers[src] = k
		}
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Sessions lists every live session the listers know.
func (r *Revoker) Sessions() []live.Session {
	var out []live.Session
	for _, l := range r.listers {
		out = append(out, l.Sessions()...)
	}
	return out
}

// Find returns the session with the id (and source, if not empty).
func (r *Revoker) Find(source, id string) (live.Session, error) {
	var found []live.Session
	for _, s := range r.Sessions() {
		if s.ID == id && id != "" && (source == "" || s.Source == source) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return live.Session{}, ErrNotFound
	case 1:
		return found[0], nil
	}
	return live.Session{}, ErrAmbiguous
}

// Revoke ends every session m selects, at at (now or earlier: at once; later: when at comes, for
// a rotation's grace period). why is logged ("key revoked", "kicked by an operator"). It returns
// how many sessions it queued now.
func (r *Revoker) Revoke(m Match, at time.Time, why string) int {
	if m.KeyID == "" && m.Identity == "" {
		return 0
	}
	if at.After(r.now()) {
		r.mu.Lock()
		full := len(r.pending) >= maxPending
		if !full {
			r.pending = append(r.pending, pending{m, at, why})
		}
		r.mu.Unlock()
		if full {
			r.log.Error("revoke: too many revocations waiting for their time; ending these sessions now", "key_id", m.KeyID, "identity", m.Identity)
		} else {
			r.log.Info("revoke: sessions will be ended", "key_id", m.KeyID, "identity", m.Identity, "at", at, "why", why)
			return 0
		}
	}
	n := 0
	for _, s := range r.Sessions() {
		if !m.matches(s) {
			continue
		}
		if err := r.Kick(s, why); err == nil {
			n++
		}
	}
	r.log.Info("revoke: ending sessions", "key_id", m.KeyID, "identity", m.Identity, "why", why, "sessions", n)
	return n
}

// Kick queues the end of s. It fails with ErrNoKicker when s's server cannot be asked (the
// session then ends at that server's next re-check, if it has one) and with ErrQueueFull.
func (r *Revoker) Kick(s live.Session, why string) error {
	if _, ok := r.kickers[s.Source]; !ok {
		r.noteKick(s, "waiting for "+s.Source+"'s next re-check")
		r.log.Info("revoke: no API to end this session; the server ends it at its next re-check, if any",
			"source", s.Source, "session", s.ID, "path", s.Path, "key_id", s.KeyID, "why", why)
		return fmt.Errorf("%w (%s)", ErrNoKicker, s.Source)
	}
	r.mu.Lock()
	full := len(r.queue) >= r.cfg.QueueSize
	if !full {
		r.queue = append(r.queue, &job{s: s, why: why})
	}
	r.mu.Unlock()
	if full {
		r.log.Error("revoke: kick queue full; session not ended", "source", s.Source, "session", s.ID, "path", s.Path)
		r.noteKick(s, "failed: queue full")
		return ErrQueueFull
	}
	r.noteKick(s, "pending")
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

func (r *Revoker) noteKick(s live.Session, state string) {
	if r.note != nil {
		r.note.NoteKick(s.Source, s.ID, state)
	}
}

// Run performs queued kicks, retries failed ones with backoff, starts revocations whose time
// has come, ends the Recheckers' sessions whose grant expired (checked every 200ms) and runs the
// re-checks RecheckAll asks for, until ctx ends. It is the revoker's only goroutine; kicks still queued then are
// abandoned (logged).
func (r *Revoker) Run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		r.step(ctx)
		select {
		case <-ctx.Done():
			r.mu.Lock()
			left := len(r.queue)
			r.mu.Unlock()
			if left > 0 {
				r.log.Warn("revoke: shutting down with kicks not done", "kicks", left)
			}
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// recheck ends the sessions whose grant expired and, after RecheckAll, those a re-decision
// denies, through their Kickers.
func (r *Revoker) recheck(ctx context.Context) {
	r.mu.Lock()
	due := r.recheckDue
	r.recheckDue = false
	r.mu.Unlock()
	for _, rc := range r.recheckers {
		for _, s := range rc.Expired() {
			_ = r.Kick(s, "grant expired")
		}
		if !due {
			continue
		}
		ended := rc.Recheck(ctx)
		for _, s := range ended {
			_ = r.Kick(s, "grant removed (re-checked after a reload)")
		}
		if len(ended) > 0 {
			r.log.Info("revoke: re-check ended sessions", "source", ended[0].Source, "sessions", len(ended))
		}
	}
}

// step starts due revocations and performs every due kick once.
func (r *Revoker) step(ctx context.Context) {
	r.recheck(ctx)
	now := r.now()
	r.mu.Lock()
	var due []pending
	keep := r.pending[:0]
	for _, p := range r.pending {
		if !p.at.After(now) {
			due = append(due, p)
		} else {
			keep = append(keep, p)
		}
	}
	r.pending = keep
	r.mu.Unlock()
	for _, p := range due {
		r.Revoke(p.m, p.at, p.why)
	}

	r.mu.Lock()
	var run []*job
	rest := r.queue[:0]
	for _, j := range r.queue {
		if !j.next.After(now) {
			run = append(run, j)
		} else {
			rest = append(rest, j)
		}
	}
	r.queue = rest
	r.mu.Unlock()
	for _, j := range run {
		if ctx.Err() != nil {
			r.requeue(j)
			continue
		}
		r.attempt(ctx, j)
	}
}

func (r *Revoker) requeue(j *job) {
	r.mu.Lock()
	r.queue = append(r.queue, j)
	r.mu.Unlock()
}

// attempt makes one attempt at j and logs it; a failure is retried after a doubling backoff.
func (r *Revoker) attempt(ctx context.Context, j *job) {
	j.attempt++
	actx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	err := r.kickers[j.s.Source].Kick(actx, j.s)
	cancel()
	attrs := []any{"source", j.s.Source, "session", j.s.ID, "path", j.s.Path, "identity", j.s.Identity,
		"key_id", j.s.KeyID, "why", j.why, "attempt", j.attempt}
	switch {
	case err == nil:
		r.log.Info("revoke: session ended", attrs...)
		r.noteKick(j.s, "done")
	case errors.Is(err, ErrGone):
		r.log.Info("revoke: session was already gone", attrs...)
		r.noteKick(j.s, "done")
	case errors.Is(err, ErrUnsupported):
		r.log.Warn("revoke: this server cannot end this session; it ends at its grant's end or the server's next check", append(attrs, "error", err.Error())...)
		r.noteKick(j.s, "not possible: "+err.Error())
	case ctx.Err() != nil:
		r.requeue(j) // shutting down: not the server's fault
	case j.attempt >= r.cfg.MaxAttempts:
		r.log.Error("revoke: could not end session; giving up", append(attrs, "error", err.Error())...)
		r.noteKick(j.s, "failed: "+err.Error())
	default:
		wait := r.cfg.Backoff << (j.attempt - 1)
		if wait > r.cfg.MaxBackoff || wait <= 0 {
			wait = r.cfg.MaxBackoff
		}
		j.next = r.now().Add(wait)
		r.log.Warn("revoke: could not end session; will retry", append(attrs, "error", err.Error(), "retry_in", wait)...)
		r.noteKick(j.s, fmt.Sprintf("retrying (attempt %d failed: %v)", j.attempt, err))
		r.requeue(j)
	}
}

// Order is a kick made on one node of a fleet for the others: end the session Session (of
// Source, if not empty) wherever it runs, banning its key or identity until BanUntil (zero: no
// ban); or, without Session, every session Match selects. It carries no credential.
type Order struct {
	Source   string    `json:"source,omitempty"`
	Session  string    `json:"session,omitempty"`
	Match    Match     `json:"match,omitzero"`
	BanUntil time.Time `json:"ban_until,omitzero"`
	Why      string    `json:"why,omitempty"`
}

// Broadcaster announces an Order to the other nodes of a fleet (and must not deliver it back to
// this one). Announce must honour ctx; an error means the fleet could not be told.
type Broadcaster interface {
	Broadcast(ctx context.Context, o Order) error
}

// Apply carries out an Order another node announced: it kicks the session if this node holds
// it, after banning (through ban, may be nil) its key or identity until o.BanUntil, or ends the
// sessions o.Match selects. A session this node does not hold is none of its business. It
// returns how many sessions it queued.
func (r *Revoker) Apply(o Order, ban Banner) int {
	why := o.Why
	if why == "" {
		why = "kicked by an operator on another node"
	}
	if o.Session == "" {
		return r.Revoke(o.Match, r.now(), why)
	}
	s, err := r.Find(o.Source, o.Session)
	if err != nil {
		return 0
	}
	if !o.BanUntil.IsZero() && o.BanUntil.After(r.now()) && ban != nil {
		if keyID, identity, _ := banSubject(s); keyID != "" || identity != "" {
			if err := ban.Ban(keyID, identity, o.BanUntil); err != nil {
				r.log.Error("revoke: could not ban for another node's kick", "session", s.ID, "error", err.Error())
			}
		}
	}
	if r.Kick(s, why) != nil {
		return 0
	}
	return 1
}
