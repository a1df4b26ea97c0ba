package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz"
)

// PushThreshold is how many failures of one subject counted since the last push make Shared push
// at once instead of at the next interval.
const PushThreshold = 5

// Shared is the failure counter and ban store every replica sees: authz.BanStore and
// authz.Counter over Redis, without a Redis round trip on the request path.
//
// Counting is local and pushed as deltas: Fail counts in an in-process counter and adds the
// failures the other replicas pushed (learnt at the last push of that subject); Run pushes the
// deltas every interval, or at once when a subject collects PushThreshold failures, with one
// INCRBY per subject whose key expires with the window. An attack is therefore a Redis write per
// subject per interval, not per attempt. Strikes (ban doubling) stay per replica.
//
// Bans are a local mirror: Until and List read it; Put and Lift change it at once and are pushed
// within one interval (a hash of bans and a version counter); every interval Run reads the version
// and, when it moved, the whole hash, so a ban made on one replica is refused by the others
// within one interval, and bans outlive the restart of any replica. The hash is bounded: each
// ban's field is also in a sorted set by its end (operators' and brute force's apart), every push
// that changes bans deletes the expired ones, and brute-force bans beyond maxBans are evicted
// soonest-ending first (operators' never are), so the hash re-read stays at most about
// 2 × maxBans fields however long an attack lasts.
//
// While Redis is unreachable nothing blocks: counts and bans stay local and queued (bounded), and
// the first push after Redis returns sends them and re-reads the bans. The zero Shared is not
// usable; build it with NewShared. It starts no goroutine; Run (owned by the caller) syncs until
// its context ends.
type Shared struct {
	rdb      redis.UniversalClient
	health   *Health
	p        string
	interval time.Duration
	now      func() time.Time
	bans     authz.BanStore
	counter  authz.Counter
	max      int
	maxBans  int // brute-force bans kept in Redis

	kick chan struct{}
	gen  atomic.Uint64 // operator bans learnt from other replicas (Generation)

	mu      sync.Mutex
	pending map[authz.BanSubject]*authz.Ban // nil: lifted
	deltas  map[authz.BanSubject]int
	resets  map[authz.BanSubject]bool
	window  time.Duration // the counter window last asked for (keys expire with it)
	others  map[authz.BanSubject]remote
	ours    map[authz.BanSubject]int
	local   map[authz.BanSubject]localCount // the local count last seen, to tell a repeat from a guess
	ver     int64                           // the ban version last read; -1: read the hash at the next sync
}

// localCount is what the in-process counter last answered for a subject, and since when.
type localCount struct {
	n     int
	start time.Time
}

type remote struct {
	n     int       // failures pushed by other replicas in the current window
	until time.Time // when that window ends (as far as this replica knows)
}

// NewShared returns a Shared over rdb with keys under prefix, syncing every interval (<= 0:
// 250 ms), reporting to h (nil: a Health of its own). It holds at most maxBans bans and tracks
// at most maxCounters subjects (<= 0: the authz defaults).
func NewShared(rdb redis.UniversalClient, prefix string, interval time.Duration, h *Health, maxBans, maxCounters int) *Shared {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	if h == nil {
		h = NewHealth(interval, nil)
	}
	if maxCounters <= 0 {
		maxCounters = authz.DefaultMaxCounters
	}
	if maxBans <= 0 {
		maxBans = authz.MaxBans
	}
	s := &Shared{rdb: rdb, health: h, p: prefix + "{b}:", interval: interval, now: time.Now,
		bans: authz.NewMemoryBans(maxBans), counter: authz.NewMemoryCounter(maxCounters), max: maxCounters, maxBans: maxBans,
		kick: make(chan struct{}, 1), pending: map[authz.BanSubject]*authz.Ban{}, deltas: map[authz.BanSubject]int{},
		resets: map[authz.BanSubject]bool{}, others: map[authz.BanSubject]remote{}, ours: map[authz.BanSubject]int{}, local: map[authz.BanSubject]localCount{}, ver: -1}
	h.OnUp(func() { s.mu.Lock(); s.ver = -1; s.mu.Unlock(); s.nudge() })
	return s
}

func (s *Shared) nudge() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// operatorBan is authz.Ban.Reason of an operator's ban (a kick with ?ban=).
const operatorBan = "operator"

// Generation counts the operator bans (of a stream key or an identity) learnt from other
// replicas, new or changed; the engine adds it to its own Generation, so grants cached by
// generation (forward-auth cookies) end on every replica as they do on the one that banned.
// Brute-force bans never advance it: an attacker must not end everyone's cookies by getting
// itself banned.
func (s *Shared) Generation() uint64 { return s.gen.Load() }

