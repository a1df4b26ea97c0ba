//go:build unix

package sqlitestore

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gatehouse/backends/keys"
)

// TestFilesArePrivate: the store, its WAL and its backups hold key digests and owners: they are
// created 0600 whatever the umask.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	s := open(t, path)
	if _, _, err := s.Create(context.Background(), keys.Spec{Label: "a", Path: "live/a"}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if err := s.Backup(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm", backup} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(f), got)
		}
	}
	if err := s.Backup(context.Background(), backup); err == nil {
		t.Error("a backup over an existing file succeeded")
	}
}

// TestFlushKeepsBatchOnFailure: a flush that cannot write keeps the last-use records for the
// next one, and Close writes every Touch that came before it.
func TestFlushKeepsBatchOnFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	ctx := context.Background()
	rec, _, err := s.Create(ctx, keys.Spec{Label: "a", Path: "live/a"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	s.Touch(rec.ID, at, netip.MustParseAddr("192.0.2.7"))
	failed, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Flush(failed); err == nil {
		t.Fatal("Flush with a cancelled context succeeded")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, rec.ID)
	if err != nil || !got.LastUsed.Equal(at) || got.LastAddr != "192.0.2.7" {
		t.Fatalf("after a failed then a good flush: last used %v from %q (%v), want %v from 192.0.2.7", got.LastUsed, got.LastAddr, err, at)
	}

	s.Touch(rec.ID, at.Add(time.Hour), netip.Addr{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, path)
	if got, err := s2.Get(ctx, rec.ID); err != nil || !got.LastUsed.Equal(at.Add(time.Hour)) {
		t.Fatalf("after Close: last used %v (%v), want %v", got.LastUsed, err, at.Add(time.Hour))
	}
}
