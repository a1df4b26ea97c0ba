package authz

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func fixed(d Decision, err error) Backend {
	return BackendFunc(func(context.Context, *Request) (Decision, error) { return d, err })
}

func TestChain(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	allow := fixed(Allowing("alice", exp), nil)
	abstain := fixed(Decision{}, nil)
	unauth := fixed(Denying(Unauthenticated, "token_expired", "token expired"), nil)
	forbid := fixed(Denying(Forbidden, ReasonNotPermitted, "no"), nil)
	broken := fixed(Decision{}, errors.New("dial tcp: connection refused"))
	upstream := fixed(Decision{}, &ReasonError{Reason: ReasonUpstream, Message: "upstream unavailable", Err: context.DeadlineExceeded})

	tests := []struct {
		name        string
		methods     []Method
		req         Request
		wantOutcome Outcome
		wantReason  string
		wantBackend string
		wantSteps   int
	}{
		{"first allow wins", []Method{{Name: "a", Backend: forbid}, {Name: "b", Backend: allow}, {Name: "c", Backend: broken}}, Request{Action: ActionRead}, Allow, ReasonAllowed, "b", 2},
		{"all abstain without credentials is 401", []Method{{Name: "a", Backend: abstain}}, Request{Action: ActionRead}, Unauthenticated, ReasonNoCredentials, "", 1},
		{"all abstain with credentials is 401 bad", []Method{{Name: "a", Backend: abstain}}, Request{Action: ActionRead, User: "x"}, Unauthenticated, ReasonBadCredentials, "", 1},
		{"forbidden beats unauthenticated", []Method{{Name: "a", Backend: unauth}, {Name: "b", Backend: forbid}, {Name: "c", Backend: unauth}}, Request{Action: ActionRead}, Forbidden, ReasonNotPermitted, "b", 3},
		{"unauthenticated keeps its reason", []Method{{Name: "a", Backend: abstain}, {Name: "b", Backend: unauth}}, Request{Action: ActionRead, Token: "t"}, Unauthenticated, "token_expired", "b", 2},
		{"error fails closed", []Method{{Name: "a", Backend: broken}}, Request{Action: ActionRead}, Forbidden, ReasonBackendError, "a", 1},
		{"error reason kept", []Method{{Name: "up", Backend: upstream}}, Request{Action: ActionRead}, Forbidden, ReasonUpstream, "up", 1},
		{"error then allow allows", []Method{{Name: "a", Backend: broken}, {Name: "b", Backend: allow}}, Request{Action: ActionRead}, Allow, ReasonAllowed, "b", 2},
		{"action limits skip methods", []Method{{Name: "a", Backend: allow, Actions: []Action{ActionAPI}}, {Name: "b", Backend: forbid}}, Request{Action: ActionRead}, Forbidden, ReasonNotPermitted, "b", 1},
		{"action limits select methods", []Method{{Name: "a", Backend: allow, Actions: []Action{ActionAPI, ActionPublish}}}, Request{Action: ActionPublish}, Allow, ReasonAllowed, "a", 1},
		{"no method handles action", []Method{{Name: "a", Backend: allow, Actions: []Action{ActionAPI}}}, Request{Action: ActionRead}, Forbidden, ReasonNoMethod, "", 0},
		{"empty chain", nil, Request{Action: ActionRead}, Forbidden, ReasonNoMethod, "", 0},
		{"method without backend fails closed", []Method{{Name: "a"}}, Request{Action: ActionRead}, Forbidden, ReasonBackendError, "a", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewChain(tt.methods...).Authorize(context.Background(), &tt.req)
			if err != nil {
				t.Fatalf("chain returned error %v", err)
			}
			if d.Outcome != tt.wantOutcome || d.Reason != tt.wantReason || d.Backend != tt.wantBackend || len(d.Steps) != tt.wantSteps {
				t.Errorf("got %v/%q/%q/%d steps, want %v/%q/%q/%d", d.Outcome, d.Reason, d.Backend, len(d.Steps), tt.wantOutcome, tt.wantReason, tt.wantBackend, tt.wantSteps)
			}
			if d.Outcome == Allow && !d.Expires.Equal(exp) {
				t.Errorf("got expiry %v, want %v", d.Expires, exp)
			}
		})
	}
}