// Put implements authz.BanStore: the ban holds here at once and on every replica after the next
// push. An operator's ban is always queued (operators are few; the mirror's own bound still
// refuses with ErrTooManyBans); a brute-force ban beyond the bounded queue is refused with
// ErrTooManyBans, never applied here only to be lifted by the next pull. The mirror and the
// queue change under one lock, so a concurrent pull cannot lift a ban it does not see queued.
func (s *Shared) Put(b authz.Ban, now time.Time) error {
	s.mu.Lock()
	if _, queued := s.pending[b.Subject]; !queued && !alwaysQueued(&b) && len(s.pending) >= s.max {
		s.mu.Unlock()
		return fmt.Errorf("redisstate: ban push queue full: %w", authz.ErrTooManyBans)
	}
	if err := s.bans.Put(b, now); err != nil {
		s.mu.Unlock()
		return err
	}
	s.pending[b.Subject] = &b
	s.mu.Unlock()
	s.nudge()
	return nil
}

// alwaysQueued reports whether a queued change is an operator's (a lift, nil, or an operator's
// ban): those are never dropped from the push queue.
func alwaysQueued(b *authz.Ban) bool { return b == nil || b.Reason == operatorBan }

// Until implements authz.BanStore from the local mirror (no network).
func (s *Shared) Until(b authz.BanSubject, now time.Time) (time.Time, bool) {
	return s.bans.Until(b, now)
}

// List implements authz.BanStore from the local mirror.
func (s *Shared) List(now time.Time) []authz.Ban { return s.bans.List(now) }

// Lift implements authz.BanStore: lifted here at once and on every replica after the next push
// (an operator's action: always queued).
func (s *Shared) Lift(b authz.BanSubject, now time.Time) bool {
	s.mu.Lock()
	ok := s.bans.Lift(b, now)
	s.pending[b] = nil
	s.mu.Unlock()
	s.nudge()
	return ok
}

// Fail implements authz.Counter: the local count plus the other replicas' in the window.
// A repeat of a credential this replica already counted (fp, see authz.Counter) is not pushed
// either; fingerprints are keyed per process, so another replica counts the same repeat once more.
func (s *Shared) Fail(b authz.BanSubject, fp uint64, now time.Time, window time.Duration) int {
	n := s.counter.Fail(b, fp, now, window)
	s.mu.Lock()
	s.window = window
	last, seen := s.local[b]
	counted := !seen || n != last.n || now.Sub(last.start) >= window
	if counted && (seen || len(s.local) < s.max) {
		start := last.start
		if !seen || n == 1 || now.Sub(last.start) >= window {
			start = now
		}
		s.local[b] = localCount{n: n, start: start}
	}
	if _, ok := s.deltas[b]; counted && (ok || len(s.deltas) < s.max) {
		s.deltas[b]++
	}
	push := s.deltas[b] >= PushThreshold
	if r, ok := s.others[b]; ok && now.Before(r.until) {
		n += r.n
	}
	s.mu.Unlock()
	if push {
		s.nudge()
	}
	return n
}

// Strike implements authz.Counter (strikes are per replica; the ban they size is shared).
func (s *Shared) Strike(b authz.BanSubject, now time.Time, quiet time.Duration) int {
	n := s.counter.Strike(b, now, quiet)
	s.forget(b)
	return n
}

// Reset implements authz.Counter. Only a subject this replica knows shared failures of is reset
// in Redis, so ordinary successes cost no write.
func (s *Shared) Reset(b authz.BanSubject) {
	s.counter.Reset(b)
	s.forget(b)
}

func (s *Shared) forget(b authz.BanSubject) {
	s.mu.Lock()
	_, d := s.deltas[b]
	_, o := s.others[b]
	_, u := s.ours[b]
	delete(s.local, b)
	if d || o || u {
		delete(s.deltas, b)
		delete(s.others, b)
		delete(s.ours, b)
		if len(s.resets) < s.max {
			s.resets[b] = true
		}
	}
	s.mu.Unlock()
}

// pruneScript deletes expired bans and the brute-force bans beyond the bound, at most 1000 of
// each per call: KEYS = bans hash, brute-force ends, operator ends; ARGV = now (unix ms), max
// brute-force bans. It returns how many it deleted.
var pruneScript = redis.NewScript(`
local n = 0
for i = 2, 3 do
  local gone = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'LIMIT', 0, 1000)
  if #gone > 0 then
    redis.call('HDEL', KEYS[1], unpack(gone))
    redis.call('ZREM', KEYS[i], unpack(gone))
    n = n + #gone
  end
end
local over = math.min(redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2]), 1000)
if over > 0 then
  local gone = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
  n = n + #gone
end
return n`)

func subjectField(b authz.BanSubject) string { return b.Kind + ":" + b.Value }

func (s *Shared) failKey(b authz.BanSubject) string { return s.p + "f:" + subjectField(b) }

// Run pushes and pulls every interval (and when nudged) until ctx ends.
func (s *Shared) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	_ = s.Sync(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		_ = s.Sync(ctx)
	}
}

