package nginxrtmp

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
	"gatehouse/authz/live/livetest"
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

// recorder is the shared in-memory Recorder.
type recorder = livetest.Recorder

func newRecorder() *recorder { return &recorder{} }

func has(r *recorder, match func(live.Event) bool) bool {
	for _, e := range r.Events() {
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
