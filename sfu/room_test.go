package sfu

import (
	"testing"
	"time"
)

// TestUnwatchedPublisherCostsNoForwarding: in a room every participant publishes, but the SFU
// forwards a participant's media only to viewers that opened a WHEP session for it. A publisher
// nobody watches is received and dropped on the floor without a single write (no forwarded
// packet, no queued or refused one), and a viewer of one participant gets nothing of another.
func TestUnwatchedPublisherCostsNoForwarding(t *testing.T) {
	e := newEnv(t, nil)
	a, res := e.publish("room/r/alice", tokPub, 1)
	if a == nil {
		t.Fatalf("publish alice: got %d (%s)", res.StatusCode, readAll(t, res))
	}
	b, res := e.publish("room/r/bob", tokPub2, 2)
	if b == nil {
		t.Fatalf("publish bob: got %d (%s)", res.StatusCode, readAll(t, res))
	}
	e.waitLive("room/r/alice")
	e.waitLive("room/r/bob")
	eventually(t, 10*time.Second, "packets from both publishers", func() bool { return e.sfu.Stats().PacketsReceived > 200 })
	if st := e.sfu.Stats(); st.PacketsForwarded != 0 || st.Dropped["queue_full"] != 0 || st.Dropped["not_connected"] != 0 {
		t.Fatalf("nobody watches: got %+v, want no forwarded or dropped-at-a-viewer packet", st)
	}

	v, res := e.view("room/r/alice", tokView, true)
	if v == nil {
		t.Fatalf("view alice: got %d (%s)", res.StatusCode, readAll(t, res))
	}
	eventually(t, 20*time.Second, "alice's video at the viewer", func() bool { return len(v.received(true, 1)) >= 30 })
	if got := len(v.received(true, 2)) + len(v.received(false, 2)); got != 0 {
		t.Errorf("the viewer of alice got %d packets of bob's", got)
	}
	e.sfu.mu.Lock()
	bobSlots := e.sfu.streams["room/r/bob"].slots
	aliceSlots := e.sfu.streams["room/r/alice"].slots
	e.sfu.mu.Unlock()
	for i := range bobSlots {
		if n := len(bobSlots[i].viewers()); n != 0 {
			t.Errorf("bob's slot %d has %d viewers, want 0", i, n)
		}
	}
	// Everything forwarded is alice's: at most what her two tracks received (read after the
	// forwarded count, so every packet it counts was received before).
	st := e.sfu.Stats()
	var aliceIn uint64
	for _, sl := range aliceSlots {
		if u := sl.up.Load(); u != nil {
			aliceIn += u.received.Load()
		}
	}
	if st.PacketsForwarded == 0 || st.PacketsForwarded > aliceIn {
		t.Errorf("forwarded %d packets, want between 1 and alice's %d (bob's cost nothing)", st.PacketsForwarded, aliceIn)
	}
}
