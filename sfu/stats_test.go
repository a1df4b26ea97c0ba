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

// TestEdgeStatsCountPulledPackets: an edge counts the packets it pulls from its origin as
// received, and keeps counting them after the pull's connection closes (the totals never go
// down across a reconnect).
func TestEdgeStatsCountPulledPackets(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", nil)
	edge.pullFrom(origin)
	viewAtEdge(t, origin, edge)
	if got := edge.sfu.Stats().PacketsReceived; got < 20 {
		t.Fatalf("edge packets received while pulling: got %d, want at least the 20 its viewer got", got)
	}
	first := func() *attempt {
		edge.sfu.mu.Lock()
		defer edge.sfu.mu.Unlock()
		for a := range edge.sfu.pulling {
			return a
		}
		return nil
	}()
	ps := pullSessions(origin.env)
	if len(ps) != 1 || first == nil {
		t.Fatalf("pull sessions on the origin: got %d, want 1 (edge attempt %v)", len(ps), first != nil)
	}
	if err := origin.sfu.Kick(ps[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the first attempt to close", func() bool {
		edge.sfu.mu.Lock()
		defer edge.sfu.mu.Unlock()
		_, live := edge.sfu.pulling[first]
		return !live
	})
	var firstTotal uint64
	for _, u := range first.ups {
		firstTotal += u.received.Load()
	}
	if got := edge.sfu.Stats().PacketsReceived; got < firstTotal {
		t.Errorf("edge packets received after the attempt closed: got %d, want at least its %d", got, firstTotal)
	}
}
