package nginxrtmp

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/hookio"
	"gatehouse/authz/live"
	"gatehouse/authz/logtest"
	"gatehouse/backends/keys"
	"gatehouse/backends/keys/sqlitestore"
)

// TestNginxRTMPManagedKeyRotation: real nginx-rtmp and ffmpeg (OBS's RTMP output: server
// rtmp://host/live, stream key = the managed key). A key created in the store publishes under
// its public name, reported with its key id and label; rotating it ends that publish at the next
// on_update (notify_update_timeout 1s here); the new key publishes. No key reaches the log.
func TestNginxRTMPManagedKeyRotation(t *testing.T) {
	nginx, module := requireTools(t)
	ctx := context.Background()
	store, rec, hook, logs := managedKeyHook(t)
	base, _ := startNginx(t, nginx, module, hook)

	old, oldSecret, err := store.Create(ctx, keys.Spec{Path: "live/alice", Label: "Alice OBS", Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	p := publish(t, base+"/live/"+oldSecret, 60*time.Second)
	e := rec.WaitFor(t, 15*time.Second, "published live/alice", is(live.Published, "live/alice"))
	if e.KeyID != old.ID || e.KeyLabel != "Alice OBS" || e.Identity != "alice" {
		t.Errorf("got %+v, want key %s (Alice OBS), identity alice", e, old.ID)
	}
	rec.WaitFor(t, 5*time.Second, "alive live/alice", is(live.Alive, "live/alice"))

	_, newSecret, _, err := store.Rotate(ctx, old.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !waitExit(p, 15*time.Second) {
		t.Fatalf("publisher with the rotated key still running 15s after rotation (notify_update_timeout 1s)")
	}
	rec.WaitFor(t, 10*time.Second, "unpublished live/alice", is(live.Unpublished, "live/alice"))

	p2 := publish(t, base+"/live/"+newSecret, 60*time.Second)
	defer p2.kill()
	if err := waitPublished(rec, 2); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{oldSecret, newSecret} {
		if strings.Contains(logs.String(), s) || strings.Contains(logs.String(), s[len(keys.SecretPrefix):]) {
			t.Errorf("the log contains a stream key")
		}
		for _, e := range rec.Events() {
			if strings.Contains(e.Path, s) {
				t.Errorf("event %+v carries a stream key", e)
			}
		}
	}
}

// waitPublished waits until live/alice has been published n times.
func waitPublished(rec *recorder, n int) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c := 0
		for _, e := range rec.Events() {
			if e.Type == live.Published && e.Path == "live/alice" {
				c++
			}
		}
		if c >= n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return context.DeadlineExceeded
}

// managedKeyHook serves the adapter on a loopback httptest server, deciding with the keys method
// over a fresh SQLite key store, and returns the store, the recorded events, the hook URL and
// the captured log. Everything stops with the test.
func managedKeyHook(t *testing.T) (*sqlitestore.Store, *recorder, string, *logtest.Buffer) {
	t.Helper()
	store, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	kb, err := keys.New(keys.Config{}, nil, keys.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	logs := new(logtest.Buffer)
	log := slog.New(slog.NewTextHandler(logs, nil))
	engine := authz.NewEngine(authz.NewChain(authz.Method{Name: "keys", Backend: kb}), log)
	rec := newRecorder()
	srv := httptest.NewServer(hookio.Guard(New(Config{}, engine, rec, log), nil, log)) // as gatehouse serves it
	t.Cleanup(srv.Close)
	return store, rec, srv.URL + "/hooks/nginx-rtmp", logs
}
