package live

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz/conf"
	"gatehouse/authz/logtest"
)

var t0 = time.Date(2026, 5, 12, 13, 45, 0, 0, time.UTC)

// ev builds an event at t0+sec seconds.
func ev(typ EventType, path, source, session string, sec int) Event {
	return Event{Type: typ, Path: path, Source: source, Session: session, Time: t0.Add(time.Duration(sec) * time.Second)}
}

func withIdentity(e Event, id string) Event { e.Identity = id; return e }

// changeString renders a change compactly for comparisons.
func changeString(c Change) string {
	state := "offline"
	if c.Live {
		state = "live"
	}
	return fmt.Sprintf("%s %s %s/%s %s", state, c.Stream.Path, c.Stream.Source, c.Stream.Session, c.Reason)
}

// streamString renders what matters of a stream for comparisons.
func streamString(s Stream) string {
	return fmt.Sprintf("%s %s/%s id=%s viewers=%d started=%ds seen=%ds", s.Path, s.Source, s.Session, s.Identity,
		s.Viewers, int(s.Started.Sub(t0).Seconds()), int(s.LastSeen.Sub(t0).Seconds()))
}

// drain returns every change buffered in ch.
func drain(ch <-chan Change) []string {
	var out []string
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, changeString(c))
		default:
			return out
		}
	}
}

