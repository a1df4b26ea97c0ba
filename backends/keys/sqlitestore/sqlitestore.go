// Package sqlitestore is the embedded key store: managed stream keys in one SQLite file in
// data_dir (through modernc.org/sqlite, pure Go), shared safely by a running gatehouse and the
// `gatehouse keys` commands.
//
// The file is opened in WAL mode, so readers (every request that presents a managed key) never
// wait for a writer, and each write is one short IMMEDIATE transaction with a busy timeout, so the
// CLI and the server can write at the same time. The schema is versioned (PRAGMA user_version) and
// migrated forward at Open, inside one transaction; a file written by a newer gatehouse is refused,
// never rewritten. A file that is not a database is refused with its error and left untouched. A
// file without write permission is opened read-only: lookups work, changes are refused with
// keys.ErrReadOnly.
//
// Keys are stored only as SHA-256 digests with a UNIQUE index. A lookup hashes the presented key
// (constant cost: managed keys have one length) and then searches the index by digest; the search
// path depends only on the digest, and learning how the digest of a guess compares with stored
// digests teaches nothing about any stored key's plain text (SHA-256 is preimage resistant), so
// the lookup is constant-time in the secret where it matters, and flat in the number of keys.
//
// Revocation reaches the running server without caching: every decision reads the key's row, so a
// revocation committed by the CLI is refused at the very next request. Each revocation is also
// appended to a feed that Run polls (every second by default) to notify Subscribe's callbacks —
// the hook that ends live sessions. Last use (time and address) is collected in memory by Touch
// and written in one transaction every flush interval (default 10 s) and at Close, so a storm of
// requests never becomes a storm of writes; "last used" may therefore lag by that interval.
package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"gatehouse/authz"
	"gatehouse/backends/keys"
)

// Sentinel errors of package sqlitestore.
var (
	// ErrNewerSchema is returned by Open for a file written by a newer gatehouse.
	ErrNewerSchema = errors.New("sqlitestore: the store was written by a newer gatehouse")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("sqlitestore: store is closed")
)

// FileName is the store's file name inside data_dir.
const FileName = "streamkeys.db"

// migrations[i] brings the schema from version i to i+1. Append only; never edit a released one.
var migrations = []string{
	// 1: the keys.
	`CREATE TABLE keys (
		id        TEXT PRIMARY KEY,
		digest    BLOB NOT NULL UNIQUE,
		label     TEXT NOT NULL DEFAULT '',
		owner     TEXT NOT NULL DEFAULT '',
		path      TEXT NOT NULL,
		actions   TEXT NOT NULL,
		created   INTEGER NOT NULL,
		expires   INTEGER NOT NULL DEFAULT 0,
		revoked   INTEGER NOT NULL DEFAULT 0,
		last_used INTEGER NOT NULL DEFAULT 0,
		last_addr TEXT NOT NULL DEFAULT ''
	) STRICT;`,
	// 2: per-key protocols, and the revocation feed that Run polls.
	`ALTER TABLE keys ADD COLUMN protocols TEXT NOT NULL DEFAULT '';
	CREATE TABLE revocations (
		seq    INTEGER PRIMARY KEY AUTOINCREMENT,
		key_id TEXT NOT NULL,
		at     INTEGER NOT NULL
	) STRICT;`,
}

// SchemaVersion is the schema version this gatehouse writes.
var SchemaVersion = len(migrations)

// Store is the SQLite key store. It implements keys.Store and the API's administration
// interface. Open starts no goroutine; Run (optional, owned by the caller) flushes last-use
// records and delivers revocations; Close flushes and closes the file and is idempotent.
type Store struct {
	db       *sql.DB
	path     string
	readOnly bool
	now      func() time.Time
	poll     time.Duration
	flush    time.Duration

	mu      sync.Mutex // guards pending, subs, lastSeq, closed
	pending map[string]use
	subs    map[int]func(keys.Revocation)
	nextSub int
	lastSeq int64
	closed  bool
}

type use struct {
	at   time.Time
	addr netip.Addr
}

// Option configures Open.
type Option func(*Store)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithIntervals sets how often Run polls for revocations (default 1 s) and flushes last-use
// records (default 10 s).
func WithIntervals(poll, flush time.Duration) Option {
	return func(s *Store) { s.poll, s.flush = poll, flush }
}

