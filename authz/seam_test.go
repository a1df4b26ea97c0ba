package authz

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestEngineSeam: what the engine refuses itself, whichever adapter asked (issue 9, items 1 and
// 3): a rename the adapter cannot honour, a grant already expired, a query token over HTTP by
// origin whatever the parameter's name.
func TestEngineSeam(t *testing.T) {
	renamed := Allowing("alice", time.Time{})
	renamed.Rename = "live/alice"
	expired := Allowing("alice", time.Now().Add(-time.Second))
	tokenOnly := BackendFunc(func(_ context.Context, r *Request) (Decision, error) {
		if r.Token == "good" {
			return Allowing("alice", time.Time{}), nil
		}
		return Decision{}, nil
	})
	tests := []struct {
		name       string
		backend    Backend
		policy     Policy
		req        Request
		want       Outcome
		wantReason string
	}{
		{"rename refused where the adapter cannot rename", fixed(renamed, nil), Policy{},
			Request{Action: ActionPublish, Path: "live/SECRETKEY", Source: "mediamtx"}, Forbidden, ReasonRenameUnsupported},
		{"rename allowed where it can", fixed(renamed, nil), Policy{},
			Request{Action: ActionPublish, Path: "live/SECRETKEY", CanRename: true}, Allow, ReasonAllowed},
		{"no rename needed", fixed(Allowing("alice", time.Time{}), nil), Policy{},
			Request{Action: ActionPublish, Path: "live/alice"}, Allow, ReasonAllowed},
		{"expired grant", fixed(expired, nil), Policy{},
			Request{Action: ActionRead, Path: "live/a", CanEndAt: true}, Unauthenticated, ReasonGrantExpired},
		{"query token over http, any parameter name", tokenOnly, Policy{},
			Request{Action: ActionRead, Path: "live/a", Protocol: "hls", Token: "good", TokenFrom: OriginQuery, TokenParam: "access_key"}, Unauthenticated, ReasonQueryToken},
		{"query token over http allowed by policy", tokenOnly, Policy{QueryTokenOnHTTP: true},
			Request{Action: ActionRead, Path: "live/a", Protocol: "hls", Token: "good", TokenFrom: OriginQuery, TokenParam: "access_key"}, Allow, ReasonAllowed},
		{"query token over rtmp", tokenOnly, Policy{},
			Request{Action: ActionPublish, Path: "live/a", Protocol: "rtmp", Token: "good", TokenFrom: OriginQuery, TokenParam: "token"}, Allow, ReasonAllowed},
		{"header token over http", tokenOnly, Policy{},
			Request{Action: ActionRead, Path: "live/a", Protocol: "hls", Token: "good", TokenFrom: OriginHeader}, Allow, ReasonAllowed},
		{"query token on the path-less api", tokenOnly, Policy{},
			Request{Action: ActionAPI, Token: "good", TokenFrom: OriginQuery, TokenParam: "jwt"}, Unauthenticated, ReasonQueryToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := NewEngine(NewChain(Method{Name: "m", Backend: tt.backend}).WithPolicy(tt.policy), slog.New(slog.NewTextHandler(&buf, nil)))
			req := tt.req
			d := e.Authorize(context.Background(), &req)
			if d.Outcome != tt.want || d.Reason != tt.wantReason {
				t.Errorf("got %v %q, want %v %q", d.Outcome, d.Reason, tt.want, tt.wantReason)
			}
			if strings.Contains(buf.String(), "SECRETKEY") {
				t.Errorf("the stream key reached the log: %s", buf.String())
			}
		})
	}
}

// TestEngineDecisionTimeout: a method that never answers (it ignores its context) is an
// undecided denial with reason decision_timeout, and the path (possibly a key) is not logged.
func TestEngineDecisionTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hang := BackendFunc(func(context.Context, *Request) (Decision, error) {
		<-release
		return Allowing("late", time.Time{}), nil
	})
	var buf bytes.Buffer
	e := NewEngine(NewChain(Method{Name: "hang", Backend: hang}).WithPolicy(Policy{DecisionTimeout: time.Millisecond}),
		slog.New(slog.NewTextHandler(&buf, nil)))
	d := e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/SECRETKEY"})
	if d.Allowed() || !d.Undecided || d.Reason != ReasonTimeout {
		t.Errorf("got %+v, want an undecided %s denial", d, ReasonTimeout)
	}
	if strings.Contains(buf.String(), "SECRETKEY") {
		t.Errorf("the path reached the log: %s", buf.String())
	}
}

// TestEngineDecisionTimeoutRespectingContext: a method that honours its context answers with
// its own error; the engine still names the timeout.
func TestEngineDecisionTimeoutRespectingContext(t *testing.T) {
	wait := BackendFunc(func(ctx context.Context, _ *Request) (Decision, error) {
		<-ctx.Done()
		return Decision{}, ctx.Err()
	})
	e := NewEngine(NewChain(Method{Name: "wait", Backend: wait}).WithPolicy(Policy{DecisionTimeout: time.Millisecond}), nil)
	d := e.Authorize(context.Background(), &Request{Action: ActionRead, Path: "live/a"})
	if d.Allowed() || !d.Undecided || d.Reason != ReasonTimeout {
		t.Errorf("got %+v, want an undecided %s denial", d, ReasonTimeout)
	}
}

func TestHasPassword(t *testing.T) {
	for _, tt := range []struct {
		r    Request
		want bool
	}{
		{Request{}, false},
		{Request{User: "u", Pass: "p"}, true},
		{Request{User: "u"}, true},
		{Request{User: "u", Token: "eyJ.a.b", TokenFrom: OriginUserInfo}, false},
		{Request{User: "u", Token: "t", TokenFrom: OriginQuery}, false},
		{Request{User: "u", Pass: "p", Token: "t", TokenFrom: OriginQuery}, true},
	} {
		if got := tt.r.HasPassword(); got != tt.want {
			t.Errorf("%+v: got %v, want %v", tt.r, got, tt.want)
		}
	}
}