func TestRecordRules(t *testing.T) {
	tests := []struct {
		name        string
		events      []Event
		wantStreams []string
		wantChanges []string
	}{
		{
			name:        "published goes live",
			events:      []Event{withIdentity(ev(Published, "live/alice", "ome", "A", 0), "alice")},
			wantStreams: []string{"live/alice ome/A id=alice viewers=0 started=0s seen=0s"},
			wantChanges: []string{"live live/alice ome/A published"},
		},
		{
			name: "repeated published changes nothing but last seen and empty fields",
			events: []Event{
				ev(Published, "live/alice", "ome", "A", 0),
				withIdentity(ev(Published, "live/alice", "ome", "A", 5), "alice"),
				withIdentity(ev(Published, "live/alice", "ome", "A", 7), "mallory"),
			},
			wantStreams: []string{"live/alice ome/A id=alice viewers=0 started=0s seen=7s"},
			wantChanges: []string{"live live/alice ome/A published"},
		},
		{
			name: "unpublished by the publisher goes offline",
			events: []Event{
				ev(Published, "live/alice", "ome", "A", 0),
				ev(Unpublished, "live/alice", "ome", "A", 60),
			},
			wantChanges: []string{"live live/alice ome/A published", "offline live/alice ome/A unpublished"},
		},
		{
			name: "repeated unpublished changes nothing",
			events: []Event{
				ev(Published, "live/alice", "ome", "A", 0),
				ev(Unpublished, "live/alice", "ome", "A", 60),
				ev(Unpublished, "live/alice", "ome", "A", 61),
			},
			wantChanges: []string{"live live/alice ome/A published", "offline live/alice ome/A unpublished"},
		},
		{
			name:   "unpublished for an unknown session is ignored",
			events: []Event{ev(Unpublished, "live/alice", "ome", "X", 0)},
		},
		{
			name: "unpublished by another session does not end the stream",
			events: []Event{
				ev(Published, "live/alice", "ome", "A", 0),
				ev(Unpublished, "live/alice", "ome", "X", 1),
			},
			wantStreams: []string{"live/alice ome/A id= viewers=0 started=0s seen=0s"},
			wantChanges: []string{"live live/alice ome/A published"},
		},
		{
			name: "same session id from another source does not end the stream",
			events: []Event{
				ev(Published, "live/alice", "nginx-rtmp", "1", 0),
				ev(Unpublished, "live/alice", "srs", "1", 1),
			},
			wantStreams: []string{"live/alice nginx-rtmp/1 id= viewers=0 started=0s seen=0s"},
			wantChanges: []string{"live live/alice nginx-rtmp/1 published"},
		},
		{
			name: "publisher reconnect: old close after new open keeps the stream (OME #1909)",
			events: []Event{
				ev(Published, "live/alice", "ome", "A", 0),
				ev(Published, "live/alice", "ome", "B", 30),
				ev(Unpublished, "live/alice", "ome", "A", 31),
			},
			wantStreams: []string{"live/alice ome/B id= viewers=0 started=0s seen=30s"},
			wantChanges: []string{"live live/alice ome/A published"},
		},
		{
			name: "late duplicate open of the replaced publisher is ignored",
			events: []Event{
				ev(Published, "live/alice", "ome", "A", 0),
				ev(Published, "live/alice", "ome", "B", 30),
				ev(Published, "live/alice", "ome", "A", 31),
			},
			wantStreams: []string{"live/alice ome/B id= viewers=0 started=0s seen=30s"},
			wantChanges: []string{"live live/alice ome/A published"},
		},
		{
			name: "closing before opening: the late open is ignored",
			events: []Event{
				ev(Unpublished, "live/alice", "ome", "A", 10),
				ev(Published, "live/alice", "ome", "A", 11),
			},
		},
		{
			name: "duplicated open after close is ignored (OME 0.20 #1991)",
			events: []Event{
				ev(Published, "live/alice", "ome", "A", 0),
				ev(Unpublished, "live/alice", "ome", "A", 5),
				ev(Published, "live/alice", "ome", "A", 6),
			},
			wantChanges: []string{"live live/alice ome/A published", "offline live/alice ome/A unpublished"},
		},
		{
			name: "a new session after close goes live again",
			events: []Event{
				ev(Published, "live/alice", "ome", "A", 0),
				ev(Unpublished, "live/alice", "ome", "A", 5),
				ev(Published, "live/alice", "ome", "B", 6),
			},
			wantStreams: []string{"live/alice ome/B id= viewers=0 started=6s seen=6s"},
			wantChanges: []string{
				"live live/alice ome/A published", "offline live/alice ome/A unpublished", "live live/alice ome/B published",
			},
		},
		{
			name: "empty session ids match each other and are not remembered",
			events: []Event{
				ev(Published, "live/alice", "mediamtx", "", 0),
				ev(Unpublished, "live/alice", "mediamtx", "", 5),
				ev(Published, "live/alice", "mediamtx", "", 6),
			},
			wantStreams: []string{"live/alice mediamtx/ id= viewers=0 started=6s seen=6s"},
			wantChanges: []string{
				"live live/alice mediamtx/ published", "offline live/alice mediamtx/ unpublished",
				"live live/alice mediamtx/ published",
			},
		},
		{
			name: "joined and left are idempotent per session",
			events: []Event{
				ev(Published, "live/alice", "ome", "P", 0),
				ev(Joined, "live/alice", "ome", "v1", 1),
				ev(Joined, "live/alice", "ome", "v1", 2),
				ev(Joined, "live/alice", "sfu", "v1", 2),
				ev(Joined, "live/alice", "ome", "v2", 3),
				ev(Left, "live/alice", "ome", "v2", 4),
				ev(Left, "live/alice", "ome", "v2", 5),
				ev(Left, "live/alice", "ome", "nobody", 5),
			},
			wantStreams: []string{"live/alice ome/P id= viewers=2 started=0s seen=0s"},
			wantChanges: []string{"live live/alice ome/P published"},
		},
		{
			name: "left before joined is not counted",
			events: []Event{
				ev(Published, "live/alice", "ome", "P", 0),
				ev(Left, "live/alice", "ome", "v1", 1),
				ev(Joined, "live/alice", "ome", "v1", 2),
			},
			wantStreams: []string{"live/alice ome/P id= viewers=0 started=0s seen=0s"},
			wantChanges: []string{"live live/alice ome/P published"},
		},
		{
			name: "viewers waiting before the publisher are counted",
			events: []Event{
				ev(Joined, "live/alice", "nginx-rtmp", "4", 0),
				ev(Published, "live/alice", "nginx-rtmp", "1", 1),
			},
			wantStreams: []string{"live/alice nginx-rtmp/1 id= viewers=1 started=1s seen=1s"},
			wantChanges: []string{"live live/alice nginx-rtmp/1 published"},
		},
		{
			name: "alive refreshes the publisher",
			events: []Event{
				ev(Published, "live/alice", "nginx-rtmp", "1", 0),
				ev(Alive, "live/alice", "nginx-rtmp", "1", 30),
				ev(Alive, "live/alice", "nginx-rtmp", "1", 20), // reordered: last seen never goes back
			},
			wantStreams: []string{"live/alice nginx-rtmp/1 id= viewers=0 started=0s seen=30s"},
			wantChanges: []string{"live live/alice nginx-rtmp/1 published"},
		},
		{
			name:   "alive for an unknown session is ignored",
			events: []Event{ev(Alive, "live/alice", "nginx-rtmp", "1", 30)},
		},
		{
			name: "alive after the end is ignored",
			events: []Event{
				ev(Published, "live/alice", "nginx-rtmp", "1", 0),
				ev(Unpublished, "live/alice", "nginx-rtmp", "1", 5),
				ev(Alive, "live/alice", "nginx-rtmp", "1", 6),
			},
			wantChanges: []string{"live live/alice nginx-rtmp/1 published", "offline live/alice nginx-rtmp/1 unpublished"},
		},
		{
			name: "paths are trimmed of slashes",
			events: []Event{
				ev(Published, "/live/alice/", "sfu", "s", 0),
				ev(Unpublished, "live/alice", "sfu", "s", 1),
			},
			wantChanges: []string{"live live/alice sfu/s published", "offline live/alice sfu/s unpublished"},
		},
		{
			name: "invalid events are ignored",
			events: []Event{
				ev(0, "live/a", "ome", "A", 0),
				ev(Alive+1, "live/a", "ome", "A", 0),
				ev(Published, "", "ome", "A", 0),
				ev(Published, "/", "ome", "A", 0),
				ev(Published, "live/a", "", "A", 0),
			},
		},
		{
			name: "list is sorted by path",
			events: []Event{
				ev(Published, "live/zed", "srs", "1", 0),
				ev(Published, "live/amy", "srs", "2", 1),
				ev(Published, "b", "srs", "3", 2),
			},
			wantStreams: []string{
				"b srs/3 id= viewers=0 started=2s seen=2s",
				"live/amy srs/2 id= viewers=0 started=1s seen=1s",
				"live/zed srs/1 id= viewers=0 started=0s seen=0s",
			},
			wantChanges: []string{"live live/zed srs/1 published", "live live/amy srs/2 published", "live b srs/3 published"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry(WithClock(func() time.Time { return t0 }))
			ch, cancel := r.Subscribe()
			defer cancel()
			for _, e := range tt.events {
				r.Record(e)
			}
			var got []string
			for _, s := range r.List() {
				got = append(got, streamString(s))
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tt.wantStreams, "\n"); g != w {
				t.Errorf("streams:\ngot  %s\nwant %s", g, w)
			}
			if g, w := strings.Join(drain(ch), "\n"), strings.Join(tt.wantChanges, "\n"); g != w {
				t.Errorf("changes:\ngot  %s\nwant %s", g, w)
			}
		})
	}
}