func TestNilChainDenies(t *testing.T) {
	var c *Chain
	if m := c.Methods(); m != nil {
		t.Errorf("got methods %v, want nil", m)
	}
	d, err := c.Authorize(context.Background(), &Request{Action: ActionRead})
	if err != nil || d.Allowed() || d.Reason != ReasonNoMethod {
		t.Errorf("got %v %q %v, want a no_method denial", d.Outcome, d.Reason, err)
	}
	if d := NewEngine(nil, nil).Authorize(context.Background(), &Request{Action: ActionRead}); d.Allowed() {
		t.Errorf("engine without a chain: got %v, want a denial", d.Outcome)
	}
}

// TestChainKeepsRenameOnDenial: a method that recognised a secret in the path says so with
// Rename; the final denial keeps it even when another method's denial ranks higher.
func TestChainKeepsRenameOnDenial(t *testing.T) {
	expired := Denying(Unauthenticated, "key_expired", "stream key expired")
	expired.Rename = "live/alice"
	tests := []struct {
		name    string
		methods []Method
		want    string
	}{
		{"own denial", []Method{{Name: "keys", Backend: fixed(expired, nil)}}, "live/alice"},
		{"outranked by a later denial", []Method{{Name: "keys", Backend: fixed(expired, nil)},
			{Name: "users", Backend: fixed(Denying(Forbidden, ReasonNotPermitted, "no"), nil)}}, "live/alice"},
		{"others abstain", []Method{{Name: "users", Backend: fixed(Decision{}, nil)}, {Name: "keys", Backend: fixed(expired, nil)}}, "live/alice"},
		{"the method could not decide", []Method{{Name: "keys", Backend: fixed(expired, errors.New("store down"))}}, "live/alice"},
		{"no rename", []Method{{Name: "users", Backend: fixed(Denying(Forbidden, ReasonNotPermitted, "no"), nil)}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := NewChain(tt.methods...).Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/secret"})
			if d.Allowed() {
				t.Fatal("got allow, want a denial")
			}
			if d.Rename != tt.want {
				t.Errorf("got rename %q, want %q", d.Rename, tt.want)
			}
		})
	}
}

func TestChainCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, _ := NewChain(Method{Name: "a", Backend: fixed(Allowing("x", time.Time{}), nil)}).Authorize(ctx, &Request{Action: ActionRead})
	if d.Allowed() || d.Reason != ReasonCanceled {
		t.Errorf("got %v %q, want a canceled denial", d.Outcome, d.Reason)
	}
}

func TestEngineSwapAndStatus(t *testing.T) {
	e := NewEngine(NewChain(Method{Name: "a", Backend: fixed(Allowing("x", time.Time{}), nil)}), nil)
	if d := e.Authorize(context.Background(), &Request{Action: ActionRead, Path: "live/a"}); d.HTTPStatus() != 200 {
		t.Fatalf("got %d, want 200", d.HTTPStatus())
	}
	old := e.Swap(NewChain(Method{Name: "b", Backend: fixed(Denying(Forbidden, ReasonNotPermitted, "no"), nil)}))
	if len(old.Methods()) != 1 || old.Methods()[0].Name != "a" {
		t.Errorf("Swap returned %v, want the old chain", old.Methods())
	}
	if d := e.Authorize(context.Background(), &Request{Action: ActionRead, Path: "live/a"}); d.HTTPStatus() != 403 {
		t.Errorf("got %d, want 403 after swap", d.HTTPStatus())
	}
	e.Swap(NewChain(Method{Name: "c", Backend: fixed(Decision{}, nil)}))
	if d := e.Authorize(context.Background(), &Request{Action: ActionRead, Path: "live/a"}); d.HTTPStatus() != 401 || d.Outcome == Abstain {
		t.Errorf("got %d %v, want 401 and never Abstain", d.HTTPStatus(), d.Outcome)
	}
}

func TestDecisionTTL(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := Allowing("a", time.Time{}).TTL(now); ok {
		t.Error("zero expiry reported a TTL")
	}
	if got, ok := Allowing("a", now.Add(90*time.Second)).TTL(now); !ok || got != 90*time.Second {
		t.Errorf("got %v %v, want 90s true", got, ok)
	}
}

func BenchmarkChainAllow(b *testing.B) {
	c := NewChain(Method{Name: "a", Backend: fixed(Decision{}, nil)}, Method{Name: "b", Backend: fixed(Allowing("x", time.Time{}), nil)})
	req := &Request{Action: ActionRead, Path: "live/x"}
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := c.Authorize(context.Background(), req); !d.Allowed() {
			b.Fatal(fmt.Sprint(d.Outcome))
		}
	}
}