// Open opens (creating it and its directory, 0700, if needed) the store at path and migrates it
// to SchemaVersion. The error names the file and says what is wrong; the file is never replaced.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	s := &Store{path: path, now: time.Now, poll: time.Second, flush: 10 * time.Second,
		pending: map[string]use{}, subs: map[int]func(keys.Revocation){}}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("sqlitestore: %s is not a regular file", path)
		}
		// Root ignores permission bits, so honour them explicitly: an operator who made the file
		// read-only means it.
		s.readOnly = fi.Mode().Perm()&0o222 == 0
	} else if errors.Is(err, fs.ErrNotExist) {
		// Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
		// database file's mode, and the store holds key digests and owners.
		if err := createPrivate(path); err != nil {
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
	}
	db, err := sql.Open("sqlite", dsn(path, s.readOnly))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	s.db = db
	if err := s.migrate(ctx, SchemaVersion); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM revocations`).Scan(&s.lastSeq); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	return s, nil
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	if readOnly {
		q.Add("mode", "ro")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// ReadOnly reports whether the store was opened read-only.
func (s *Store) ReadOnly() bool { return s.readOnly }

// Path returns the store's file.
func (s *Store) Path() string { return s.path }

// migrate brings the schema to version target in one transaction.
func (s *Store) migrate(ctx context.Context, target int) error {
	var v int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	switch {
	case v > len(migrations):
		return fmt.Errorf("%w (schema %d, this gatehouse knows %d)", ErrNewerSchema, v, len(migrations))
	case v >= target:
		return nil
	case s.readOnly:
		return fmt.Errorf("%w: schema %d needs migrating to %d, but the file is read-only", keys.ErrReadOnly, v, target)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil { // another process may have migrated
		return err
	}
	for ; v < target; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, target)); err != nil {
		return err
	}
	return tx.Commit()
}

const columns = `id, label, owner, path, actions, protocols, created, expires, revoked, last_used, last_addr`

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (keys.Record, error) {
	var (
		r                                    keys.Record
		actions, protocols                   string
		created, expires, revoked, last_used int64
	)
	if err := row.Scan(&r.ID, &r.Label, &r.Owner, &r.Path, &actions, &protocols, &created, &expires, &revoked, &last_used, &r.LastAddr); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return r, keys.ErrNotFound
		}
		return r, err
	}
	for _, a := range strings.Split(actions, ",") {
		if a != "" {
			r.Actions = append(r.Actions, authz.Action(a))
		}
	}
	if protocols != "" {
		r.Protocols = strings.Split(protocols, ",")
	}
	r.Created, r.Expires, r.Revoked, r.LastUsed = fromMillis(created), fromMillis(expires), fromMillis(revoked), fromMillis(last_used)
	return r, nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func (s *Store) check(write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case write && s.readOnly:
		return fmt.Errorf("sqlitestore: %s: %w (opened read-only: the file has no write permission)", s.path, keys.ErrReadOnly)
	}
	return nil
}

// Lookup implements keys.Store: one indexed read by digest, no cache (a revocation by another
// process is seen at once).
func (s *Store) Lookup(ctx context.Context, d keys.Digest) (keys.Record, error) {
	if err := s.check(false); err != nil {
		return keys.Record{}, err
	}
	r, err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM keys WHERE digest = ?`, d[:]))
	if err != nil && !errors.Is(err, keys.ErrNotFound) {
		return r, fmt.Errorf("sqlitestore: lookup: %w", err)
	}
	return r, err
}

// Touch implements keys.Store: it only remembers the latest use per key; Run and Close write.
func (s *Store) Touch(id string, t time.Time, addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.readOnly {
		return
	}
	if u, ok := s.pending[id]; !ok || t.After(u.at) {
		s.pending[id] = use{t, addr}
	}
}

