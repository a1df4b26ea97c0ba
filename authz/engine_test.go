package authz

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestEngineLogsPublicPathOnRename: a stream key presented as the stream name must not reach the
// log; the engine logs the public path the backend renamed it to.
func TestEngineLogsPublicPathOnRename(t *testing.T) {
	const secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	var buf bytes.Buffer
	d := Allowing("alice", time.Time{})
	d.Rename = "live/alice"
	e := NewEngine(NewChain(Method{Name: "keys", Backend: fixed(d, nil)}), slog.New(slog.NewTextHandler(&buf, nil)))
	e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/" + secret})
	if got := buf.String(); strings.Contains(got, secret) || !strings.Contains(got, "path=live/alice") {
		t.Errorf("got log %q, want path=live/alice and no key", got)
	}
}

// TestEngineLogsPublicPathOnDenial: a known stream key that is denied (expired, wrong action)
// must not reach the log either, even when another method's denial decides.
func TestEngineLogsPublicPathOnDenial(t *testing.T) {
	const secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	var buf bytes.Buffer
	d := Denying(Unauthenticated, "key_expired", "stream key expired")
	d.Rename = "live/alice"
	e := NewEngine(NewChain(
		Method{Name: "keys", Backend: fixed(d, nil)},
		Method{Name: "users", Backend: fixed(Denying(Forbidden, ReasonNotPermitted, "no"), nil)},
	), slog.New(slog.NewTextHandler(&buf, nil)))
	if got := e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/" + secret}); got.Allowed() {
		t.Fatal("got allow, want a denial")
	}
	if got := buf.String(); strings.Contains(got, secret) || !strings.Contains(got, "path=live/alice") {
		t.Errorf("got log %q, want path=live/alice and no key", got)
	}
}
