package sfu

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fakeWriter records what a viewer's writer goroutine sends; block (if set) stalls every write
// until it is closed, like a viewer whose socket never drains.
type fakeWriter struct {
	block chan struct{}
	mu    sync.Mutex
	hdrs  []rtp.Header
	pays  [][]byte
}

func (w *fakeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.block != nil {
		<-w.block
	}
	w.mu.Lock()
	w.hdrs = append(w.hdrs, *h)
	w.pays = append(w.pays, payload)
	w.mu.Unlock()
	return len(payload), nil
}

func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *fakeWriter) sent() ([]rtp.Header, [][]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]rtp.Header(nil), w.hdrs...), append([][]byte(nil), w.pays...)
}

// fakeContext is the webrtc.TrackLocalContext pion would pass to Bind.
type fakeContext struct {
	codecs []webrtc.RTPCodecParameters
	ssrc   webrtc.SSRC
	w      *fakeWriter
}

func (c fakeContext) CodecParameters() []webrtc.RTPCodecParameters { return c.codecs }
func (c fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter {
	return nil
}
func (c fakeContext) SSRC() webrtc.SSRC                       { return c.ssrc }
func (c fakeContext) SSRCRetransmission() webrtc.SSRC         { return 0 }
func (c fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC { return 0 }
func (c fakeContext) WriteStream() webrtc.TrackLocalWriter    { return c.w }
func (c fakeContext) ID() string                              { return "ctx" }
func (c fakeContext) RTCPReader() interceptor.RTCPReader      { return nil }

var vp8 = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
	PayloadType:        96,
}

// testUp returns a video publisher track without a PeerConnection; plis counts keyframe requests.
func testUp(sl *slot, plis *atomic.Int64) *upTrack {
	u := &upTrack{slot: sl, codec: vp8, isKey: isVP8Keyframe, pli: func() { plis.Add(1) }, now: time.Now, after: realAfter}
	sl.setSource(u)
	return u
}

// vp8Packet marshals a VP8 RTP packet; the payload's bytes 2..3 carry n.
func vp8Packet(t *testing.T, seq uint16, ts uint32, key bool, n uint16) []byte {
	t.Helper()
	payload := []byte{0x10, 0x01, byte(n >> 8), byte(n), 0, 0}
	if key {
		payload[1] = 0
	}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 120, SequenceNumber: seq, Timestamp: ts, SSRC: 1234}, Payload: payload}
	if err := p.SetExtension(3, []byte{1}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testDown binds a viewer track with its writer goroutine to sl.
func testDown(t *testing.T, sl *slot, w *fakeWriter, queue int, ssrc webrtc.SSRC, pt webrtc.PayloadType) *downTrack {
	t.Helper()
	d := newDownTrack(sl, vp8, "video", "test", queue)
	c := vp8
	c.PayloadType = pt
	got, err := d.Bind(fakeContext{codecs: []webrtc.RTPCodecParameters{c}, ssrc: ssrc, w: w})
	if err != nil || got.PayloadType != pt {
		t.Fatalf("Bind: got %v, %v; want payload type %d", got.PayloadType, err, pt)
	}
	addDown(sl, d)
	d.activate()
	var wg sync.WaitGroup
	wg.Go(d.run)
	t.Cleanup(func() { d.stop(); wg.Wait() })
	return d
}

func TestStalledViewerDoesNotDelayOthers(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	const queue = 32
	fast1, fast2 := &fakeWriter{}, &fakeWriter{}
	slow := &fakeWriter{block: make(chan struct{})}
	testDown(t, sl, fast1, queue, 1001, 100)
	dSlow := testDown(t, sl, slow, queue, 1002, 101)
	testDown(t, sl, fast2, queue, 1003, 102)

	const total = 640
	seq0 := uint16(65500) // wraps during the test
	pushed := 0
	push := func(n int) {
		for range n {
			key := pushed%100 == 0
			u.handle(vp8Packet(t, seq0+uint16(pushed), uint32(pushed)*3000, key, uint16(pushed)))
			pushed++
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for pushed < total {
			push(queue / 2) // the fast viewers drain between batches
			eventually(t, 10*time.Second, "fast viewers to drain", func() bool {
				a, _ := fast1.sent()
				b, _ := fast2.sent()
				return len(a) == pushed && len(b) == pushed
			})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the publisher's reader was stalled by a viewer")
	}
	for i, w := range []*fakeWriter{fast1, fast2} {
		hdrs, _ := w.sent()
		if len(hdrs) != total {
			t.Fatalf("fast viewer %d: got %d packets, want %d", i, len(hdrs), total)
		}
		for j, h := range hdrs {
			if h.SequenceNumber != seq0+uint16(j) || h.SSRC != uint32(1001+2*i) || h.PayloadType != uint8(100+2*i) {
				t.Fatalf("fast viewer %d packet %d: got seq %d ssrc %d pt %d", i, j, h.SequenceNumber, h.SSRC, h.PayloadType)
			}
			if h.Extension || len(h.Extensions) != 0 {
				t.Fatalf("fast viewer %d packet %d: header extensions were forwarded", i, j)
			}
		}
	}
	if dSlow.queueFull.Load() == 0 {
		t.Error("the stalled viewer dropped nothing; its queue is not bounded")
	}
	if plis.Load() == 0 {
		t.Error("no keyframe request after the stalled viewer's queue overflowed")
	}

	// Unblock the slow viewer: it delivers what was queued, then skips to the next keyframe
	// with no sequence gap.
	close(slow.block)
	for range 10 { // packets 640..789; 700 is a keyframe
		eventually(t, 10*time.Second, "the slow viewer's queue to drain", func() bool { return len(dSlow.queue) == 0 })
		push(15)
	}
	eventually(t, 10*time.Second, "the slow viewer to resume", func() bool {
		_, p := slow.sent()
		return len(p) > 0 && int(p[len(p)-1][2])<<8|int(p[len(p)-1][3]) == pushed-1
	})
	hdrs, pays := slow.sent()
	for j := 1; j < len(hdrs); j++ {
		if hdrs[j].SequenceNumber != hdrs[j-1].SequenceNumber+1 {
			t.Fatalf("slow viewer: seq jumps %d -> %d at %d", hdrs[j-1].SequenceNumber, hdrs[j].SequenceNumber, j)
		}
	}
	resumed := -1
	for j := 1; j < len(pays); j++ {
		prev, cur := int(pays[j-1][2])<<8|int(pays[j-1][3]), int(pays[j][2])<<8|int(pays[j][3])
		if cur != prev+1 {
			resumed = j
			break
		}
	}
	if resumed < 0 {
		t.Fatal("slow viewer: no skipped run after the overflow")
	}
	if !isVP8Keyframe(pays[resumed]) {
		t.Errorf("slow viewer resumed at a non-keyframe (packet %d)", int(pays[resumed][2])<<8|int(pays[resumed][3]))
	}
}

func TestNACKServedFromSharedCache(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	w1, w2 := &fakeWriter{}, &fakeWriter{}
	d1 := testDown(t, sl, w1, 64, 1, 96)
	testDown(t, sl, w2, 64, 2, 97)
	for i := range 20 {
		u.handle(vp8Packet(t, uint16(1000+i), uint32(i)*3000, i == 0, uint16(i)))
	}
	eventually(t, 5*time.Second, "delivery", func() bool { h, _ := w1.sent(); return len(h) == 20 })
	d1.nack([]uint16{1005, 1007, 999, 2000}) // two cached, one before the mapping, one never sent
	eventually(t, 5*time.Second, "retransmissions", func() bool { h, _ := w1.sent(); return len(h) == 22 })
	time.Sleep(50 * time.Millisecond) // give a wrong extra retransmission the chance to show
	hdrs, pays := w1.sent()
	if len(hdrs) != 22 {
		t.Fatalf("packets after NACK: got %d, want 22", len(hdrs))
	}
	for i, want := range []uint16{1005, 1007} {
		h, p := hdrs[20+i], pays[20+i]
		if h.SequenceNumber != want || int(p[3]) != int(want-1000) || h.SSRC != 1 || h.PayloadType != 96 {
			t.Errorf("retransmission %d: got seq %d (payload %d) ssrc %d pt %d, want seq %d", i, h.SequenceNumber, p[3], h.SSRC, h.PayloadType, want)
		}
	}
	if h, _ := w2.sent(); len(h) != 20 {
		t.Errorf("the other viewer got %d packets, want 20 (a NACK is per viewer)", len(h))
	}
	if u.cache.get(1005) == nil || u.cache.get(1005+cacheSize) != nil {
		t.Error("cache lookup by sequence number is wrong")
	}
}

// fakeTimers is an injected afterFunc: tests fire the scheduled functions by hand.
type fakeTimers struct {
	mu      sync.Mutex
	delays  []time.Duration
	funcs   []func()
	stopped []bool
}

func (f *fakeTimers) after(d time.Duration, fn func()) func() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := len(f.funcs)
	f.delays, f.funcs, f.stopped = append(f.delays, d), append(f.funcs, fn), append(f.stopped, false)
	return func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		was := !f.stopped[i]
		f.stopped[i] = true
		return was
	}
}

// fire runs timer i as if it had expired (even if it was stopped, like a timer that fires while
// being stopped).
func (f *fakeTimers) fire(i int) {
	f.mu.Lock()
	fn := f.funcs[i]
	f.mu.Unlock()
	fn()
}

func (f *fakeTimers) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.funcs)
}

