package redisstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// FeedKeys names the Redis objects of one Feed. They must hash to one Cluster slot (give them the
// same hash tag).
type FeedKeys struct {
	Seq     string // the sequence counter
	Records string // sorted set of "<seq> <body>" by seq
	Channel string // pub/sub channel announcing a new record
	Epoch   string // the feed's random id, written by the first append ("": Seq + ":epoch")
}

// maxRead bounds the records one Poll reads.
const maxRead = 1000

// Feed is a durable broadcast through Redis: a record appended by any node (Append) is
// delivered once to every node's deliver function, even if the announcement was lost. Append
// writes the record into a sorted set (the last max records, kept for ttl after the latest) and
// publishes its sequence number; Run reads the records after the last one delivered on every
// announcement, after every (re)subscription — pub/sub loses messages while disconnected — and
// every poll interval. Records appended before NewFeed are not delivered.
//
// Redis may lose the feed's last writes (a restart without persistence, appendfsync everysec
// after a crash, an asynchronous failover) or all of it (a flush, a new server): the sequence
// then goes back, or the epoch (a random id the first append writes next to it) changes. Poll
// then reads every record kept again and delivers it (a record may be delivered twice: deliver
// must be idempotent). Records that can no longer be read — lost with the epoch, trimmed (more
// than max since the last Poll) or expired — are a gap: Poll calls the functions given to OnGap
// so that their owner re-decides what the lost records would have told it (RecheckAll).
//
// The zero Feed is not usable; build it with NewFeed. It starts no goroutine: Run is owned by the
// caller.
type Feed struct {
	rdb     redis.UniversalClient
	health  *Health
	k       FeedKeys
	max     int
	ttl     time.Duration
	poll    time.Duration
	deliver func(bodies []string)

	mu      sync.Mutex
	lastSeq int64  // -1: not read yet
	epoch   string // the epoch lastSeq belongs to ("": none written yet)
	onGap   []func()
}

// NewFeed returns a feed over rdb keeping the last max records for ttl after the latest,
// delivering new ones in order to deliver (called from Poll's goroutine), re-reading every poll
// (<= 0: 2 s). It reads the current sequence once (when Redis is unreachable, at the first
// successful read instead).
func NewFeed(ctx context.Context, rdb redis.UniversalClient, h *Health, k FeedKeys, max int, ttl, poll time.Duration, deliver func(bodies []string)) *Feed {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	if h == nil {
		h = NewHealth(0, nil)
	}
	if k.Epoch == "" {
		k.Epoch = k.Seq + ":epoch"
	}
	f := &Feed{rdb: rdb, health: h, k: k, max: max, ttl: ttl, poll: poll, deliver: deliver, lastSeq: -1}
	if cur, epoch, err := f.read(ctx); err == nil {
		f.lastSeq, f.epoch = cur, epoch
	}
	return f
}

// OnGap registers fn to be called, from Poll's goroutine, when records were lost before this
// node could read them (see Feed).
func (f *Feed) OnGap(fn func()) {
	f.mu.Lock()
	f.onGap = append(f.onGap, fn)
	f.mu.Unlock()
}

// read returns the current sequence and epoch.
func (f *Feed) read(ctx context.Context) (int64, string, error) {
	vals, err := f.rdb.MGet(ctx, f.k.Seq, f.k.Epoch).Result()
	if err != nil {
		return 0, "", err
	}
	var cur int64
	if s, ok := vals[0].(string); ok {
		if cur, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, "", fmt.Errorf("redisstate: feed sequence: %w", err)
		}
	}
	epoch, _ := vals[1].(string)
	return cur, epoch, nil
}

// newEpoch returns a random feed id.
func newEpoch() string { return newInstanceID() }

// appendScript appends a record to the feed and announces it: KEYS = seq, records, epoch; ARGV =
// body, channel, max, ttl ms, a new epoch (written only if the feed has none).
var appendScript = redis.NewScript(`
redis.call('SET', KEYS[3], ARGV[5], 'NX')
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, seq .. ' ' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[2], seq)
return seq`)

