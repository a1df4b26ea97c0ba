package redisstate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz/live"
)

// Bounds of the fleet's stream lists.
const (
	// MaxStreamsPerNode bounds the streams a node writes, and reads from any one other node
	// (a larger list is skipped whole, with a warning).
	MaxStreamsPerNode = 10_000
	// MaxRemoteStreams bounds the other nodes' streams held, over all nodes; beyond it the
	// remaining nodes' lists are left out until the next read.
	MaxRemoteStreams = 50_000
	// maxStreamRecord bounds one stream's record as read (a path is at most authz.MaxPathLen).
	maxStreamRecord = 8 << 10
	// streamsGap is the least time between two writes, and between two reads, of the lists
	// (at most four per second, however fast streams start and end).
	streamsGap = 250 * time.Millisecond
)

// LocalStreams lists this node's live streams; *live.Registry implements it.
type LocalStreams interface {
	Local() []live.Stream
}

// RemoteStreams takes the other nodes' live streams; *live.Registry implements it.
type RemoteStreams interface {
	SetRemote(streams []live.Stream, t time.Time)
}

// streamRecord is one stream as the fleet sees it: the public view, the stream key's id and
// label (never its secret); no session id, client address or last-seen time (which would make
// every keep-alive a change).
type streamRecord struct {
	Source   string    `json:"source"`
	Identity string    `json:"identity,omitempty"`
	Protocol string    `json:"protocol,omitempty"`
	KeyID    string    `json:"key_id,omitempty"`
	KeyLabel string    `json:"key_label,omitempty"`
	Started  time.Time `json:"started"`
	Viewers  int       `json:"viewers"`
}

// Streams shares the live streams of the fleet's nodes: each node writes its own (LocalStreams)
// and shows the others' (RemoteStreams), so every node lists every live stream of the fleet.
//
// Layout (P is the key prefix):
//
//	P{n}:streams:<id>  hash: path → JSON record of node id's live stream, expiring after the
//	                   node TTL
//	P{n}:streamed      pub/sub channel: a node id whose list changed
//
// A node rewrites its hash when its registry changes (at most four times a second) and at
// every heartbeat (renewing the TTL), and announces a list that changed. The others read every
// live node's hash (the fleet's node set) on an announcement, at every heartbeat and after
// each (re)subscription, so a change shows within about a second, and one lost while the
// pub/sub connection was down at the next heartbeat. A node that stops cleanly deletes its
// hash; one that crashes or is cut off stops renewing it, and its streams leave the other
// nodes' lists when it expires. While Redis is away, this node keeps showing what it last read
// for one TTL, then only its own streams. Reads are bounded (MaxStreamsPerNode,
// MaxRemoteStreams, a record's size).
//
// Build it with Fleet.Streams; Run (owned by the caller) does the work until its context ends.
type Streams struct {
	f     *Fleet
	local LocalStreams
	sink  RemoteStreams
	pull  chan struct{} // read the others' lists
	push  chan struct{} // rewrite this node's list

	mu      sync.Mutex
	written string    // the list last written (JSON of the fields), to announce changes only
	lastOK  time.Time // the last successful read
	held    bool      // the sink holds other nodes' streams
}

// Streams returns the sharing of live streams for this node: its own listed by local, the
// others' given to sink.
func (f *Fleet) Streams(local LocalStreams, sink RemoteStreams) *Streams {
	s := &Streams{f: f, local: local, sink: sink, pull: make(chan struct{}, 1), push: make(chan struct{}, 1)}
	f.health.OnUp(func() { signal(s.pull); signal(s.push) })
	return s
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *Streams) key(id string) string { return s.f.p + "streams:" + id }
func (s *Streams) channel() string      { return s.f.p + "streamed" }

// Publish rewrites this node's list (renewing its TTL) and announces it when it changed. It
// fails at once while Redis is away.
func (s *Streams) Publish(ctx context.Context) error {
	f := s.f
	if err := f.health.Check(); err != nil {
		return err
	}
	list := s.local.Local()
	if len(list) > MaxStreamsPerNode {
		list = list[:MaxStreamsPerNode]
	}
	fields := make([]any, 0, 2*len(list))
	for _, st := range list {
		raw, err := json.Marshal(streamRecord{Source: st.Source, Identity: st.Identity, Protocol: st.Protocol,
			KeyID: st.KeyID, KeyLabel: st.KeyLabel, Started: st.Started, Viewers: st.Viewers})
		if err != nil {
			continue
		}
		fields = append(fields, st.Path, string(raw))
	}
	sum, _ := json.Marshal(fields)
	s.mu.Lock()
	changed := string(sum) != s.written
	s.mu.Unlock()
	key := s.key(f.self.ID)
	_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		if len(fields) > 0 {
			p.HSet(ctx, key, fields...)
			p.PExpire(ctx, key, f.ttl)
		}
		if changed {
			p.Publish(ctx, s.channel(), f.self.ID)
		}
		return nil
	})
	f.health.Report(err)
	if err != nil {
		return fmt.Errorf("redisstate: write streams: %w", err)
	}
	s.mu.Lock()
	s.written = string(sum)
	s.mu.Unlock()
	return nil
}