// Flush writes the collected last-use records in one transaction. When it cannot (the file is
// busy, the disk full), the records are kept for the next flush, merged with newer ones.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	batch := s.pending
	s.pending = map[string]use{}
	s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := s.write(ctx, batch); err != nil {
		s.mu.Lock()
		for id, u := range batch {
			if p, ok := s.pending[id]; !ok || u.at.After(p.at) {
				s.pending[id] = u
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("sqlitestore: flush: %w", err)
	}
	return nil
}

func (s *Store) write(ctx context.Context, batch map[string]use) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for id, u := range batch {
		addr := ""
		if u.addr.IsValid() {
			addr = u.addr.String()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET last_used = ?, last_addr = ? WHERE id = ? AND last_used < ?`,
			millis(u.at), addr, id, millis(u.at)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var idRe = regexp.MustCompile(`^key_[a-z2-7]{10}$`)

// ValidID reports whether id has the form of a managed key's id (key_ + 10 characters).
func ValidID(id string) bool { return idRe.MatchString(id) }

func newID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "key_" + idEncoding.EncodeToString(b[:]), nil
}

// Create stores a new key described by spec and returns it with its secret, which exists
// nowhere else: show it once. A spec that is not valid gives an error wrapping keys.ErrInvalid.
func (s *Store) Create(ctx context.Context, spec keys.Spec) (keys.Record, string, error) {
	if err := s.check(true); err != nil {
		return keys.Record{}, "", err
	}
	spec, err := spec.Normalize()
	if err != nil {
		return keys.Record{}, "", err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return keys.Record{}, "", fmt.Errorf("sqlitestore: create: %w", err)
	}
	defer tx.Rollback()
	rec, secret, err := s.insert(ctx, tx, spec)
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return keys.Record{}, "", fmt.Errorf("sqlitestore: create: %w", err)
	}
	return rec, secret, nil
}

func (s *Store) insert(ctx context.Context, tx *sql.Tx, spec keys.Spec) (keys.Record, string, error) {
	secret, digest, err := keys.NewSecret()
	if err != nil {
		return keys.Record{}, "", err
	}
	rec := keys.Record{Spec: spec, Created: s.now().UTC().Truncate(time.Millisecond)}
	acts := make([]string, len(spec.Actions))
	for i, a := range spec.Actions {
		acts[i] = string(a)
	}
	for range 3 { // an id collision (48 random bits) is retried with a fresh id
		if rec.ID, err = newID(); err != nil {
			return keys.Record{}, "", err
		}
		var n int
		if err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys WHERE id = ?`, rec.ID).Scan(&n); err != nil || n > 0 {
			continue
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO keys (id, digest, label, owner, path, actions, protocols, created, expires)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, rec.ID, digest[:], spec.Label, spec.Owner, spec.Path,
			strings.Join(acts, ","), strings.Join(spec.Protocols, ","), millis(rec.Created), millis(spec.Expires))
		break
	}
	if err != nil {
		return keys.Record{}, "", err
	}
	return rec, secret, nil
}

// List returns every managed key, oldest first.
func (s *Store) List(ctx context.Context) ([]keys.Record, error) {
	if err := s.check(false); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM keys ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list: %w", err)
	}
	defer rows.Close()
	var out []keys.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list: %w", err)
	}
	return out, nil
}

// Get returns the key with the given id, or an error wrapping keys.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (keys.Record, error) {
	if err := s.check(false); err != nil {
		return keys.Record{}, err
	}
	return s.get(ctx, s.db, id)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) get(ctx context.Context, q querier, id string) (keys.Record, error) {
	if !ValidID(id) {
		return keys.Record{}, fmt.Errorf("sqlitestore: %w: ids look like key_ followed by 10 letters and digits", keys.ErrNotFound)
	}
	r, err := scanRecord(q.QueryRowContext(ctx, `SELECT `+columns+` FROM keys WHERE id = ?`, id))
	if errors.Is(err, keys.ErrNotFound) {
		return r, fmt.Errorf("sqlitestore: %w: %s", keys.ErrNotFound, id)
	}
	if err != nil {
		return r, fmt.Errorf("sqlitestore: get: %w", err)
	}
	return r, nil
}

