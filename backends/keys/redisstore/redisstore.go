// Package redisstore keeps managed stream keys in Redis, so that every gatehouse replica sharing
// that Redis accepts the keys created on any of them and refuses a revoked one at once. It
// implements keys.Store and keys.Admin like package sqlitestore, and delivers revocations to
// Subscribe's callbacks on every replica.
//
// Layout (P is the configured key prefix; {k} is a Cluster hash tag, so every key of the store
// lives in one slot and one operation may touch several):
//
//	P{k}:d:<hex digest>  the key's record (JSON; never the secret), read by Lookup
//	P{k}:id:<id>         the hex digest of key <id>
//	P{k}:ids             sorted set of ids by creation time (List)
//	P{k}:used            hash id → "<unix ms> <address>": last use, written in batches
//	P{k}:revseq          revocation sequence number
//	P{k}:rev             sorted set: the revocation records by sequence (the last MaxFeed, kept
//	                     for FeedTTL after the latest)
//	P{k}:revoked         pub/sub channel announcing a new revocation record
//
// No cache: Lookup reads the record on every request, so a key revoked on one replica is refused
// by every replica at the next request. Revocations reach running sessions through the feed:
// a revocation writes a record and publishes its sequence number; Run reads the records after the
// last one it delivered on every announcement, after every (re)subscription — pub/sub loses
// messages while disconnected — and every poll interval. While Redis is unreachable, Lookup fails
// at once (redisstate.Health) and the keys backend answers key_store_unavailable (fail closed);
// running sessions are not touched.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz"
	"gatehouse/authz/state/redisstate"
	"gatehouse/backends/keys"
)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("redisstore: store is closed")

// Limits of the revocation feed.
const (
	MaxFeed = 10_000         // revocation records kept
	FeedTTL = 24 * time.Hour // the feed expires this long after its latest record
)

// Store is the Redis key store. New starts no goroutine; Run (owned by the caller) delivers
// revocations and flushes last-use records; Close flushes. The client is the caller's.
type Store struct {
	rdb    redis.UniversalClient
	health *redisstate.Health
	p      string // prefix + "{k}:"
	now    func() time.Time
	poll   time.Duration
	flush  time.Duration

	feed *redisstate.Feed // the revocation feed

	mu      sync.Mutex // guards pending, subs, closed
	pending map[string]use
	subs    map[int]func(keys.Revocation)
	nextSub int
	closed  bool
}

type use struct {
	at   time.Time
	addr netip.Addr
}

// Option configures New.
type Option func(*Store)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithIntervals sets how often Run re-reads the revocation feed without an announcement
// (default 2 s) and flushes last-use records (default 10 s).
func WithIntervals(poll, flush time.Duration) Option {
	return func(s *Store) { s.poll, s.flush = poll, flush }
}

// WithHealth shares h with the other users of the client (default: a Health of its own).
func WithHealth(h *redisstate.Health) Option { return func(s *Store) { s.health = h } }

// New returns a store over rdb with keys under prefix. It reads the revocation sequence once
// (revocations before New are not delivered); when Redis is unreachable it does so at the first
// successful read instead.
func New(ctx context.Context, rdb redis.UniversalClient, prefix string, opts ...Option) *Store {
	s := &Store{rdb: rdb, p: prefix + "{k}:", now: time.Now, poll: 2 * time.Second, flush: 10 * time.Second,
		pending: map[string]use{}, subs: map[int]func(keys.Revocation){}}
	for _, o := range opts {
		o(s)
	}
	if s.health == nil {
		s.health = redisstate.NewHealth(0, s.now)
	}
	s.feed = redisstate.NewFeed(ctx, rdb, s.health, redisstate.FeedKeys{Seq: s.p + "revseq", Records: s.p + "rev", Channel: s.p + "revoked"},
		MaxFeed, FeedTTL, s.poll, s.deliver)
	return s
}

// Health returns the store's Health (shared or its own).
func (s *Store) Health() *redisstate.Health { return s.health }