// Pull reads the other live nodes' lists and gives them to the sink. While Redis is away it
// fails, and the sink is emptied once the last successful read is one TTL old.
func (s *Streams) Pull(ctx context.Context) error {
	err := s.pullOnce(ctx)
	if err != nil {
		s.mu.Lock()
		stale := s.held && s.f.now().Sub(s.lastOK) >= s.f.ttl
		if stale {
			s.held = false
		}
		s.mu.Unlock()
		if stale {
			s.sink.SetRemote(nil, s.f.now())
		}
	}
	return err
}

func (s *Streams) pullOnce(ctx context.Context) error {
	f := s.f
	if err := f.health.Check(); err != nil {
		return err
	}
	now := f.now()
	ids, err := f.rdb.ZRangeByScore(ctx, f.p+"nodes", &redis.ZRangeBy{Min: strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf"}).Result()
	f.health.Report(err)
	if err != nil {
		return fmt.Errorf("redisstate: read streams: %w", err)
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == f.self.ID })
	lens := make([]*redis.IntCmd, len(ids))
	if len(ids) > 0 {
		_, err = f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				lens[i] = p.HLen(ctx, s.key(id))
			}
			return nil
		})
		f.health.Report(err)
		if err != nil {
			return fmt.Errorf("redisstate: read streams: %w", err)
		}
	}
	var read []string
	total := 0
	for i, id := range ids {
		n := int(lens[i].Val())
		switch {
		case n == 0:
		case n > MaxStreamsPerNode:
			f.log.Warn("fleet: a node's stream list is too long, not shown", "node", id, "streams", n, "max", MaxStreamsPerNode)
		case total+n > MaxRemoteStreams:
			f.log.Warn("fleet: too many streams on the other nodes, some not shown", "node", id, "max", MaxRemoteStreams)
		default:
			total += n
			read = append(read, id)
		}
	}
	gets := make([]*redis.MapStringStringCmd, len(read))
	if len(read) > 0 {
		_, err = f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range read {
				gets[i] = p.HGetAll(ctx, s.key(id))
			}
			return nil
		})
		f.health.Report(err)
		if err != nil {
			return fmt.Errorf("redisstate: read streams: %w", err)
		}
	}
	out := make([]live.Stream, 0, total)
	for i, id := range read {
		kept := 0
		for path, raw := range gets[i].Val() {
			var r streamRecord
			if kept >= MaxStreamsPerNode || len(raw) > maxStreamRecord || len(path) > maxStreamRecord ||
				json.Unmarshal([]byte(raw), &r) != nil {
				continue
			}
			kept++
			out = append(out, live.Stream{Path: path, Node: id, Source: r.Source, Identity: r.Identity, Protocol: r.Protocol,
				KeyID: r.KeyID, KeyLabel: r.KeyLabel, Started: r.Started, Viewers: r.Viewers})
		}
	}
	// Two nodes listing one path (two publishers after a partition): the lower node id's, on
	// every node alike.
	slices.SortFunc(out, func(a, b live.Stream) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	s.sink.SetRemote(out, now)
	s.mu.Lock()
	s.lastOK, s.held = now, true
	s.mu.Unlock()
	return nil
}

// Run shares the lists until ctx ends: this node's is rewritten when changes (the registry's
// local changes; may be nil) says a path went live or offline (at most four times a second)
// and at every heartbeat; the others' are read on their announcements (at most four times a
// second), after each (re)subscription and at every heartbeat. It owns one goroutine receiving
// announcements (go-redis reconnects it), stopped before Run returns. When ctx ends it deletes
// this node's list and announces it (a clean stop takes its streams off the others' lists at
// once).
func (s *Streams) Run(ctx context.Context, changes <-chan live.Change) {
	f := s.f
	stop := listen(ctx, f.rdb, s.channel(), func(payload string, resubscribed bool) {
		if resubscribed || payload != f.self.ID { // (re)subscribed: announcements may have been missed
			signal(s.pull)
		}
	})
	defer stop()
	t := time.NewTicker(f.beat)
	defer t.Stop()
	_ = s.Publish(ctx)
	_ = s.Pull(ctx)
	var pushAt, pullAt <-chan time.Time // a write or read waiting for the gap since the last one
	var lastPush, lastPull time.Time
	for {
		select {
		case <-ctx.Done():
			s.leave(context.WithoutCancel(ctx))
			return
		case <-t.C:
			_ = s.Publish(ctx)
			_ = s.Pull(ctx)
			lastPush, lastPull = time.Now(), time.Now()
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			signal(s.push)
		case <-s.push:
			if pushAt == nil {
				pushAt = time.After(max(0, streamsGap-time.Since(lastPush)))
			}
		case <-s.pull:
			if pullAt == nil {
				pullAt = time.After(max(0, streamsGap-time.Since(lastPull)))
			}
		case <-pushAt:
			pushAt, lastPush = nil, time.Now()
			_ = s.Publish(ctx)
		case <-pullAt:
			pullAt, lastPull = nil, time.Now()
			_ = s.Pull(ctx)
		}
	}
}

// leave deletes this node's list and announces it (best effort, bounded by the client's
// timeout).
func (s *Streams) leave(ctx context.Context) {
	f := s.f
	if f.health.Check() != nil {
		return
	}
	_, _ = f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.key(f.self.ID))
		p.Publish(ctx, s.channel(), f.self.ID)
		return nil
	})
}
