package sfu

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestPacketCounters: each track counts what its publisher sent, what reached its viewer, and
// what was dropped and why (malformed, viewer not connected), in its own counters: nothing on
// the forwarding path writes a counter shared by other tracks. packetTotals sums them.
func TestPacketCounters(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	w := &fakeWriter{}
	d := testDown(t, sl, w, 32, 1001, 100)
	idle := newDownTrack(sl, vp8, "video", "idle", 32) // bound, never connected
	addDown(sl, idle)
	for i := range 10 {
		u.handle(vp8Packet(t, uint16(i), uint32(i)*3000, i == 0, uint16(i)))
	}
	u.handle([]byte{0x80}) // not RTP
	eventually(t, 10*time.Second, "the viewer to get every packet", func() bool { n, _ := w.sent(); return len(n) == 10 })
	eventually(t, 10*time.Second, "the viewer to count every packet", func() bool { return d.forwarded.Load() == 10 })
	var got packetTotals
	got.add(&session{ups: []*upTrack{u}, downs: []*downTrack{d, idle}})
	want := packetTotals{ctrReceived: 10, ctrForwarded: 10, ctrNotConnected: 10, ctrMalformed: 1, ctrQueueFull: 0}
	if got != want {
		t.Errorf("totals: got %v, want %v", got, want)
	}
	if n := idle.forwarded.Load() + d.notConnected.Load(); n != 0 {
		t.Errorf("one track's packets counted on another: %d", n)
	}
}