func TestRecordZeroTimeUsesClock(t *testing.T) {
	now := t0.Add(time.Hour)
	r := NewRegistry(WithClock(func() time.Time { return now }))
	r.Record(Event{Type: Published, Path: "live/a", Source: "srs", Session: "1"})
	s, ok := r.Get("live/a")
	if !ok {
		t.Fatal("Get: not live")
	}
	if !s.Started.Equal(now) || !s.LastSeen.Equal(now) {
		t.Errorf("got started %v last seen %v, want both %v", s.Started, s.LastSeen, now)
	}
}

func TestGetReaders(t *testing.T) {
	r := NewRegistry()
	r.Record(ev(Published, "live/a", "sfu", "p", 0))
	r.Record(Event{Type: Joined, Path: "live/a", Source: "sfu", Session: "v2", Identity: "bob", Protocol: "webrtc", Remote: "192.0.2.2", Time: t0.Add(2 * time.Second)})
	r.Record(Event{Type: Joined, Path: "live/a", Source: "sfu", Session: "v1", Identity: "amy", Protocol: "webrtc", Remote: "192.0.2.1", Time: t0.Add(time.Second)})

	s, ok := r.Get("/live/a/")
	if !ok {
		t.Fatal("Get: not live")
	}
	if got, want := len(s.Readers), 2; got != want {
		t.Fatalf("got %d readers, want %d", got, want)
	}
	if got, want := s.Readers[0].Identity+","+s.Readers[1].Identity, "amy,bob"; got != want {
		t.Errorf("readers: got %s, want %s (oldest first)", got, want)
	}
	if got, want := s.Readers[0].Remote, "192.0.2.1"; got != want {
		t.Errorf("remote: got %s, want %s", got, want)
	}
	if _, ok := r.Get("live/b"); ok {
		t.Error("Get(live/b): got live, want not")
	}
	if l := r.List(); len(l) != 1 || l[0].Readers != nil {
		t.Errorf("List: got %+v, want one stream without readers", l)
	}
	r.Record(ev(Unpublished, "live/a", "sfu", "p", 3))
	if _, ok := r.Get("live/a"); ok {
		t.Error("Get after unpublish: got live, want not (viewers alone are not a stream)")
	}
}

