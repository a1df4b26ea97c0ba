package keys

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/logtest"
)

// TestKeyNeverLogged runs a real engine over a chain where another method decides paths that
// hold a key (a rule allowing read on live/* for anyone, before or after the keys method), and
// a revoked key that a live nginx-rtmp publisher keeps presenting in its on_update calls. No log
// line may contain a key; a path that holds a key as its last segment is renamed to the key's
// public path, whichever method decided.
func TestKeyNeverLogged(t *testing.T) {
	const cfg = "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: live/alice\n" +
		"    - key: " + oldKey + "\n      path: live/alice\n      revoked: true\n"
	kb := newBackend(t, cfg, nil)
	// anyoneReads stands for `user: any` with read on live/*: it knows nothing of keys.
	anyoneReads := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		if r.Action == authz.ActionRead && strings.HasPrefix(r.Path, "live/") {
			return authz.Allowing("", time.Time{}), nil
		}
		return authz.Decision{}, nil
	})
	tests := []struct {
		name, path string
		action     authz.Action
		readsFirst bool
		allowed    bool
		rename     string
	}{
		{"viewer plays the key, read rule first", "live/" + aliceKey, authz.ActionRead, true, true, "live/alice"},
		{"viewer plays the key, keys first", "live/" + aliceKey, authz.ActionRead, false, true, "live/alice"},
		{"update with a revoked key", "live/" + oldKey, authz.ActionPublish, false, false, "live/alice"},
		{"viewer plays a revoked key", "live/" + oldKey, authz.ActionRead, true, true, "live/alice"},
		{"key inside the path is refused, not published or listed under it", "live/" + aliceKey + "/x", authz.ActionRead, true, false, ""},
		{"publish with the key", "live/" + aliceKey, authz.ActionPublish, true, true, "live/alice"},
		{"ordinary path", "live/cam", authz.ActionRead, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf logtest.Buffer
			methods := []authz.Method{{Name: "keys", Backend: kb}, {Name: "internal", Backend: anyoneReads}}
			if tt.readsFirst {
				methods[0], methods[1] = methods[1], methods[0]
			}
			e := authz.NewEngine(authz.NewChain(methods...), slog.New(slog.NewTextHandler(&buf, nil)))
			d := e.Authorize(context.Background(), &authz.Request{Action: tt.action, Path: tt.path, Protocol: "rtmp", Source: "nginx-rtmp", CanRename: true})
			if d.Allowed() != tt.allowed || d.Rename != tt.rename {
				t.Errorf("got allowed=%v rename=%q (%s), want %v %q", d.Allowed(), d.Rename, d.Reason, tt.allowed, tt.rename)
			}
			logged := buf.String()
			if logged == "" {
				t.Fatal("nothing logged")
			}
			for _, k := range []string{aliceKey, oldKey} {
				if strings.Contains(logged, k) {
					t.Errorf("the log contains a key: %s", logged)
				}
			}
			if tt.path == "live/cam" && !strings.Contains(logged, "path=live/cam") {
				t.Errorf("an ordinary path is not logged: %s", logged)
			}
		})
	}
}