// Append queues, on c (a client, or a pipeline whose MULTI makes it atomic with other writes),
// the append of body (one line of text, e.g. JSON) and its announcement.
func (f *Feed) Append(ctx context.Context, c redis.Scripter, body string) *redis.Cmd {
	return appendScript.Eval(ctx, c, []string{f.k.Seq, f.k.Records, f.k.Epoch}, body, f.k.Channel, f.max, f.ttl.Milliseconds(), newEpoch())
}

// Publish appends body on the client itself, under the health check, and reports the outcome.
func (f *Feed) Publish(ctx context.Context, body string) error {
	if err := f.health.Check(); err != nil {
		return err
	}
	err := f.Append(ctx, f.rdb, body).Err()
	f.health.Report(err)
	return err
}

// Poll delivers the records written since the last one delivered (all those kept, after the
// feed went back; see Feed). Run calls it; tests may too.
func (f *Feed) Poll(ctx context.Context) error {
	f.mu.Lock()
	last, lastEpoch := f.lastSeq, f.epoch
	f.mu.Unlock()
	err := f.health.Check()
	var cur int64
	var epoch string
	var members []string
	reread := false
	if err == nil {
		cur, epoch, err = f.read(ctx)
		// An epoch that appears is the first append (or the first since an upgrade), not a change.
		reread = last >= 0 && ((lastEpoch != "" && epoch != lastEpoch) || cur < last)
		switch {
		case err != nil:
		case reread:
			members, err = f.rdb.ZRangeByScore(ctx, f.k.Records, &redis.ZRangeBy{Min: "-inf", Max: "+inf", Count: maxRead}).Result()
		case last >= 0 && cur > last:
			members, err = f.rdb.ZRangeByScore(ctx, f.k.Records, &redis.ZRangeBy{
				Min: "(" + strconv.FormatInt(last, 10), Max: "+inf", Count: maxRead}).Result()
		}
		f.health.Report(err)
	}
	if err != nil {
		return fmt.Errorf("redisstate: feed: %w", err)
	}
	var bodies []string
	next := cur
	// A gap: the epoch changed under records this node may not have read (a flush, a new
	// server), the sequence went back (the lost writes may hold records never read here), or
	// the first record kept after the last one read is not the next (trimmed or expired).
	gap := reread
	if last >= 0 {
		expect := last + 1
		if reread {
			expect = 1
		}
		first := true
		next = last
		if reread {
			next = 0
		}
		for _, m := range members {
			seqText, body, _ := strings.Cut(m, " ")
			seq, err := strconv.ParseInt(seqText, 10, 64)
			if err != nil {
				continue
			}
			if first && seq > expect && !reread {
				gap = true
			}
			first = false
			next = max(next, seq)
			bodies = append(bodies, body)
		}
		if len(members) == 0 && cur > last && !reread {
			gap = true // records announced but none kept
		}
		if len(members) < maxRead {
			next = max(next, cur)
		}
	}
	f.mu.Lock()
	if f.lastSeq != last || f.epoch != lastEpoch { // another Poll ran meanwhile: it delivered these
		f.mu.Unlock()
		return nil
	}
	f.lastSeq, f.epoch = next, epoch
	gapFns := slices.Clone(f.onGap)
	f.mu.Unlock()
	if len(bodies) > 0 && f.deliver != nil {
		f.deliver(bodies)
	}
	if gap {
		for _, fn := range gapFns {
			fn()
		}
	}
	return nil
}

// Run listens for announcements until ctx ends, polling on each, after each (re)subscription
// and every poll interval. It owns one goroutine that receives from the pub/sub connection
// (go-redis reconnects it), stopped before Run returns. Errors go to report (nil: dropped);
// ErrUnavailable from a timed poll is not reported (Health already says so).
func (f *Feed) Run(ctx context.Context, report func(error)) {
	if report == nil {
		report = func(error) {}
	}
	nudge := make(chan struct{}, 1)
	stop := listen(ctx, f.rdb, f.k.Channel, func(string, bool) { // (re)subscribed, or a new record
		select {
		case nudge <- struct{}{}:
		default:
		}
	})
	defer stop()
	poll := time.NewTicker(f.poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-nudge:
			if err := f.Poll(ctx); err != nil && ctx.Err() == nil {
				report(err)
			}
		case <-poll.C:
			if err := f.Poll(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrUnavailable) {
				report(err)
			}
		}
	}
}
