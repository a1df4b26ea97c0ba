package sfu

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestPacketCounters: the SFU's totals count what publishers sent, what reached viewers, and
// what was dropped and why (malformed, viewer not connected); a slot without counters (nil)
// counts nothing and does not fail.
func TestPacketCounters(t *testing.T) {
	var ctr packetCounters
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo, ctr: &ctr}
	u := testUp(sl, &plis)
	w := &fakeWriter{}
	testDown(t, sl, w, 32, 1001, 100)
	idle := newDownTrack(sl, vp8, "video", "idle", 32) // bound, never connected
	addDown(sl, idle)
	for i := range 10 {
		u.handle(vp8Packet(t, uint16(i), uint32(i)*3000, i == 0, uint16(i)))
	}
	u.handle([]byte{0x80}) // not RTP
	eventually(t, 10*time.Second, "the viewer to get every packet", func() bool { n, _ := w.sent(); return len(n) == 10 })
	want := map[int]uint64{ctrReceived: 10, ctrForwarded: 10, ctrNotConnected: 10, ctrMalformed: 1, ctrQueueFull: 0}
	for k, v := range want {
		if got := ctr[k].Load(); got != v {
			t.Errorf("counter %d = %d, want %d", k, got, v)
		}
	}
	var none *packetCounters
	none.inc(ctrReceived) // a nil counter set is a no-op
}
