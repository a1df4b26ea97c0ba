package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz"
	"gatehouse/authz/live"
	"gatehouse/authz/state"
)

// Timing of node records and publish leases.
const (
	DefaultHeartbeat = 2 * time.Second  // how often a node rewrites its record and renews its leases
	DefaultNodeTTL   = 10 * time.Second // a record or lease not renewed for this long expires
)

// LocalSessions lists the sessions this node holds; *revoke.Revoker (every server's sessions)
// and *live.Registry implement it. Its publishers keep their paths' leases.
type LocalSessions interface {
	Sessions() []live.Session
}

// Fleet is this node's membership of a fleet of gatehouse replicas sharing one Redis: its node
// record, and the publish leases that allow one publisher per path across the fleet
// (authz.PathLeases).
//
// Layout (P is the key prefix; {n} is the Cluster hash tag of every fleet key):
//
//	P{n}:node:<id>     the node's record (JSON state.Node), expiring after the node TTL
//	P{n}:nodes         sorted set: node id by its record's expiry (unix ms), for listing
//	P{n}:lease:<path>  "<node id> <claim token>" of the node whose publisher holds path,
//	                   expiring after the TTL
//	P{n}:kick*         the kick feed (Announce)
//
// A lease is taken by Claim when the engine allows a new publish, renewed every heartbeat while
// a local publisher of the path is live (LocalSessions), and released (deleted if still ours)
// when none is: at the next heartbeat, or at once on the registry's offline Change given to Run.
// A claim whose publisher never shows up is released after one TTL. Every Claim writes a new
// token, and a release deletes the lease only if it still holds the token of the claim it
// looked at, so a publisher admitted again (a reconnect) just before the release of its ended
// predecessor keeps its lease. Every heartbeat also claims the path of every local live
// publisher that holds no lease (lost in a race or a partition); when another node holds it,
// two publishers run and the heartbeat logs it at WARN and tries again at the next one. A node that stops (crash,
// partition) stops renewing, so its leases and record expire after the TTL. While Redis is
// unreachable, Claim fails at once (Health) and running sessions are left alone; when it
// answers again the next heartbeat re-asserts the leases of the sessions still live
// (reconcile), rewriting any that Redis lost.
//
// The zero Fleet is not usable; build it with NewFleet. It starts no goroutine: Run (owned by
// the caller) beats until its context ends.
type Fleet struct {
	rdb    redis.UniversalClient
	health *Health
	p      string
	self   state.Node
	local  LocalSessions
	beat   time.Duration
	ttl    time.Duration
	now    func() time.Time
	kicks  *Feed
	nudge  chan struct{}
	log    *slog.Logger
	inst   string // this process's random instance id: claim tokens are "<inst>.<n>"

	mu     sync.Mutex
	claims uint64 // claims made by this process
	leases map[string]*lease
	onKick []func([]byte)
}

type lease struct {
	claimed time.Time
	token   string // the claim's: a release deletes the lease only if it still holds it
	seen    bool   // a local publisher of the path was live since the claim
}

// FleetOption configures NewFleet.
type FleetOption func(*Fleet)

// WithTiming sets the heartbeat and the TTL of records and leases (defaults DefaultHeartbeat,
// DefaultNodeTTL); the TTL should be several heartbeats.
func WithTiming(beat, ttl time.Duration) FleetOption {
	return func(f *Fleet) {
		if beat > 0 {
			f.beat = beat
		}
		if ttl > 0 {
			f.ttl = ttl
		}
	}
}

// WithFleetClock sets the clock (default time.Now).
func WithFleetClock(now func() time.Time) FleetOption { return func(f *Fleet) { f.now = now } }

// WithFleetLogger sets where the fleet logs what it cannot undo (two publishers of a path).
// Default: nothing is logged.
func WithFleetLogger(l *slog.Logger) FleetOption { return func(f *Fleet) { f.log = l } }

