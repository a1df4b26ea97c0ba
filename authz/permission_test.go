package authz

import (
	"errors"
	"testing"
)

func TestPermissionMatches(t *testing.T) {
	tests := []struct {
		name      string
		action    string
		path      string
		protocols []string
		req       Request
		want      bool
	}{
		{"empty path any", "publish", "", nil, Request{Action: ActionPublish, Path: "anything/here"}, true},
		{"exact", "read", "cam", nil, Request{Action: ActionRead, Path: "cam"}, true},
		{"exact mismatch", "read", "cam", nil, Request{Action: ActionRead, Path: "cam2"}, false},
		{"regex unanchored as MediaMTX", "read", "~cam", nil, Request{Action: ActionRead, Path: "mycam2"}, true},
		{"regex anchored", "read", "~^cam$", nil, Request{Action: ActionRead, Path: "mycam2"}, false},
		{"glob one segment", "publish", "live/*", nil, Request{Action: ActionPublish, Path: "live/alice"}, true},
		{"glob one segment not deeper", "publish", "live/*", nil, Request{Action: ActionPublish, Path: "live/alice/hd"}, false},
		{"glob any depth", "publish", "live/**", nil, Request{Action: ActionPublish, Path: "live/alice/hd"}, true},
		{"glob prefix in segment", "read", "live/cam-*", nil, Request{Action: ActionRead, Path: "live/cam-1"}, true},
		{"glob dots are literal", "read", "a.b/*", nil, Request{Action: ActionRead, Path: "axb/c"}, false},
		{"star alone is one segment", "read", "*", nil, Request{Action: ActionRead, Path: "x"}, true},
		{"star alone not nested", "read", "*", nil, Request{Action: ActionRead, Path: "x/y"}, false},
		{"wrong action", "read", "", nil, Request{Action: ActionPublish, Path: "x"}, false},
		{"api ignores path", "api", "", nil, Request{Action: ActionAPI, Path: "whatever"}, true},
		{"protocol allowed", "publish", "", []string{"RTMP", "srt"}, Request{Action: ActionPublish, Protocol: "rtmp"}, true},
		{"protocol refused", "publish", "", []string{"rtmp"}, Request{Action: ActionPublish, Protocol: "webrtc"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPermission(tt.action, tt.path, tt.protocols)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Matches(&tt.req); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewPermissionErrors(t *testing.T) {
	tests := []struct {
		name, action, path string
		protocols          []string
		want               error
	}{
		{"unknown action", "delete", "", nil, ErrUnknownAction},
		{"empty action", "", "", nil, ErrUnknownAction},
		{"bad regex", "read", "~(", nil, ErrInvalidPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPermission(tt.action, tt.path, tt.protocols); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewPermission("api", "", []string{"rtmp"}); err == nil {
		t.Error("protocols on api accepted")
	}
}

func BenchmarkPermissions(b *testing.B) {
	var ps Permissions
	for _, p := range []string{"~^cam[0-9]+$", "live/*", "live/**", "exact"} {
		perm, _ := NewPermission("read", p, nil)
		ps = append(ps, perm)
	}
	req := &Request{Action: ActionRead, Path: "live/alice/hd"}
	for b.Loop() {
		if !ps.Match(req) {
			b.Fatal("no match")
		}
	}
}
