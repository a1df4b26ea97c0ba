// Package livetest provides an in-memory recorder of live events for the tests of every adapter
// and the SFU.
package livetest

import (
	"sync"
	"testing"
	"time"

	"gatehouse/authz/live"
)

// Recorder collects events; it satisfies every adapter's Recorder interface and is safe for
// concurrent use. The zero value is ready.
type Recorder struct {
	mu      sync.Mutex
	events  []live.Event
	changed chan struct{} // closed and replaced on every event
}

// Record appends ev.
func (r *Recorder) Record(ev live.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.changed != nil {
		close(r.changed)
	}
	r.changed = make(chan struct{})
}

// Events returns a copy of every event so far, in order.
func (r *Recorder) Events() []live.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]live.Event(nil), r.events...)
}

// Count returns how many events of type t for path were recorded.
func (r *Recorder) Count(t live.EventType, path string) int {
	n := 0
	for _, ev := range r.Events() {
		if ev.Type == t && ev.Path == path {
			n++
		}
	}
	return n
}

// WaitFor returns the first event that matches, waiting up to d; it fails the test (naming
// what) when none arrives.
func (r *Recorder) WaitFor(t testing.TB, d time.Duration, what string, match func(live.Event) bool) live.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if match(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("no %s event within %v; got %+v", what, d, r.Events())
			return live.Event{}
		}
	}
}