// NewFleet returns this node's fleet membership over rdb, keys under prefix, for self (ID
// required; Started zero: now), with its publishers' sessions listed by local, reporting to h
// (nil: a Health of its own).
func NewFleet(ctx context.Context, rdb redis.UniversalClient, prefix string, self state.Node, local LocalSessions, h *Health, opts ...FleetOption) *Fleet {
	f := &Fleet{rdb: rdb, health: h, p: prefix + "{n}:", self: self, local: local, beat: DefaultHeartbeat, ttl: DefaultNodeTTL,
		now: time.Now, nudge: make(chan struct{}, 1), leases: map[string]*lease{}, inst: newInstanceID(),
		log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(f)
	}
	if f.health == nil {
		f.health = NewHealth(f.beat, f.now)
	}
	if f.self.Started.IsZero() {
		f.self.Started = f.now().UTC()
	}
	f.self.Instance = f.inst
	f.kicks = NewFeed(ctx, rdb, f.health, FeedKeys{Seq: f.p + "kickseq", Records: f.p + "kicks", Channel: f.p + "kicked"},
		1000, time.Hour, f.beat, f.deliverKicks)
	f.health.OnUp(f.wake)
	return f
}

// newInstanceID returns 8 random bytes in hex: this process, as opposed to its node id.
func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrNodeIDInUse is wrapped by CheckUnique when another live process has this node's id.
var ErrNodeIDInUse = errors.New("redisstate: node id in use by another live process")

// CheckUnique fails with an error wrapping ErrNodeIDInUse when another live process has this
// node's id: two processes with one node id would renew each other's leases and take each
// other's kicks. A record of another process is watched for two heartbeats: a live process
// renews it at least once meanwhile (its TTL falls by at most one heartbeat), the record of one
// that crashed only runs down (by both), so a restart after a crash (systemd's Restart=always)
// goes ahead instead of being refused until the record expires. ctx must allow that wait. Other
// errors mean Redis could not say.
func (f *Fleet) CheckUnique(ctx context.Context) error {
	key := f.nodeKey(f.self.ID)
	other, ttl, err := f.foreignRecord(ctx, key)
	if err != nil || other == nil {
		return err
	}
	select {
	case <-time.After(2 * f.beat):
	case <-ctx.Done():
		return fmt.Errorf("redisstate: check node id: %w", ctx.Err())
	}
	again, ttl2, err := f.foreignRecord(ctx, key)
	if err != nil || again == nil {
		return err
	}
	if again.Instance == other.Instance && ttl-ttl2 > f.beat+f.beat/2 {
		return nil // not renewed: the process that wrote it is gone
	}
	return fmt.Errorf("%w: node_id %q (started %s, version %q); give each process its own state.node_id",
		ErrNodeIDInUse, f.self.ID, again.Started.Format(time.RFC3339), again.Version)
}

// foreignRecord returns the record at key and its remaining TTL when another process wrote it,
// or nil.
func (f *Fleet) foreignRecord(ctx context.Context, key string) (*state.Node, time.Duration, error) {
	pipe := f.rdb.Pipeline()
	get, pttl := pipe.Get(ctx, key), pipe.PTTL(ctx, key)
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		f.health.Report(nil)
		return nil, 0, nil
	}
	f.health.Report(err)
	if err != nil {
		return nil, 0, fmt.Errorf("redisstate: check node id: %w", err)
	}
	var n state.Node
	if json.Unmarshal([]byte(get.Val()), &n) != nil || n.Instance == f.self.Instance {
		return nil, 0, nil
	}
	return &n, pttl.Val(), nil
}

// Self returns this node's record.
func (f *Fleet) Self() state.Node { return f.self }

func (f *Fleet) wake() {
	select {
	case f.nudge <- struct{}{}:
	default:
	}
}

func (f *Fleet) nodeKey(id string) string    { return f.p + "node:" + id }
func (f *Fleet) leaseKey(path string) string { return f.p + "lease:" + path }