func TestSweep(t *testing.T) {
	cfg := Config{Sources: map[string]SourceConfig{"srs": {StaleAfter: conf.Duration(10 * time.Minute)}}}
	tests := []struct {
		name        string
		cfg         Config
		events      []Event
		at          time.Duration // sweep at t0+at
		wantStreams []string
		wantChanges []string
	}{
		{
			name:        "keep-alive session kept before stale_after",
			events:      []Event{ev(Published, "a", "nginx-rtmp", "1", 0), ev(Alive, "a", "nginx-rtmp", "1", 30)},
			at:          30*time.Second + DefaultStaleAfter - time.Second,
			wantStreams: []string{"a nginx-rtmp/1 id= viewers=0 started=0s seen=30s"},
			wantChanges: []string{"live a nginx-rtmp/1 published"},
		},
		{
			name:        "keep-alive session expires after stale_after",
			events:      []Event{ev(Published, "a", "nginx-rtmp", "1", 0), ev(Alive, "a", "nginx-rtmp", "1", 30)},
			at:          30*time.Second + DefaultStaleAfter,
			wantChanges: []string{"live a nginx-rtmp/1 published", "offline a nginx-rtmp/1 expired"},
		},
		{
			name:        "silent session is not expired by stale_after",
			events:      []Event{ev(Published, "a", "ome", "A", 0)},
			at:          time.Hour,
			wantStreams: []string{"a ome/A id= viewers=0 started=0s seen=0s"},
			wantChanges: []string{"live a ome/A published"},
		},
		{
			name:        "silent session expires after silent_stale_after",
			events:      []Event{ev(Published, "a", "ome", "A", 0)},
			at:          DefaultSilentStaleAfter,
			wantChanges: []string{"live a ome/A published", "offline a ome/A expired"},
		},
		{
			name:        "configured silent_stale_after",
			cfg:         Config{SilentStaleAfter: conf.Duration(time.Hour)},
			events:      []Event{ev(Published, "a", "ome", "A", 0)},
			at:          time.Hour,
			wantChanges: []string{"live a ome/A published", "offline a ome/A expired"},
		},
		{
			name:        "per-source stale_after applies without alive",
			cfg:         cfg,
			events:      []Event{ev(Published, "a", "srs", "1", 0), ev(Published, "b", "ome", "2", 0)},
			at:          10 * time.Minute,
			wantStreams: []string{"b ome/2 id= viewers=0 started=0s seen=0s"},
			wantChanges: []string{"live a srs/1 published", "live b ome/2 published", "offline a srs/1 expired"},
		},
		{
			name:        "per-source stale_after overrides the keep-alive rule",
			cfg:         cfg,
			events:      []Event{ev(Published, "a", "srs", "1", 0), ev(Alive, "a", "srs", "1", 1)},
			at:          5 * time.Minute,
			wantStreams: []string{"a srs/1 id= viewers=0 started=0s seen=1s"},
			wantChanges: []string{"live a srs/1 published"},
		},
		{
			name: "stale viewers are removed",
			events: []Event{
				ev(Published, "a", "nginx-rtmp", "1", 0), ev(Alive, "a", "nginx-rtmp", "1", 200),
				ev(Joined, "a", "nginx-rtmp", "2", 0), ev(Alive, "a", "nginx-rtmp", "2", 1),
				ev(Joined, "a", "nginx-rtmp", "3", 0), ev(Alive, "a", "nginx-rtmp", "3", 100),
			},
			at:          200 * time.Second,
			wantStreams: []string{"a nginx-rtmp/1 id= viewers=1 started=0s seen=200s"},
			wantChanges: []string{"live a nginx-rtmp/1 published"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry(WithConfig(tt.cfg))
			ch, cancel := r.Subscribe()
			defer cancel()
			for _, e := range tt.events {
				r.Record(e)
			}
			r.Sweep(t0.Add(tt.at))
			var got []string
			for _, s := range r.List() {
				got = append(got, streamString(s))
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tt.wantStreams, "\n"); g != w {
				t.Errorf("streams:\ngot  %s\nwant %s", g, w)
			}
			if g, w := strings.Join(drain(ch), "\n"), strings.Join(tt.wantChanges, "\n"); g != w {
				t.Errorf("changes:\ngot  %s\nwant %s", g, w)
			}
		})
	}
}

