package authz

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"live/cam", true},
		{"a", true},
		{"live/cam.hd/x-1_2", true},
		{strings.Repeat("a", MaxPathLen), true},
		{"", false},
		{strings.Repeat("a", MaxPathLen+1), false},
		{"/live/cam", false},
		{"live/cam/", false},
		{"live//cam", false},
		{"live/../admin", false},
		{"live/../../etc", false},
		{"..", false},
		{"live/.", false},
		{"./live", false},
		{"live/ca\x00m", false},
		{"live/cam\n", false},
		{"live/cam\x7f", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := CheckPath(tt.path)
			if got := err == nil; got != tt.ok {
				t.Fatalf("CheckPath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadStreamPath) {
				t.Errorf("error %v does not wrap ErrBadStreamPath", err)
			}
		})
	}
}

// TestEngineRefusesBadPaths: whatever the chain would say, the engine never lets a path with
// "..", empty segments or control characters through, so an adapter that forwards the server's
// path unchecked (MediaMTX's) cannot allow "live/../admin" on a "~^live/" rule.
func TestEngineRefusesBadPaths(t *testing.T) {
	allowAll := NewChain(Method{Name: "all", Backend: fixed(Allowing("x", time.Time{}), nil)})
	e := NewEngine(allowAll, nil)
	for _, p := range []string{"live/../admin", "live/../../etc", "live//x", "/live/x", "live/x/", "", "live/\x00"} {
		for _, a := range []Action{ActionPublish, ActionRead, ActionPlayback} {
			d := e.Authorize(context.Background(), &Request{Action: a, Path: p})
			if d.Allowed() || d.Reason != ReasonInvalidPath || d.HTTPStatus() != 403 {
				t.Errorf("%s %q: got %v/%q, want a 403 invalid_path denial", a, p, d.Outcome, d.Reason)
			}
		}
	}
	if d := e.Authorize(context.Background(), &Request{Action: ActionAPI}); !d.Allowed() {
		t.Errorf("api without a path: got %v/%q, want allow (api carries no path)", d.Outcome, d.Reason)
	}
}

// TestChainUndecided: a denial is Undecided exactly when a consulted method could not decide;
// Keep lets a re-checked session continue only then (or on an allow).
func TestChainUndecided(t *testing.T) {
	down := fixed(Decision{}, &ReasonError{Reason: "jwks_unavailable", Message: "key set unavailable"})
	deny := fixed(Denying(Unauthenticated, ReasonBadCredentials, "no"), nil)
	abstain := fixed(Decision{}, nil)
	allow := fixed(Allowing("x", time.Time{}), nil)
	tests := []struct {
		name          string
		methods       []Method
		undecided     bool
		keep, allowed bool
	}{
		{"allow", []Method{{Name: "a", Backend: allow}}, false, true, true},
		{"deny", []Method{{Name: "a", Backend: deny}}, false, false, false},
		{"abstain", []Method{{Name: "a", Backend: abstain}}, false, false, false},
		{"error", []Method{{Name: "a", Backend: down}}, true, true, false},
		{"abstain then error", []Method{{Name: "a", Backend: abstain}, {Name: "b", Backend: down}}, true, true, false},
		{"deny then error", []Method{{Name: "a", Backend: deny}, {Name: "b", Backend: down}}, true, true, false},
		{"error then allow", []Method{{Name: "a", Backend: down}, {Name: "b", Backend: allow}}, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewEngine(NewChain(tt.methods...), nil).Authorize(context.Background(), &Request{Action: ActionRead, Path: "live/a", Token: "t"})
			if d.Undecided != tt.undecided || d.Keep() != tt.keep || d.Allowed() != tt.allowed {
				t.Errorf("got undecided=%v keep=%v allowed=%v, want %v %v %v", d.Undecided, d.Keep(), d.Allowed(), tt.undecided, tt.keep, tt.allowed)
			}
		})
	}
}

func TestEngineGeneration(t *testing.T) {
	e := NewEngine(NewChain(), nil)
	if g := e.Generation(); g != 0 {
		t.Fatalf("new engine generation %d, want 0", g)
	}
	e.Swap(NewChain())
	e.Swap(NewChain())
	if g := e.Generation(); g != 2 {
		t.Errorf("after two swaps generation %d, want 2", g)
	}
}