// Revoke revokes the key now; the next request that presents it is refused. Revoking a revoked
// key changes nothing (a pending grace period is cut short).
func (s *Store) Revoke(ctx context.Context, id string) (keys.Record, error) {
	if err := s.check(true); err != nil {
		return keys.Record{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return keys.Record{}, fmt.Errorf("sqlitestore: revoke: %w", err)
	}
	defer tx.Rollback()
	rec, err := s.get(ctx, tx, id)
	if err != nil {
		return rec, err
	}
	now := s.now()
	if rec.RevokedAt(now) {
		return rec, nil
	}
	if err := s.revoke(ctx, tx, &rec, now); err != nil {
		return keys.Record{}, err
	}
	if err := tx.Commit(); err != nil {
		return keys.Record{}, fmt.Errorf("sqlitestore: revoke: %w", err)
	}
	return rec, nil
}

func (s *Store) revoke(ctx context.Context, tx *sql.Tx, rec *keys.Record, at time.Time) error {
	rec.Revoked = at.UTC().Truncate(time.Millisecond)
	if _, err := tx.ExecContext(ctx, `UPDATE keys SET revoked = ? WHERE id = ?`, millis(rec.Revoked), rec.ID); err != nil {
		return fmt.Errorf("sqlitestore: revoke: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (key_id, at) VALUES (?, ?)`, rec.ID, millis(rec.Revoked)); err != nil {
		return fmt.Errorf("sqlitestore: revoke: %w", err)
	}
	return nil
}

// Rotate replaces a key: a new key with the same label, owner and permissions (and expiry) is
// created and the old one is revoked after grace (0: at once), in one transaction. It returns the
// new key with its secret (show it once) and the old one. A revoked key cannot be rotated
// (keys.ErrRevoked): create a new one.
func (s *Store) Rotate(ctx context.Context, id string, grace time.Duration) (newRec keys.Record, secret string, old keys.Record, err error) {
	if err := s.check(true); err != nil {
		return newRec, "", old, err
	}
	if grace < 0 {
		return newRec, "", old, fmt.Errorf("sqlitestore: rotate: %w: grace period is negative", keys.ErrInvalid)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return newRec, "", old, fmt.Errorf("sqlitestore: rotate: %w", err)
	}
	defer tx.Rollback()
	if old, err = s.get(ctx, tx, id); err != nil {
		return newRec, "", old, err
	}
	now := s.now()
	if !old.Revoked.IsZero() {
		return newRec, "", old, fmt.Errorf("sqlitestore: rotate %s: %w", id, keys.ErrRevoked)
	}
	if !old.Expires.IsZero() && !now.Before(old.Expires) {
		// The successor keeps the expiry: it would be born expired. Refused rather than given a
		// new lifetime, which would let a rotation extend a short-lived credential forever.
		return newRec, "", old, fmt.Errorf("sqlitestore: rotate %s: %w", id, keys.ErrExpired)
	}
	spec := old.Spec
	spec.Actions, spec.Protocols = slices.Clone(spec.Actions), slices.Clone(spec.Protocols)
	if newRec, secret, err = s.insert(ctx, tx, spec); err != nil {
		return newRec, "", old, fmt.Errorf("sqlitestore: rotate: %w", err)
	}
	if err = s.revoke(ctx, tx, &old, now.Add(grace)); err != nil {
		return keys.Record{}, "", old, err
	}
	if err = tx.Commit(); err != nil {
		return keys.Record{}, "", old, fmt.Errorf("sqlitestore: rotate: %w", err)
	}
	return newRec, secret, old, nil
}

// Backup writes a consistent copy of the store to dst (which must not exist) with VACUUM INTO,
// safe while the server and other commands use the store.
func (s *Store) Backup(ctx context.Context, dst string) error {
	if err := s.check(false); err != nil {
		return err
	}
	// VACUUM INTO fills an empty file: creating it here, exclusively and 0600, refuses an
	// existing file without a race and keeps the copy as private as the store.
	if err := createPrivate(dst); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sqlitestore: backup: %s exists; choose a new file", dst)
	} else if err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		_ = os.Remove(dst)
		return fmt.Errorf("sqlitestore: backup to %s: %w", dst, err)
	}
	return nil
}

// createPrivate creates the empty file path with mode 0600; it fails if path exists.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// Subscribe registers fn to be called, from Run's goroutine, for every revocation committed by
// any process (this server's API, the CLI) after Open; a rotation's is delivered when it is
// committed, with At the end of its grace period. It returns the function that unregisters fn.
func (s *Store) Subscribe(fn func(keys.Revocation)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
	}
}

// Poll delivers the revocations committed since the last Poll to the subscribers. Run calls it.
func (s *Store) Poll(ctx context.Context) error {
	s.mu.Lock()
	last := s.lastSeq
	s.mu.Unlock()
	rows, err := s.db.QueryContext(ctx, `SELECT r.seq, r.at, k.id, k.label, k.owner, k.path FROM revocations r
		JOIN keys k ON k.id = r.key_id WHERE r.seq > ? ORDER BY r.seq LIMIT 1000`, last)
	if err != nil {
		return fmt.Errorf("sqlitestore: poll: %w", err)
	}
	var revs []keys.Revocation
	for rows.Next() {
		var rv keys.Revocation
		var at int64
		if err := rows.Scan(&last, &at, &rv.KeyID, &rv.Label, &rv.Owner, &rv.Path); err != nil {
			rows.Close()
			return fmt.Errorf("sqlitestore: poll: %w", err)
		}
		rv.At = fromMillis(at)
		revs = append(revs, rv)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlitestore: poll: %w", err)
	}
	s.mu.Lock()
	s.lastSeq = last
	subs := make([]func(keys.Revocation), 0, len(s.subs))
	for _, fn := range s.subs {
		subs = append(subs, fn)
	}
	s.mu.Unlock()
	for _, rv := range revs {
		for _, fn := range subs {
			fn(rv)
		}
	}
	return nil
}

// Run polls for revocations and flushes last-use records until ctx ends, then flushes once more.
// Errors are passed to report (nil: dropped) and never end Run.
func (s *Store) Run(ctx context.Context, report func(error)) {
	if report == nil {
		report = func(error) {}
	}
	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	flush := time.NewTicker(s.flush)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.Flush(context.WithoutCancel(ctx)); err != nil {
				report(err)
			}
			return
		case <-poll.C:
			if err := s.Poll(ctx); err != nil && ctx.Err() == nil {
				report(err)
			}
		case <-flush.C:
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
				report(err)
			}
		}
	}
}

// Close writes pending last-use records and closes the file. It is idempotent; call it after
// Run has returned.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true // from here Touch records nothing, so the flush below writes every use
	s.mu.Unlock()
	err := s.Flush(context.Background())
	return errors.Join(err, s.db.Close())
}