func TestSweepForgetsEndedSessions(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		at       time.Duration
		wantLive bool
	}{
		{name: "inside the reorder window the late open is ignored", at: DefaultReorderWindow - time.Second},
		{name: "after the reorder window the session may start again", at: DefaultReorderWindow, wantLive: true},
		{name: "configured reorder window", cfg: Config{ReorderWindow: conf.Duration(5 * time.Minute)}, at: 4 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry(WithConfig(tt.cfg))
			r.Record(ev(Unpublished, "a", "nginx-rtmp", "1", 0))
			r.Sweep(t0.Add(tt.at))
			r.Record(Event{Type: Published, Path: "a", Source: "nginx-rtmp", Session: "1", Time: t0.Add(tt.at)})
			if _, got := r.Get("a"); got != tt.wantLive {
				t.Errorf("live: got %v, want %v", got, tt.wantLive)
			}
		})
	}
}

func TestSubscribe(t *testing.T) {
	t.Run("every subscriber gets every change in order", func(t *testing.T) {
		r := NewRegistry()
		a, cancelA := r.Subscribe()
		defer cancelA()
		b, cancelB := r.Subscribe()
		defer cancelB()
		r.Record(ev(Published, "x", "srs", "1", 0))
		r.Record(ev(Unpublished, "x", "srs", "1", 1))
		want := "live x srs/1 published,offline x srs/1 unpublished"
		if got := strings.Join(drain(a), ","); got != want {
			t.Errorf("a: got %s, want %s", got, want)
		}
		if got := strings.Join(drain(b), ","); got != want {
			t.Errorf("b: got %s, want %s", got, want)
		}
	})
	t.Run("cancel closes the channel and is idempotent", func(t *testing.T) {
		r := NewRegistry()
		ch, cancel := r.Subscribe()
		cancel()
		cancel()
		r.Record(ev(Published, "x", "srs", "1", 0)) // must not send on the closed channel
		if _, ok := <-ch; ok {
			t.Error("receive after cancel: got a value, want closed channel")
		}
	})
	t.Run("a full subscriber drops and counts without blocking Record", func(t *testing.T) {
		r := NewRegistry(WithSubscriberBuffer(1))
		slow, cancelSlow := r.Subscribe()
		defer cancelSlow()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 3 {
				r.Record(ev(Published, "x", "srs", fmt.Sprint(i), 3*i))
				r.Record(ev(Unpublished, "x", "srs", fmt.Sprint(i), 3*i+1))
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Record blocked on a full subscriber")
		}
		if got, want := len(drain(slow)), 1; got != want {
			t.Errorf("delivered: got %d, want %d", got, want)
		}
		if got, want := r.Dropped(), uint64(5); got != want {
			t.Errorf("Dropped: got %d, want %d", got, want)
		}
	})
}