// record is a key as stored: keys.Record without the batched last use.
type record struct {
	ID        string   `json:"id"`
	Label     string   `json:"label,omitempty"`
	Owner     string   `json:"owner,omitempty"`
	Path      string   `json:"path"`
	Actions   []string `json:"actions"`
	Protocols []string `json:"protocols,omitempty"`
	Created   int64    `json:"created"`
	Expires   int64    `json:"expires,omitempty"`
	Revoked   int64    `json:"revoked,omitempty"`
}

func toStored(r keys.Record) record {
	acts := make([]string, len(r.Actions))
	for i, a := range r.Actions {
		acts[i] = string(a)
	}
	return record{ID: r.ID, Label: r.Label, Owner: r.Owner, Path: r.Path, Actions: acts, Protocols: r.Protocols,
		Created: millis(r.Created), Expires: millis(r.Expires), Revoked: millis(r.Revoked)}
}

func (r record) rec() keys.Record {
	out := keys.Record{ID: r.ID, Spec: keys.Spec{Label: r.Label, Owner: r.Owner, Path: r.Path, Protocols: r.Protocols,
		Expires: fromMillis(r.Expires)}, Created: fromMillis(r.Created), Revoked: fromMillis(r.Revoked)}
	for _, a := range r.Actions {
		out.Actions = append(out.Actions, authz.Action(a))
	}
	return out
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

func (s *Store) dKey(hexDigest string) string { return s.p + "d:" + hexDigest }
func (s *Store) idKey(id string) string       { return s.p + "id:" + id }

// do runs one operation under the health check and reports its outcome.
func (s *Store) do(fn func() error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := s.health.Check(); err != nil {
		return err
	}
	err := fn()
	s.health.Report(err)
	return err
}

// Lookup implements keys.Store: one GET by digest, no cache.
func (s *Store) Lookup(ctx context.Context, d keys.Digest) (keys.Record, error) {
	var raw []byte
	err := s.do(func() (err error) {
		raw, err = s.rdb.Get(ctx, s.dKey(hex.EncodeToString(d[:]))).Bytes()
		return err
	})
	switch {
	case errors.Is(err, redis.Nil):
		return keys.Record{}, keys.ErrNotFound
	case err != nil:
		return keys.Record{}, fmt.Errorf("redisstore: lookup: %w", err)
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return keys.Record{}, fmt.Errorf("redisstore: lookup: bad record: %w", err)
	}
	return r.rec(), nil
}

// Touch implements keys.Store: it only remembers the latest use per key; Run and Close write.
func (s *Store) Touch(id string, t time.Time, addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.pending) >= 100_000 {
		return
	}
	if u, ok := s.pending[id]; !ok || t.After(u.at) {
		s.pending[id] = use{t, addr}
	}
}

