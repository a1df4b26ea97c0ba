package redisstate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// FeedKeys names the three Redis objects of one Feed. They must hash to one Cluster slot (give
// them the same hash tag).
type FeedKeys struct {
	Seq     string // the sequence counter
	Records string // sorted set of "<seq> <body>" by seq
	Channel string // pub/sub channel announcing a new record
}

// Feed is a durable broadcast through Redis: a record appended by any node (Append) is
// delivered once to every node's deliver function, even if the announcement was lost. Append
// writes the record into a sorted set (the last max records, kept for ttl after the latest) and
// publishes its sequence number; Run reads the records after the last one delivered on every
// announcement, after every (re)subscription — pub/sub loses messages while disconnected — and
// every poll interval. Records appended before NewFeed are not delivered. The zero Feed is not
// usable; build it with NewFeed. It starts no goroutine: Run is owned by the caller.
type Feed struct {
	rdb     redis.UniversalClient
	health  *Health
	k       FeedKeys
	max     int
	ttl     time.Duration
	poll    time.Duration
	deliver func(bodies []string)

	mu      sync.Mutex
	lastSeq int64 // -1: not read yet
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
	f := &Feed{rdb: rdb, health: h, k: k, max: max, ttl: ttl, poll: poll, deliver: deliver, lastSeq: -1}
	if n, err := rdb.Get(ctx, k.Seq).Int64(); err == nil || errors.Is(err, redis.Nil) {
		f.lastSeq = n
	}
	return f
}

// appendScript appends a record to the feed and announces it: KEYS = seq, records; ARGV = body,
// channel, max, ttl ms.
var appendScript = redis.NewScript(`
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, seq .. ' ' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[2], seq)
return seq`)

// Append queues, on c (a client, or a pipeline whose MULTI makes it atomic with other writes),
// the append of body (one line of text, e.g. JSON) and its announcement.
func (f *Feed) Append(ctx context.Context, c redis.Scripter, body string) *redis.Cmd {
	return appendScript.Eval(ctx, c, []string{f.k.Seq, f.k.Records}, body, f.k.Channel, f.max, f.ttl.Milliseconds())
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

// Poll delivers the records written since the last one delivered. Run calls it; tests may too.
func (f *Feed) Poll(ctx context.Context) error {
	f.mu.Lock()
	last := f.lastSeq
	f.mu.Unlock()
	err := f.health.Check()
	var cur int64
	var members []string
	if err == nil {
		cur, err = f.rdb.Get(ctx, f.k.Seq).Int64()
		if errors.Is(err, redis.Nil) {
			cur, err = 0, nil
		}
		if err == nil && last >= 0 && cur > last {
			members, err = f.rdb.ZRangeByScore(ctx, f.k.Records, &redis.ZRangeBy{
				Min: "(" + strconv.FormatInt(last, 10), Max: "+inf", Count: 1000}).Result()
		}
		f.health.Report(err)
	}
	if err != nil {
		return fmt.Errorf("redisstate: feed: %w", err)
	}
	var bodies []string
	next := cur
	switch {
	case last < 0 || cur < last: // first read, or Redis lost the feed (a flush): start from here
	default:
		next = last
		for _, m := range members {
			seqText, body, _ := strings.Cut(m, " ")
			seq, err := strconv.ParseInt(seqText, 10, 64)
			if err != nil {
				continue
			}
			next = max(next, seq)
			bodies = append(bodies, body)
		}
		if len(members) < 1000 {
			next = max(next, cur)
		}
	}
	f.mu.Lock()
	if f.lastSeq != last { // another Poll ran meanwhile: it delivered these
		f.mu.Unlock()
		return nil
	}
	f.lastSeq = next
	f.mu.Unlock()
	if len(bodies) > 0 && f.deliver != nil {
		f.deliver(bodies)
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
	ps := f.rdb.Subscribe(ctx, f.k.Channel)
	nudge := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			msg, err := ps.Receive(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				// go-redis reconnects on the next Receive; do not spin while Redis is away.
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			switch msg.(type) {
			case *redis.Subscription, *redis.Message: // (re)subscribed, or a new record
				select {
				case nudge <- struct{}{}:
				default:
				}
			}
		}
	}()
	defer func() { _ = ps.Close(); wg.Wait() }()
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
