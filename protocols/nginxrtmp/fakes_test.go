package nginxrtmp

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

// fakeAuth answers with decide and remembers every request.
type fakeAuth struct {
	mu     sync.Mutex
	reqs   []authz.Request
	decide func(*authz.Request) authz.Decision
}

func (f *fakeAuth) Authorize(_ context.Context, req *authz.Request) authz.Decision {
	f.mu.Lock()
	f.reqs = append(f.reqs, *req)
	f.mu.Unlock()
	if f.decide == nil {
		return authz.Allowing("someone", time.Time{})
	}
	return f.decide(req)
}

func (f *fakeAuth) last(t *testing.T) authz.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the authorizer was not asked")
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeAuth) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// recorder is an in-memory Recorder whose waitFor blocks until a matching event arrives.
type recorder struct {
	mu      sync.Mutex
	events  []live.Event
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) Record(e live.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) all() []live.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]live.Event(nil), r.events...)
}

// waitFor returns the first event matching match, waiting up to d.
func (r *recorder) waitFor(t *testing.T, d time.Duration, what string, match func(live.Event) bool) live.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if match(e) {
				r.mu.Unlock()
				return e
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("no %s event within %v; got %s", what, d, describe(r.all()))
		}
	}
}

func (r *recorder) has(match func(live.Event) bool) bool {
	for _, e := range r.all() {
		if match(e) {
			return true
		}
	}
	return false
}

func is(typ live.EventType, path string) func(live.Event) bool {
	return func(e live.Event) bool { return e.Type == typ && e.Path == path }
}

var typeNames = map[live.EventType]string{
	live.Published: "published", live.Unpublished: "unpublished", live.Joined: "joined", live.Left: "left", live.Alive: "alive",
}

func describe(evs []live.Event) string {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(typeNames[e.Type] + " " + e.Path + " " + e.Session)
	}
	b.WriteString("]")
	return b.String()
}
