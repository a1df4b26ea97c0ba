// Package decisions keeps what the management page shows of the engine's recent work: the last
// denials and the last allows (two bounded rings, so a flood of allows never pushes a denial
// out) and how many decisions of each kind were made in each of the last 60 minutes. It is fed
// by the engine as its authz.Observer and holds only what the engine's log lines hold: the
// logged path (never a stream key), never a credential.
package decisions

import (
	"net/netip"
	"sync"
	"time"

	"gatehouse/authz"
)

// Defaults of New.
const (
	// DefaultSize is how many denials, and separately how many allows, are kept.
	DefaultSize = 100
	// Minutes is how many minutes the per-minute counts cover.
	Minutes = 60
)

// Entry is one decision as the API shows it.
type Entry struct {
	Time      time.Time `json:"time"`
	Action    string    `json:"action"`
	Path      string    `json:"path"`
	Protocol  string    `json:"protocol,omitempty"`
	Source    string    `json:"source,omitempty"`
	Result    string    `json:"result"` // allow, unauthenticated, forbidden
	Reason    string    `json:"reason,omitempty"`
	Method    string    `json:"method,omitempty"` // the method (backend id) that decided
	Identity  string    `json:"identity,omitempty"`
	KeyID     string    `json:"key_id,omitempty"`
	IP        string    `json:"ip,omitempty"`
	TookMS    float64   `json:"took_ms"`
	Undecided bool      `json:"undecided,omitempty"`
}

// Minute counts the decisions of one minute.
type Minute struct {
	Start   time.Time `json:"start"`
	Allowed uint64    `json:"allowed"`
	Denied  uint64    `json:"denied"`
}

// Snapshot is what Recent holds at one moment.
type Snapshot struct {
	// Decisions are the kept denials, newest first, then the kept allows, newest first.
	Decisions []Entry `json:"decisions"`
	// Minutes are the last 60 minutes, oldest first; the last one is the current minute.
	Minutes []Minute `json:"minutes"`
}

// Recent is a bounded record of recent decisions; it implements authz.Observer. Memory is fixed
// by its size. It starts no goroutines and is safe for concurrent use.
type Recent struct {
	now func() time.Time

	mu      sync.Mutex
	denials ring
	allows  ring
	minutes [Minutes]bucket
}

type bucket struct {
	minute          int64 // unix minute this bucket counts, 0: never used
	allowed, denied uint64
}

// ring keeps the last len(buf) entries; next is where the next one goes.
type ring struct {
	buf  []record
	next int
	full bool
}

// record is an Entry as kept: its IP is written out only when a snapshot shows it, not on every
// decision.
type record struct {
	Entry
	ip netip.Addr
}

func (r *ring) add(e Entry, ip netip.Addr) {
	r.buf[r.next] = record{Entry: e, ip: ip}
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// newest appends the ring's entries, newest first.
func (r *ring) newest(out []Entry) []Entry {
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	for i := 1; i <= n; i++ {
		rec := &r.buf[(r.next-i+len(r.buf))%len(r.buf)]
		e := rec.Entry
		if rec.ip.IsValid() {
			e.IP = rec.ip.String()
		}
		out = append(out, e)
	}
	return out
}

// Option configures a Recent.
type Option func(*Recent)

// WithClock sets the clock the per-minute window is read by (default time.Now).
func WithClock(now func() time.Time) Option { return func(r *Recent) { r.now = now } }

// New returns a Recent keeping the last size denials and the last size allows (size <= 0:
// DefaultSize).
func New(size int, opts ...Option) *Recent {
	if size <= 0 {
		size = DefaultSize
	}
	r := &Recent{now: time.Now, denials: ring{buf: make([]record, size)}, allows: ring{buf: make([]record, size)}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Observe implements authz.Observer.
func (r *Recent) Observe(o authz.Observation) {
	e := Entry{
		Time: o.Time.UTC(), Action: string(o.Action), Path: o.Path, Protocol: o.Protocol, Source: o.Source,
		Result: o.Outcome.String(), Reason: o.Reason, Method: o.Method, Identity: o.Identity, KeyID: o.KeyID,
		TookMS: float64(o.Took.Microseconds()) / 1000, Undecided: o.Undecided,
	}
	allowed := o.Outcome == authz.Allow
	m := o.Time.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	if allowed {
		r.allows.add(e, o.IP)
	} else {
		r.denials.add(e, o.IP)
	}
	b := &r.minutes[slot(m)]
	switch {
	case b.minute > m: // older than the window (a clock step): not counted
		return
	case b.minute < m:
		*b = bucket{minute: m}
	}
	if allowed {
		b.allowed++
	} else {
		b.denied++
	}
}

func slot(minute int64) int { return int(((minute % Minutes) + Minutes) % Minutes) }

// Snapshot returns a copy of what r holds now.
func (r *Recent) Snapshot() Snapshot {
	now := r.now().Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Snapshot{Minutes: make([]Minute, Minutes)}
	s.Decisions = r.denials.newest(make([]Entry, 0, 2*len(r.denials.buf)))
	s.Decisions = r.allows.newest(s.Decisions)
	for i := range Minutes {
		m := now - int64(Minutes-1-i)
		s.Minutes[i].Start = time.Unix(m*60, 0).UTC()
		if b := r.minutes[slot(m)]; b.minute == m {
			s.Minutes[i].Allowed, s.Minutes[i].Denied = b.allowed, b.denied
		}
	}
	return s
}

// ensure Recent is an authz.Observer.
var _ authz.Observer = (*Recent)(nil)
