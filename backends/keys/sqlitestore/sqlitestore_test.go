package sqlitestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/backends/keys"
)

func open(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func digest(secret string) keys.Digest { return sha256.Sum256([]byte(secret)) }

func TestMigrateFromEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", FileName)
	s := open(t, path)
	var v int
	if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, SchemaVersion)
	}
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	rec, secret, err := s.Create(context.Background(), keys.Spec{Label: "a", Path: "live/a", Protocols: []string{"RTMP"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(context.Background(), digest(secret))
	if err != nil || got.ID != rec.ID || got.Protocols[0] != "rtmp" || got.Actions[0] != authz.ActionPublish {
		t.Fatalf("Lookup = %+v, %v", got, err)
	}
}

// A file at schema 1 (before protocols and the revocation feed) with a key in it migrates and
// keeps the key.
func TestMigrateFromPreviousVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	old := &Store{db: db}
	if err := old.migrate(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	secret, d, _ := keys.NewSecret()
	if _, err := db.Exec(`INSERT INTO keys (id, digest, label, path, actions, created) VALUES ('key_aaaaaaaaaa', ?, 'old', 'live/old', 'publish,read', 1700000000000)`, d[:]); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, path)
	got, err := s.Lookup(context.Background(), digest(secret))
	if err != nil || got.ID != "key_aaaaaaaaaa" || got.Label != "old" || len(got.Actions) != 2 || got.Protocols != nil {
		t.Fatalf("after migration Lookup = %+v, %v", got, err)
	}
	if _, err := s.Revoke(context.Background(), got.ID); err != nil { // uses the table of migration 2
		t.Fatal(err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	if _, err := s.db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), path); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
}

// A file that is not a database is refused with an error naming it, and left as it was.
func TestCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	junk := bytes.Repeat([]byte("not a database, but my precious notes\n"), 200)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a database") {
		t.Fatalf("Open = %v, want an error naming the file and saying it is not a database", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, junk) {
		t.Fatal("the corrupt file was modified")
	}
}

// A file without write permission opens read-only: lookups work, changes are refused clearly,
// and the file is unchanged.
func TestReadOnlyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	rec, secret, err := s.Create(context.Background(), keys.Spec{Path: "live/a"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	ro := open(t, path)
	if !ro.ReadOnly() {
		t.Fatal("ReadOnly() = false")
	}
	if got, err := ro.Lookup(context.Background(), digest(secret)); err != nil || got.ID != rec.ID {
		t.Fatalf("Lookup = %+v, %v", got, err)
	}
	ro.Touch(rec.ID, time.Now(), netip.MustParseAddr("192.0.2.1"))
	if _, _, err := ro.Create(context.Background(), keys.Spec{Path: "live/b"}); !errors.Is(err, keys.ErrReadOnly) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Create = %v, want ErrReadOnly naming the file", err)
	}
	if _, err := ro.Revoke(context.Background(), rec.ID); !errors.Is(err, keys.ErrReadOnly) {
		t.Fatalf("Revoke = %v, want ErrReadOnly", err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("the read-only file was modified")
	}
}

// TestBackup: a backup is a consistent copy that serves lookups, and never overwrites a file.
// (The rest of the key lifecycle is the contract, TestContract.)
func TestBackup(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), FileName))
	ctx := context.Background()
	b, secretB, err := s.Create(ctx, keys.Spec{Label: "Alice OBS", Owner: "alice", Path: "live/alice"})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, dst); err == nil {
		t.Fatal("backup over an existing file succeeded")
	}
	copyStore := open(t, dst)
	if got, err := copyStore.Lookup(ctx, digest(secretB)); err != nil || got.ID != b.ID {
		t.Fatalf("backup Lookup = %+v, %v", got, err)
	}
}

// Two handles on one file (the server and the CLI) create and look up concurrently (run with
// -race); a revocation through one is seen by the other at once.
func TestConcurrentCreateAndLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	server, cli := open(t, path), open(t, path)
	ctx := context.Background()
	var wg sync.WaitGroup
	secrets := make(chan string, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := server
			if w%2 == 1 {
				st = cli
			}
			for i := range 8 {
				_, secret, err := st.Create(ctx, keys.Spec{Label: fmt.Sprintf("w%d-%d", w, i), Path: "live/a"})
				if err != nil {
					t.Error(err)
					return
				}
				secrets <- secret
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 16 {
				_, d, _ := keys.NewSecret()
				if _, err := server.Lookup(ctx, d); !errors.Is(err, keys.ErrNotFound) {
					t.Error(err)
				}
				server.Touch("key_aaaaaaaaaa", time.Now(), netip.Addr{})
			}
		}()
	}
	wg.Wait()
	close(secrets)
	n := 0
	for secret := range secrets {
		rec, err := server.Lookup(ctx, digest(secret))
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 1 {
			if _, err := cli.Revoke(ctx, rec.ID); err != nil {
				t.Fatal(err)
			}
			if got, _ := server.Lookup(ctx, digest(secret)); got.Revoked.IsZero() {
				t.Fatal("the server did not see the CLI's revocation at once")
			}
		}
	}
	if n != 32 {
		t.Fatalf("%d keys, want 32", n)
	}
}