func TestKeyframeRequestsThrottled(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	timers := &fakeTimers{}
	u.now, u.after = clock.Now, timers.after

	for range 100 {
		u.requestKeyframe()
	}
	if got := plis.Load(); got != 1 {
		t.Fatalf("PLIs for 100 requests within %v: got %d, want 1", KeyframeInterval, got)
	}
	if got := timers.count(); got != 1 {
		t.Fatalf("deferred requests scheduled: got %d, want 1", got)
	}
	if got, want := timers.delays[0], KeyframeInterval; got != want {
		t.Errorf("deferred request delay: got %v, want %v", got, want)
	}
	clock.Advance(KeyframeInterval)
	timers.fire(0)
	if got := plis.Load(); got != 2 {
		t.Fatalf("PLIs after the deferred request fired: got %d, want 2", got)
	}
	timers.fire(0) // a stale firing sends nothing
	if got := plis.Load(); got != 2 {
		t.Errorf("PLIs after a stale timer: got %d, want 2", got)
	}

	// A request 100ms after that PLI waits for the rest of the interval.
	clock.Advance(100 * time.Millisecond)
	u.requestKeyframe()
	if got, want := timers.delays[1], KeyframeInterval-100*time.Millisecond; timers.count() != 2 || got != want {
		t.Fatalf("second deferred request: %d timers, delay %v; want 2 timers, delay %v", timers.count(), got, want)
	}
	// The deferred PLI goes out; a request right behind it is deferred again.
	clock.Advance(KeyframeInterval)
	timers.fire(1)
	u.requestKeyframe()
	if got := plis.Load(); got != 3 {
		t.Fatalf("PLIs: got %d, want 3", got)
	}
	if got := timers.count(); got != 3 {
		t.Fatalf("timers after a request right behind a deferred PLI: got %d, want 3", got)
	}

	// The track ends: the pending request is cancelled, its timer stopped, and nothing more goes out.
	u.end()
	if !timers.stopped[2] {
		t.Error("the pending request's timer was not stopped when the track ended")
	}
	timers.fire(2)
	clock.Advance(time.Hour)
	u.requestKeyframe()
	if got := plis.Load(); got != 3 {
		t.Errorf("PLIs after the track ended: got %d, want 3", got)
	}
}

func TestKeyframeRequestDeferredWithRealTimer(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	u.requestKeyframe() // sent
	u.requestKeyframe() // a viewer joining right after: deferred, not dropped
	u.requestKeyframe()
	eventually(t, 10*time.Second, "the deferred PLI", func() bool { return plis.Load() == 2 })
	u.kmu.Lock()
	pending := u.pending
	u.kmu.Unlock()
	if pending {
		t.Error("a request is still pending after the deferred PLI went out")
	}
	u.requestKeyframe() // pending again; end cancels it
	u.end()
	if got := plis.Load(); got != 2 {
		t.Errorf("PLIs: got %d, want 2", got)
	}
}

func TestAudioTrackSendsNoPLI(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeAudio}
	u := testUp(sl, &plis)
	u.isKey = nil
	timers := &fakeTimers{}
	u.after = timers.after
	u.requestKeyframe()
	u.requestKeyframe()
	if plis.Load() != 0 || timers.count() != 0 {
		t.Errorf("audio track: got %d PLIs and %d timers, want none", plis.Load(), timers.count())
	}
}