// Sync pushes what changed here and reads the bans when another replica changed them. Run calls
// it; tests may too. On failure everything stays queued for the next Sync.
func (s *Shared) Sync(ctx context.Context) error {
	now := s.now()
	s.mu.Lock()
	pending, deltas, resets, window, ver := s.pending, s.deltas, s.resets, s.window, s.ver
	s.pending, s.deltas, s.resets = map[authz.BanSubject]*authz.Ban{}, map[authz.BanSubject]int{}, map[authz.BanSubject]bool{}
	s.mu.Unlock()
	if window <= 0 {
		window = time.Minute
	}
	type incr struct {
		b   authz.BanSubject
		d   int
		cmd *redis.IntCmd
	}
	var incrs []incr
	var verCmd *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		changed := false
		for b, ban := range pending {
			f := subjectField(b)
			p.ZRem(ctx, s.p+"bansbf", f)
			p.ZRem(ctx, s.p+"bansop", f)
			if ban == nil {
				p.HDel(ctx, s.p+"bans", f)
			} else {
				raw, _ := json.Marshal(ban)
				p.HSet(ctx, s.p+"bans", f, raw)
				z := s.p + "bansbf"
				if ban.Reason == operatorBan {
					z = s.p + "bansop"
				}
				p.ZAdd(ctx, z, redis.Z{Score: float64(ban.Until.UnixMilli()), Member: f})
			}
			changed = true
		}
		if changed {
			pruneScript.Eval(ctx, p, []string{s.p + "bans", s.p + "bansbf", s.p + "bansop"}, now.UnixMilli(), s.maxBans)
			p.Incr(ctx, s.p+"bansver")
		}
		for b := range resets {
			p.Del(ctx, s.failKey(b))
		}
		for b, d := range deltas {
			k := s.failKey(b)
			incrs = append(incrs, incr{b, d, p.IncrBy(ctx, k, int64(d))})
			p.Do(ctx, "PEXPIRE", k, window.Milliseconds(), "NX")
		}
		verCmd = p.Get(ctx, s.p+"bansver")
		return nil
	})
	if errors.Is(err, redis.Nil) {
		err = nil // no version yet: no bans ever written
	}
	s.health.Report(err)
	if err != nil {
		s.requeue(pending, deltas, resets)
		return err
	}
	s.mu.Lock()
	for _, in := range incrs {
		total := int(in.cmd.Val())
		s.ours[in.b] += in.d
		if total < s.ours[in.b] { // the shared window restarted
			s.ours[in.b] = in.d
		}
		s.others[in.b] = remote{n: total - s.ours[in.b], until: now.Add(window)}
	}
	if len(s.others) > s.max { // bounded: forget what other replicas counted
		clear(s.others)
		clear(s.ours)
	}
	s.mu.Unlock()
	remoteVer, _ := strconv.ParseInt(verCmd.Val(), 10, 64)
	if remoteVer == ver && len(pending) == 0 {
		return nil
	}
	return s.pull(ctx, remoteVer, now)
}

// pull replaces the local mirror's bans with the shared ones, keeping changes made here since
// (they are pushed next).
func (s *Shared) pull(ctx context.Context, ver int64, now time.Time) error {
	all, err := s.rdb.HGetAll(ctx, s.p+"bans").Result()
	s.health.Report(err)
	if err != nil {
		return err
	}
	shared := make(map[authz.BanSubject]authz.Ban, len(all))
	var expired []string
	for field, raw := range all {
		var b authz.Ban
		if json.Unmarshal([]byte(raw), &b) != nil {
			continue
		}
		if !now.Before(b.Until) {
			expired = append(expired, field)
			continue
		}
		shared[b.Subject] = b
	}
	s.mu.Lock()
	local := s.pending // changed here after this Sync took its snapshot: those win
	for b, ban := range shared {
		if _, mine := local[b]; !mine {
			if cur, ok := s.bans.Until(b, now); !ok || !cur.Equal(ban.Until) {
				_ = s.bans.Put(ban, now)
				if ban.Reason == operatorBan && (b.Kind == authz.BanKey || b.Kind == authz.BanIdentity) {
					s.gen.Add(1)
				}
			}
		}
	}
	for _, ban := range s.bans.List(now) {
		if _, ok := shared[ban.Subject]; !ok {
			if _, mine := local[ban.Subject]; !mine {
				s.bans.Lift(ban.Subject, now)
			}
		}
	}
	s.ver = ver
	s.mu.Unlock()
	if len(expired) > 0 {
		_ = s.rdb.HDel(ctx, s.p+"bans", expired...).Err()
	}
	return nil
}

// requeue merges a failed push back, under newer changes made meanwhile.
func (s *Shared) requeue(pending map[authz.BanSubject]*authz.Ban, deltas map[authz.BanSubject]int, resets map[authz.BanSubject]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for b, ban := range pending {
		if _, newer := s.pending[b]; !newer && (alwaysQueued(ban) || len(s.pending) < s.max) {
			s.pending[b] = ban
		}
	}
	for b, d := range deltas {
		if _, ok := s.deltas[b]; ok || len(s.deltas) < s.max {
			s.deltas[b] += d
		}
	}
	for b := range resets {
		if len(s.resets) < s.max {
			s.resets[b] = true
		}
	}
}
