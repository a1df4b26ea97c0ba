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

// TestHTTPBorneFailsClosed: only protocols whose URLs never travel as HTTP requests are not
// HTTP-borne; an unknown or empty protocol (an OME thumbnail, a forward-auth rule's label, SRS,
// which does not say) is, so the query-token policy cannot be sidestepped by a protocol name.
func TestHTTPBorneFailsClosed(t *testing.T) {
	for p, want := range map[string]bool{
		"rtmp": false, "RTMPS": false, "rtsp": false, "rtsps": false, "srt": false,
		"hls": true, "llhls": true, "webrtc": true, "dash": true, "http": true,
		"thumbnail": true, "flv": true, "": true, "moq": true,
	} {
		for _, a := range []Action{ActionRead, ActionPublish, ActionAPI} {
			if got := (&Request{Action: a, Protocol: p}).HTTPBorne(); got != want {
				t.Errorf("%s over %q: HTTPBorne = %v, want %v", a, p, got, want)
			}
		}
	}
}

// TestPasswordThatIsTheToken: a JWT sent as the password (creds sets it as both Pass and Token)
// is not a password pair to hash; a real password beside a token is.
func TestPasswordThatIsTheToken(t *testing.T) {
	for _, tt := range []struct {
		r    Request
		want bool
	}{
		{Request{User: "u", Pass: "p"}, true},
		{Request{User: "u"}, true},
		{Request{User: "u", Pass: "eyJ.a.b", Token: "eyJ.a.b"}, false},
		{Request{User: "u", Pass: "p", Token: "eyJ.a.b"}, true},
		{Request{Token: "t"}, false},
		{Request{User: "u", Token: "t"}, false},
	} {
		if got := tt.r.HasPassword(); got != tt.want {
			t.Errorf("%+v: HasPassword = %v, want %v", tt.r, got, tt.want)
		}
	}
}