// touchScript writes last-use records, each only over an older one: KEYS = the used hash; ARGV =
// id, "<unix ms> <address>", ... Another replica's batch, or a batch retried after a failure,
// may arrive after a newer use was written; a plain HSET would move "last used" back.
var touchScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local at = cur and tonumber(string.match(cur, '^%d+'))
  if not at or at < tonumber(string.match(ARGV[i + 1], '^%d+')) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0`)

// Flush writes the collected last-use records in one script (a use never replaces a newer one);
// on failure they are kept for the next.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	batch := s.pending
	s.pending = map[string]use{}
	s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	vals := make([]any, 0, 2*len(batch))
	for id, u := range batch {
		addr := ""
		if u.addr.IsValid() {
			addr = u.addr.String()
		}
		vals = append(vals, id, strconv.FormatInt(millis(u.at), 10)+" "+addr)
	}
	err := s.health.Check()
	if err == nil {
		err = touchScript.Run(ctx, s.rdb, []string{s.p + "used"}, vals...).Err()
		s.health.Report(err)
	}
	if err != nil {
		s.mu.Lock()
		for id, u := range batch {
			if p, ok := s.pending[id]; !ok || u.at.After(p.at) {
				s.pending[id] = u
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("redisstore: flush: %w", err)
	}
	return nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var idRe = regexp.MustCompile(`^key_[a-z2-7]{10}$`)

func newID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "key_" + idEncoding.EncodeToString(b[:]), nil
}

// Create stores a new key described by spec and returns it with its secret, which exists nowhere
// else: show it once. A spec that is not valid gives an error wrapping keys.ErrInvalid.
func (s *Store) Create(ctx context.Context, spec keys.Spec) (keys.Record, string, error) {
	spec, err := spec.Normalize()
	if err != nil {
		return keys.Record{}, "", err
	}
	var rec keys.Record
	var secret string
	err = s.do(func() (err error) {
		rec, secret, err = s.insert(ctx, s.rdb, spec, nil)
		return err
	})
	if err != nil {
		return keys.Record{}, "", fmt.Errorf("redisstore: create: %w", err)
	}
	return rec, secret, nil
}

// multi runs a MULTI: the client itself, or a transaction under its WATCH (*redis.Tx).
type multi interface {
	TxPipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// insert writes a new key in one MULTI on m (the client, or a rotation's WATCH transaction);
// with also, the writes of also join the same MULTI.
func (s *Store) insert(ctx context.Context, m multi, spec keys.Spec, also func(redis.Pipeliner)) (keys.Record, string, error) {
	secret, digest, err := keys.NewSecret()
	if err != nil {
		return keys.Record{}, "", err
	}
	hexDigest := hex.EncodeToString(digest[:])
	rec := keys.Record{Spec: spec, Created: s.now().UTC().Truncate(time.Millisecond)}
	for range 3 { // an id collision (48 random bits) is retried with a fresh id
		if rec.ID, err = newID(); err != nil {
			return keys.Record{}, "", err
		}
		ok, err := s.rdb.SetNX(ctx, s.idKey(rec.ID), hexDigest, 0).Result()
		if err != nil {
			return keys.Record{}, "", err
		}
		if ok {
			break
		}
		rec.ID = ""
	}
	if rec.ID == "" {
		return keys.Record{}, "", errors.New("no free key id")
	}
	raw, _ := json.Marshal(toStored(rec))
	_, err = m.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.dKey(hexDigest), raw, 0)
		p.ZAdd(ctx, s.p+"ids", redis.Z{Score: float64(millis(rec.Created)), Member: rec.ID})
		if also != nil {
			also(p)
		}
		return nil
	})
	if err != nil {
		_ = s.rdb.Del(context.WithoutCancel(ctx), s.idKey(rec.ID)).Err()
		return keys.Record{}, "", err
	}
	return rec, secret, nil
}

// List returns every managed key, oldest first, with its last use.
func (s *Store) List(ctx context.Context) ([]keys.Record, error) {
	var out []keys.Record
	err := s.do(func() error {
		ids, err := s.rdb.ZRange(ctx, s.p+"ids", 0, -1).Result()
		if err != nil || len(ids) == 0 {
			return err
		}
		used, err := s.rdb.HGetAll(ctx, s.p+"used").Result()
		if err != nil {
			return err
		}
		for chunk := range slices.Chunk(ids, 500) {
			idKeys := make([]string, len(chunk))
			for i, id := range chunk {
				idKeys[i] = s.idKey(id)
			}
			digests, err := s.rdb.MGet(ctx, idKeys...).Result()
			if err != nil {
				return err
			}
			dKeys := make([]string, 0, len(digests))
			for _, d := range digests {
				if h, ok := d.(string); ok {
					dKeys = append(dKeys, s.dKey(h))
				}
			}
			if len(dKeys) == 0 {
				continue
			}
			raws, err := s.rdb.MGet(ctx, dKeys...).Result()
			if err != nil {
				return err
			}
			for _, v := range raws {
				str, ok := v.(string)
				if !ok {
					continue
				}
				var r record
				if json.Unmarshal([]byte(str), &r) != nil {
					continue
				}
				rec := r.rec()
				setUse(&rec, used[rec.ID])
				out = append(out, rec)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: list: %w", err)
	}
	return out, nil
}

func setUse(r *keys.Record, v string) {
	ms, addr, _ := strings.Cut(v, " ")
	if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
		r.LastUsed, r.LastAddr = fromMillis(n), addr
	}
}

// Get returns the key with the given id, or an error wrapping keys.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (keys.Record, error) {
	var rec keys.Record
	err := s.do(func() (err error) {
		rec, _, err = s.get(ctx, s.rdb, id)
		if err == nil {
			v, uerr := s.rdb.HGet(ctx, s.p+"used", id).Result()
			if uerr != nil && !errors.Is(uerr, redis.Nil) {
				return uerr
			}
			setUse(&rec, v)
		}
		return err
	})
	if err != nil && !errors.Is(err, keys.ErrNotFound) {
		return rec, fmt.Errorf("redisstore: get: %w", err)
	}
	return rec, err
}

func (s *Store) get(ctx context.Context, c redis.Cmdable, id string) (keys.Record, string, error) {
	if !idRe.MatchString(id) {
		return keys.Record{}, "", fmt.Errorf("redisstore: %w: ids look like key_ followed by 10 letters and digits", keys.ErrNotFound)
	}
	h, err := c.Get(ctx, s.idKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return keys.Record{}, "", fmt.Errorf("redisstore: %w: %s", keys.ErrNotFound, id)
	}
	if err != nil {
		return keys.Record{}, "", err
	}
	raw, err := c.Get(ctx, s.dKey(h)).Bytes()
	if errors.Is(err, redis.Nil) {
		return keys.Record{}, "", fmt.Errorf("redisstore: %w: %s", keys.ErrNotFound, id)
	}
	if err != nil {
		return keys.Record{}, "", err
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return keys.Record{}, "", fmt.Errorf("bad record: %w", err)
	}
	return r.rec(), h, nil
}

// revocation is one feed record.
type revocation struct {
	KeyID string `json:"key_id"`
	Label string `json:"label,omitempty"`
	Owner string `json:"owner,omitempty"`
	Path  string `json:"path"`
	At    int64  `json:"at"`
}

// revoke queues, in p, rec's update to revoked at `at` and its feed record.
func (s *Store) revoke(ctx context.Context, p redis.Pipeliner, rec *keys.Record, hexDigest string, at time.Time) {
	rec.Revoked = at.UTC().Truncate(time.Millisecond)
	raw, _ := json.Marshal(toStored(*rec))
	rv, _ := json.Marshal(revocation{KeyID: rec.ID, Label: rec.Label, Owner: rec.Owner, Path: rec.Path, At: millis(rec.Revoked)})
	p.Set(ctx, s.dKey(hexDigest), raw, 0)
	s.feed.Append(ctx, p, string(rv)) // in the same MULTI as the record's update
}

// Revoke revokes the key now on every replica; revoking a revoked key changes nothing (a pending
// grace period is cut short).
func (s *Store) Revoke(ctx context.Context, id string) (keys.Record, error) {
	var rec keys.Record
	err := s.do(func() error {
		h, err := s.rdb.Get(ctx, s.idKey(id)).Result()
		if err != nil || !idRe.MatchString(id) {
			_, _, err = s.get(ctx, s.rdb, id) // the not-found error, or the read error
			return err
		}
		return s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var err error
			if rec, _, err = s.get(ctx, tx, id); err != nil {
				return err
			}
			now := s.now()
			if rec.RevokedAt(now) {
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				s.revoke(ctx, p, &rec, h, now)
				return nil
			})
			return err
		}, s.dKey(h))
	})
	if err != nil && !errors.Is(err, keys.ErrNotFound) {
		return keys.Record{}, fmt.Errorf("redisstore: revoke: %w", err)
	}
	return rec, err
}

// Rotate replaces a key: a new key with the same label, owner, permissions and expiry, and the
// old one revoked after grace (0: at once), in one transaction. A revoked key cannot be rotated
// (keys.ErrRevoked), nor an expired one (keys.ErrExpired).
func (s *Store) Rotate(ctx context.Context, id string, grace time.Duration) (newRec keys.Record, secret string, old keys.Record, err error) {
	if grace < 0 {
		return newRec, "", old, fmt.Errorf("redisstore: rotate: %w: grace period is negative", keys.ErrInvalid)
	}
	err = s.do(func() error {
		h, err := s.rdb.Get(ctx, s.idKey(id)).Result()
		if err != nil || !idRe.MatchString(id) {
			_, _, err = s.get(ctx, s.rdb, id)
			return err
		}
		return s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var err error
			if old, _, err = s.get(ctx, tx, id); err != nil {
				return err
			}
			now := s.now()
			if !old.Revoked.IsZero() {
				return fmt.Errorf("rotate %s: %w", id, keys.ErrRevoked)
			}
			if !old.Expires.IsZero() && !now.Before(old.Expires) {
				return fmt.Errorf("rotate %s: %w", id, keys.ErrExpired)
			}
			spec := old.Spec
			spec.Actions, spec.Protocols = slices.Clone(spec.Actions), slices.Clone(spec.Protocols)
			// The new key's writes and the old key's revocation commit together, under the
			// WATCH of the old record.
			newRec, secret, err = s.insert(ctx, tx, spec, func(p redis.Pipeliner) { s.revoke(ctx, p, &old, h, now.Add(grace)) })
			return err
		}, s.dKey(h))
	})
	if err != nil {
		if errors.Is(err, keys.ErrNotFound) {
			return keys.Record{}, "", old, err
		}
		return keys.Record{}, "", old, fmt.Errorf("redisstore: rotate: %w", err)
	}
	return newRec, secret, old, nil
}

// Subscribe registers fn to be called, from Run's goroutine, for every revocation written by any
// replica (or `gatehouse keys`) after New; a rotation's is delivered when it is written, with At
// the end of its grace period. It returns the function that unregisters fn.
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

// Poll delivers the revocation records written since the last one delivered. Run calls it on
// every announcement, after every (re)subscription and every poll interval.
func (s *Store) Poll(ctx context.Context) error {
	if err := s.feed.Poll(ctx); err != nil {
		return fmt.Errorf("redisstore: poll: %w", err)
	}
	return nil
}

// OnGap registers fn to be called, from Run's goroutine, when revocation records were lost
// before this node read them (more than MaxFeed since the last read, older than FeedTTL, or lost
// by Redis: redisstate.Feed): the caller re-checks its running sessions against the store.
func (s *Store) OnGap(fn func()) { s.feed.OnGap(fn) }

// deliver decodes the feed's records and hands them to the subscribers.
func (s *Store) deliver(bodies []string) {
	var revs []keys.Revocation
	for _, body := range bodies {
		var rv revocation
		if json.Unmarshal([]byte(body), &rv) != nil {
			continue
		}
		revs = append(revs, keys.Revocation{KeyID: rv.KeyID, Label: rv.Label, Owner: rv.Owner, Path: rv.Path, At: fromMillis(rv.At)})
	}
	s.mu.Lock()
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
}

// Run delivers revocations (redisstate.Feed: on every announcement, after every
// (re)subscription, every poll interval) and flushes last-use records until ctx ends, then
// flushes once more. It owns the feed's goroutines and waits for them. Errors go to report
// (nil: dropped).
func (s *Store) Run(ctx context.Context, report func(error)) {
	if report == nil {
		report = func(error) {}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.feed.Run(ctx, func(err error) { report(fmt.Errorf("redisstore: poll: %w", err)) })
	}()
	defer wg.Wait()
	flush := time.NewTicker(s.flush)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.Flush(context.WithoutCancel(ctx)); err != nil {
				report(err)
			}
			return
		case <-flush.C:
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, redisstate.ErrUnavailable) {
				report(err)
			}
		}
	}
}

// Close writes pending last-use records. It is idempotent; call it after Run has returned. The
// client is the caller's to close.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	return s.Flush(context.Background())
}
