package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeLeases answers Claim with err and remembers the paths claimed.
type fakeLeases struct {
	mu      sync.Mutex
	err     error
	claimed []string
}

func (f *fakeLeases) Claim(_ context.Context, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claimed = append(f.claimed, path)
	return f.err
}

// TestPathLeases: with WithPathLeases, an allowed new publish claims its (public) path; a path
// held elsewhere is refused path_busy (409), an unreachable state state_unavailable (503, fail
// closed, Undecided so a running session would be kept); reads, re-checks and denials never
// claim. Without the option nothing changes.
func TestPathLeases(t *testing.T) {
	renamed := Allowing("alice", time.Time{})
	renamed.Rename = "live/alice"
	tests := []struct {
		name      string
		err       error
		req       Request
		allow     Decision
		want      string // reason
		status    int
		undecided bool
		claimed   []string
	}{
		{"free path", nil, Request{Action: ActionPublish, Path: "live/a"}, Allowing("a", time.Time{}), ReasonAllowed, 200, false, []string{"live/a"}},
		{"renamed: the public path", nil, Request{Action: ActionPublish, Path: "live/SECRETKEY", CanRename: true}, renamed, ReasonAllowed, 200, false, []string{"live/alice"}},
		{"busy", fmt.Errorf("x: %w", ErrPathBusy), Request{Action: ActionPublish, Path: "live/a"}, Allowing("a", time.Time{}), ReasonPathBusy, 409, false, []string{"live/a"}},
		{"state down", errors.New("redis down"), Request{Action: ActionPublish, Path: "live/a"}, Allowing("a", time.Time{}), ReasonStateUnavailable, 503, true, []string{"live/a"}},
		{"read never claims", errors.New("redis down"), Request{Action: ActionRead, Path: "live/a"}, Allowing("a", time.Time{}), ReasonAllowed, 200, false, nil},
		{"recheck never claims", errors.New("redis down"), Request{Action: ActionPublish, Path: "live/a", Kind: KindRecheck}, Allowing("a", time.Time{}), ReasonAllowed, 200, false, nil},
		{"denial never claims", nil, Request{Action: ActionPublish, Path: "live/a"}, Denying(Forbidden, ReasonNotPermitted, "no"), ReasonNotPermitted, 403, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeLeases{err: tt.err}
			e := NewEngine(NewChain(Method{Name: "m", Backend: fixed(tt.allow, nil)}), nil, WithPathLeases(l))
			req := tt.req
			d := e.Authorize(context.Background(), &req)
			if d.Reason != tt.want || d.HTTPStatus() != tt.status || d.Undecided != tt.undecided {
				t.Fatalf("got %s %d undecided=%v, want %s %d undecided=%v", d.Reason, d.HTTPStatus(), d.Undecided, tt.want, tt.status, tt.undecided)
			}
			if fmt.Sprint(l.claimed) != fmt.Sprint(tt.claimed) {
				t.Fatalf("claimed %v, want %v", l.claimed, tt.claimed)
			}
			// Without leases (one process): the same request is decided as before.
			plain := NewEngine(NewChain(Method{Name: "m", Backend: fixed(tt.allow, nil)}), nil)
			req = tt.req
			if d := plain.Authorize(context.Background(), &req); d.Outcome != tt.allow.Outcome {
				t.Fatalf("without leases: got %v, want %v", d.Outcome, tt.allow.Outcome)
			}
		})
	}
}

// genBans is a BanStore that learnt n operator bans from elsewhere.
type genBans struct {
	BanStore
	n uint64
}

func (g *genBans) Generation() uint64 { return g.n }

// TestGenerationFromSharedBans: an operator ban learnt by a shared ban store advances the
// engine's generation as a local one does.
func TestGenerationFromSharedBans(t *testing.T) {
	store := &genBans{BanStore: NewMemoryBans(MaxBans)}
	e := NewEngine(NewChain(), nil, WithBanStore(store))
	g0 := e.Generation()
	store.n++
	if g1 := e.Generation(); g1 <= g0 {
		t.Fatalf("generation %d after a shared operator ban, want > %d", g1, g0)
	}
	g1 := e.Generation()
	if err := e.Ban("key_a", "", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if g2 := e.Generation(); g2 <= g1 {
		t.Fatalf("generation %d after a local ban, want > %d", g2, g1)
	}
}
