package main

import (
	"context"
	"gatehouse/authz/logtest"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type syncWriter = logtest.Buffer

// TestSIGHUPRightAfterReady: a SIGHUP sent the moment gatehouse announces its listeners must
// reload, not kill the process (SIGHUP's default action) because the handler was not yet
// installed. The signal goes to this test process, which dies if serve got the order wrong.
func TestSIGHUPRightAfterReady(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yml")
	src := "listen: 127.0.0.1:0\nhooks_listen: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") +
		"\nauth:\n  internal:\n    users:\n      - user: any\n        permissions: [{action: read}]\n"
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncWriter
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, &logs, func(_, _ net.Addr) {
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Errorf("kill: %v", err)
			}
		})
	}()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(logs.String(), "config reloaded") {
		select {
		case err := <-done:
			t.Fatalf("serve returned %v before reloading\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("no reload after SIGHUP\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: got %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
}