func TestRun(t *testing.T) {
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := NewRegistry(WithClock(clock), WithConfig(Config{SweepInterval: conf.Duration(time.Millisecond)}))
	ch, cancelSub := r.Subscribe()
	defer cancelSub()
	r.Record(ev(Published, "a", "ome", "A", 0))
	if c := <-ch; !c.Live {
		t.Fatalf("first change: got %s, want live", changeString(c))
	}
	mu.Lock()
	now = t0.Add(DefaultSilentStaleAfter) // jump the clock instead of sleeping
	mu.Unlock()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	select {
	case c := <-ch:
		if got, want := changeString(c), "offline a ome/A expired"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not sweep")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestConcurrentUse(t *testing.T) {
	r := NewRegistry(WithSubscriberBuffer(4))
	ch, cancel := r.Subscribe()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range ch { // drain until cancel closes it
		}
	})
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := range 500 {
				p := fmt.Sprintf("p%d", i%7)
				s := fmt.Sprint(w)
				r.Record(Event{Type: Published, Path: p, Source: "srs", Session: s})
				r.Record(Event{Type: Joined, Path: p, Source: "srs", Session: s + "v"})
				r.Record(Event{Type: Alive, Path: p, Source: "srs", Session: s})
				_ = r.List()
				_, _ = r.Get(p)
				r.Record(Event{Type: Left, Path: p, Source: "srs", Session: s + "v"})
				r.Record(Event{Type: Unpublished, Path: p, Source: "srs", Session: s})
				if i%100 == 0 {
					r.Sweep(time.Now())
				}
			}
		})
	}
	writers.Wait()
	cancel()
	wg.Wait()
}