// claimScript takes or renews a lease: KEYS = lease; ARGV = node id, token, ttl ms, renew. A
// lease held by the node is given the new token (a new claim) or only its TTL (renew = "1": a
// newer claim's token is kept); a free one is written. It returns "" when the lease is (now) the
// node's, else the holder's id.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v ~= false then
  local holder = string.match(v, '^[^ ]+')
  if holder ~= ARGV[1] then return holder end
  if ARGV[4] == '1' then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return ''
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
return ''`)

// releaseScript deletes a lease if it still holds the claim's token: KEYS = lease; ARGV = node
// id, token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then return redis.call('DEL', KEYS[1]) end
return 0`)

// holderID returns the node id of a lease's value ("<node id> <token>").
func holderID(v string) string {
	id, _, _ := strings.Cut(v, " ")
	return id
}

// newToken returns the token of a new claim. The caller holds f.mu.
func (f *Fleet) newToken() string {
	f.claims++
	return f.inst + "." + strconv.FormatUint(f.claims, 10)
}

// Claim implements authz.PathLeases: it takes path's lease for this node, or renews it if it is
// already this node's. It fails with an error wrapping authz.ErrPathBusy when another node
// holds it, and one wrapping ErrUnavailable (at once) while Redis is away.
func (f *Fleet) Claim(ctx context.Context, path string) error {
	if err := f.health.Check(); err != nil {
		return err
	}
	f.mu.Lock()
	token := f.newToken()
	f.mu.Unlock()
	holder, err := claimScript.Run(ctx, f.rdb, []string{f.leaseKey(path)}, f.self.ID, token, f.ttl.Milliseconds(), "0").Text()
	f.health.Report(err)
	if err != nil {
		return fmt.Errorf("redisstate: claim: %w", err)
	}
	if holder != "" {
		return fmt.Errorf("redisstate: %w (node %s)", authz.ErrPathBusy, holder)
	}
	f.mu.Lock()
	// A new publisher: not seen yet, whatever the previous one of the path was.
	f.leases[path] = &lease{claimed: f.now(), token: token}
	f.mu.Unlock()
	return nil
}

// PublisherOf returns the node whose publisher holds path's lease, and whether one does. URL is
// "" when that node has no node_url or its record has expired.
func (f *Fleet) PublisherOf(ctx context.Context, path string) (state.Owner, bool, error) {
	if err := f.health.Check(); err != nil {
		return state.Owner{}, false, err
	}
	v, err := f.rdb.Get(ctx, f.leaseKey(path)).Result()
	id := holderID(v)
	if errors.Is(err, redis.Nil) {
		f.health.Report(nil)
		return state.Owner{}, false, nil
	}
	f.health.Report(err)
	if err != nil {
		return state.Owner{}, false, fmt.Errorf("redisstate: publisher of: %w", err)
	}
	o := state.Owner{NodeID: id}
	raw, err := f.rdb.Get(ctx, f.nodeKey(id)).Bytes()
	f.health.Report(err)
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return state.Owner{}, false, fmt.Errorf("redisstate: publisher of: %w", err)
	default:
		var n state.Node
		if json.Unmarshal(raw, &n) == nil {
			o.URL = n.URL
		}
	}
	return o, true, nil
}

// Nodes returns the live nodes' records (this one included once it has beaten), by id.
func (f *Fleet) Nodes(ctx context.Context) ([]state.Node, error) {
	if err := f.health.Check(); err != nil {
		return nil, err
	}
	ids, err := f.rdb.ZRangeByScore(ctx, f.p+"nodes", &redis.ZRangeBy{Min: strconv.FormatInt(f.now().UnixMilli(), 10), Max: "+inf"}).Result()
	var raws []any
	if err == nil && len(ids) > 0 {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = f.nodeKey(id)
		}
		raws, err = f.rdb.MGet(ctx, keys...).Result()
	}
	f.health.Report(err)
	if err != nil {
		return nil, fmt.Errorf("redisstate: nodes: %w", err)
	}
	out := []state.Node{}
	for _, r := range raws {
		s, ok := r.(string)
		if !ok {
			continue
		}
		var n state.Node
		if json.Unmarshal([]byte(s), &n) == nil {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b state.Node) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// Beat writes the node record and renews, re-asserts, claims or releases the leases (see
// Fleet). Run calls it every heartbeat; tests may too. While Redis is away it fails at once and
// changes nothing.
func (f *Fleet) Beat(ctx context.Context) error {
	if err := f.health.Check(); err != nil {
		return err
	}
	now := f.now()
	livePaths := f.livePaths()
	type op struct {
		path, token string
		cmd         *redis.Cmd
	}
	var renew, claim, release []op
	f.mu.Lock() // after livePaths: a claim made since has a new token or is not seen yet
	for path, l := range f.leases {
		switch {
		case livePaths[path]:
			l.seen = true
			renew = append(renew, op{path: path, token: l.token})
		case !l.seen && now.Sub(l.claimed) < f.ttl: // its publisher has not started yet
			renew = append(renew, op{path: path, token: l.token})
		default:
			release = append(release, op{path: path, token: l.token})
		}
	}
	for path := range livePaths {
		if _, ok := f.leases[path]; !ok { // a live publisher without a lease: claim it
			claim = append(claim, op{path: path, token: f.newToken()})
		}
	}
	f.mu.Unlock()

	rec, _ := json.Marshal(f.self)
	_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, f.nodeKey(f.self.ID), rec, f.ttl)
		p.ZAdd(ctx, f.p+"nodes", redis.Z{Score: float64(now.Add(f.ttl).UnixMilli()), Member: f.self.ID})
		p.ZRemRangeByScore(ctx, f.p+"nodes", "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
		for i, o := range renew {
			renew[i].cmd = claimScript.Eval(ctx, p, []string{f.leaseKey(o.path)}, f.self.ID, o.token, f.ttl.Milliseconds(), "1")
		}
		for i, o := range claim {
			claim[i].cmd = claimScript.Eval(ctx, p, []string{f.leaseKey(o.path)}, f.self.ID, o.token, f.ttl.Milliseconds(), "0")
		}
		for _, o := range release {
			releaseScript.Eval(ctx, p, []string{f.leaseKey(o.path)}, f.self.ID, o.token)
		}
		return nil
	})
	f.health.Report(err)
	if err != nil {
		return fmt.Errorf("redisstate: heartbeat: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range release {
		if l, ok := f.leases[o.path]; ok && l.token == o.token { // not claimed again meanwhile
			delete(f.leases, o.path)
		}
	}
	for _, o := range renew {
		if holder, _ := o.cmd.Text(); holder != "" {
			// Another node took the path while this one could not renew (a partition longer
			// than the TTL): the lease is theirs now; the local session runs on, and the next
			// heartbeats claim the path again for it (below) once theirs ends.
			if l, ok := f.leases[o.path]; ok && l.token == o.token {
				delete(f.leases, o.path)
			}
			if livePaths[o.path] {
				f.log.Warn("fleet: two publishers of one path: another node holds its lease while a local publisher is live",
					"path", o.path, "holder", holder)
			}
		}
	}
	for _, o := range claim {
		holder, _ := o.cmd.Text()
		if holder != "" {
			f.log.Warn("fleet: two publishers of one path: another node holds its lease while a local publisher is live",
				"path", o.path, "holder", holder)
			continue
		}
		if _, ok := f.leases[o.path]; !ok {
			f.leases[o.path] = &lease{claimed: now, token: o.token, seen: true}
		}
	}
	return nil
}

// livePaths returns the paths of the local live publishers.
func (f *Fleet) livePaths() map[string]bool {
	out := map[string]bool{}
	if f.local != nil {
		for _, s := range f.local.Sessions() {
			if s.Publish {
				out[s.Path] = true
			}
		}
	}
	return out
}

// Release gives up path's lease now if no local publisher of it is live (a publisher ended);
// a failure is left to the next heartbeat. A lease claimed again and not yet seen live (a
// publisher admitted but not started) is kept: the heartbeat releases it if it never starts.
func (f *Fleet) Release(ctx context.Context, path string) {
	f.mu.Lock()
	l, held := f.leases[path]
	var token string
	if held {
		token, held = l.token, l.seen
	}
	f.mu.Unlock()
	if !held || f.livePaths()[path] || f.health.Check() != nil {
		return
	}
	// A claim made after the token was read wrote a new one: the script then deletes nothing.
	err := releaseScript.Run(ctx, f.rdb, []string{f.leaseKey(path)}, f.self.ID, token).Err()
	f.health.Report(err)
	if err == nil {
		f.mu.Lock()
		if l, ok := f.leases[path]; ok && l.token == token {
			delete(f.leases, path)
		}
		f.mu.Unlock()
	}
}