func TestConfigDecode(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    Config
		wantErr string
	}{
		{
			name: "full",
			src: "live:\n  sweep_interval: 10s\n  stale_after: 90s\n  silent_stale_after: 48h\n  reorder_window: 2m\n" +
				"  sources:\n    srs:\n      stale_after: 1h\n  max_viewers: 500\n",
			want: Config{
				SweepInterval: conf.Duration(10 * time.Second), StaleAfter: conf.Duration(90 * time.Second),
				SilentStaleAfter: conf.Duration(48 * time.Hour), ReorderWindow: conf.Duration(2 * time.Minute),
				Sources:    map[string]SourceConfig{"srs": {StaleAfter: conf.Duration(time.Hour)}},
				MaxViewers: 500,
			},
		},
		{name: "unknown key", src: "live:\n  stale: 1m\n", wantErr: `x.yml:2: live.stale: unknown key "stale"`},
		{name: "negative max_viewers", src: "live:\n  stale_after: 1m\n  max_viewers: -1\n", wantErr: "x.yml:3:"},
		{name: "bad duration", src: "live:\n  sources:\n    ome: {stale_after: soon}\n", wantErr: "x.yml:3:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct {
				Live Config `yaml:"live"`
			}
			err := conf.Decode("x.yml", []byte(tt.src), nil, &v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprint(v.Live), fmt.Sprint(tt.want); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

// TestMaxViewers: viewer sessions are bounded (they come from anonymous or cheap requests);
// publishers never are, and a full registry is reported once per sweep, not per event.
func TestMaxViewers(t *testing.T) {
	t.Run("default bound", func(t *testing.T) {
		r := NewRegistry()
		for i := range DefaultMaxViewers + 2_000 {
			r.Record(withIdentity(ev(Joined, "live/cam", "forward-auth", fmt.Sprintf("s%d", i), 1), fmt.Sprintf("u%d", i)))
		}
		if got := r.Viewers(); got != DefaultMaxViewers {
			t.Errorf("got %d viewer sessions, want the default bound %d", got, DefaultMaxViewers)
		}
	})

	var logs logtest.Buffer
	r := NewRegistry(WithConfig(Config{MaxViewers: 3}), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for i := range 10 { // viewers on many paths, most of them offline
		r.Record(ev(Joined, fmt.Sprintf("p%d", i), "forward-auth", fmt.Sprintf("s%d", i), 1))
	}
	if got := r.Viewers(); got != 3 {
		t.Fatalf("got %d viewer sessions, want 3", got)
	}
	r.Record(ev(Published, "p9", "nginx-rtmp", "pub", 2))
	r.Record(ev(Published, "live/new", "nginx-rtmp", "pub2", 2))
	if _, ok := r.Get("live/new"); !ok {
		t.Error("a publisher was not recorded because the viewers are full")
	}
	if st, ok := r.Get("p9"); !ok || st.Viewers != 0 {
		t.Errorf("got %+v %v, want p9 live without the refused viewer", st, ok)
	}
	r.Record(ev(Joined, "p0", "forward-auth", "s0", 3)) // a known session is refreshed, not refused
	if got := r.Viewers(); got != 3 {
		t.Errorf("after a refresh: got %d viewer sessions, want 3", got)
	}
	r.Record(ev(Left, "p0", "forward-auth", "s0", 4))
	r.Record(ev(Left, "p0", "forward-auth", "s0", 4)) // idempotent: counted once
	r.Record(ev(Joined, "p9", "forward-auth", "late", 5))
	if st, _ := r.Get("p9"); st.Viewers != 1 || r.Viewers() != 3 {
		t.Errorf("after one left: got p9 viewers %d, total %d; want 1 and 3", st.Viewers, r.Viewers())
	}

	r.Sweep(t0.Add(10 * time.Second))
	r.Sweep(t0.Add(20 * time.Second))
	if got := strings.Count(logs.String(), "registry is full"); got != 1 {
		t.Errorf("got %d warnings for one burst, want 1: %s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "not_recorded=7") {
		t.Errorf("warning %q does not count the 7 viewers not recorded", logs.String())
	}
	r.Sweep(t0.Add(DefaultSilentStaleAfter + time.Hour)) // every viewer expires
	if got := r.Viewers(); got != 0 {
		t.Errorf("after expiry: got %d viewer sessions, want 0", got)
	}
}

// TestSessionsCarryKey: every session the registry lists (publishers and viewers) names the
// stream key that admitted it, so a revocation finds it; NoteKick shows what its kick did.
func TestSessionsCarryKey(t *testing.T) {
	reg := NewRegistry()
	reg.Record(Event{Type: Published, Path: "live/alice", Source: "srs", Session: "p1", Identity: "alice", KeyID: "key_a", KeyLabel: "OBS"})
	reg.Record(Event{Type: Joined, Path: "live/alice", Source: "sfu", Session: "v1", KeyID: "key_v"})
	got := reg.Sessions()
	slices.SortFunc(got, func(a, b Session) int { return strings.Compare(a.ID, b.ID) })
	want := []Session{
		{Source: "srs", ID: "p1", Path: "live/alice", Identity: "alice", KeyID: "key_a", KeyLabel: "OBS", Publish: true},
		{Source: "sfu", ID: "v1", Path: "live/alice", KeyID: "key_v"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	reg.NoteKick("srs", "p1", "pending")
	reg.NoteKick("sfu", "v1", "done")
	st, _ := reg.Get("live/alice")
	if st.Kick != "pending" || st.KeyID != "key_a" || st.KeyLabel != "OBS" || len(st.Readers) != 1 || st.Readers[0].Kick != "done" {
		t.Errorf("got %+v, want kick pending, key key_a/OBS, one reader kicked done", st)
	}
}