// Leases returns the paths whose lease this node holds (or is renewing), sorted.
func (f *Fleet) Leases() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.leases))
	for p := range f.leases {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// kickMsg is one record of the kick feed: who announced it and what.
type kickMsg struct {
	Node string          `json:"node"`
	Body json.RawMessage `json:"body"`
}

// Announce broadcasts body (JSON) to every other node of the fleet: written as a record that
// expires an hour after the latest and announced on a channel, re-read by each node after every
// reconnect (Feed). It fails at once while Redis is away.
func (f *Fleet) Announce(ctx context.Context, body json.RawMessage) error {
	raw, err := json.Marshal(kickMsg{Node: f.self.ID, Body: body})
	if err != nil {
		return err
	}
	if err := f.kicks.Publish(ctx, string(raw)); err != nil {
		return fmt.Errorf("redisstate: announce: %w", err)
	}
	return nil
}

// OnAnnouncement registers fn to be called, from Run's goroutine, with the body of every
// announcement another node makes after NewFleet.
func (f *Fleet) OnAnnouncement(fn func(body []byte)) {
	f.mu.Lock()
	f.onKick = append(f.onKick, fn)
	f.mu.Unlock()
}

// OnGap registers fn to be called, from Run's goroutine, when announcements were lost before
// this node read them (Feed.OnGap): the caller re-checks its running sessions instead.
func (f *Fleet) OnGap(fn func()) { f.kicks.OnGap(fn) }

func (f *Fleet) deliverKicks(bodies []string) {
	f.mu.Lock()
	fns := slices.Clone(f.onKick)
	f.mu.Unlock()
	for _, b := range bodies {
		var m kickMsg
		if json.Unmarshal([]byte(b), &m) != nil || m.Node == f.self.ID {
			continue
		}
		for _, fn := range fns {
			fn(m.Body)
		}
	}
}

// Run beats every heartbeat, at once when Redis answers again (reconcile), and releases a
// path's lease as soon as changes (the registry's, may be nil) says it went offline; it
// delivers announcements. It returns when ctx ends, after releasing this node's leases and
// record (a clean stop frees its paths at once rather than after the TTL).
func (f *Fleet) Run(ctx context.Context, changes <-chan live.Change) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.kicks.Run(ctx, nil) }()
	defer wg.Wait()
	t := time.NewTicker(f.beat)
	defer t.Stop()
	_ = f.Beat(ctx)
	for {
		select {
		case <-ctx.Done():
			f.leave(context.WithoutCancel(ctx))
			return
		case <-t.C:
		case <-f.nudge:
		case c, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			if c.Live {
				f.mu.Lock()
				l, ok := f.leases[c.Stream.Path]
				if ok {
					l.seen = true
				}
				f.mu.Unlock()
				if !ok { // live without a lease: the heartbeat claims it
					f.wake()
				}
			} else {
				f.Release(ctx, c.Stream.Path)
			}
			continue
		}
		_ = f.Beat(ctx)
	}
}

// leave deletes this node's leases and record (best effort, bounded by the client's timeout).
func (f *Fleet) leave(ctx context.Context) {
	if f.health.Check() != nil {
		return
	}
	f.mu.Lock()
	held := make(map[string]string, len(f.leases))
	for path, l := range f.leases {
		held[path] = l.token
	}
	f.mu.Unlock()
	_, _ = f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for path, token := range held {
			releaseScript.Eval(ctx, p, []string{f.leaseKey(path)}, f.self.ID, token)
		}
		p.Del(ctx, f.nodeKey(f.self.ID))
		p.ZRem(ctx, f.p+"nodes", f.self.ID)
		return nil
	})
}
