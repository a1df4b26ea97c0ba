package sfu

import (
	"net/http"
	"testing"
	"time"

	"gatehouse/authz/live"
)

func TestMediaReachesEveryViewer(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d, want 201 (%s)", res.StatusCode, readAll(t, res))
	}
	// Wait until the publisher's tracks arrived so the viewers get both kinds.
	eventually(t, 10*time.Second, "publisher media", func() bool {
		e.sfu.mu.Lock()
		defer e.sfu.mu.Unlock()
		st := e.sfu.streams["live/cam"]
		return st != nil && st.slots[0].up.Load() != nil && st.slots[1].up.Load() != nil
	})
	var viewers []*testViewer
	for range 3 {
		v, res := e.view("live/cam", tokView, true)
		if v == nil {
			t.Fatalf("view: got %d, want 201 (%s)", res.StatusCode, readAll(t, res))
		}
		viewers = append(viewers, v)
	}
	for i, v := range viewers {
		eventually(t, 20*time.Second, "video and audio at a viewer", func() bool {
			return len(v.received(true, 1)) >= 20 && len(v.received(false, 1)) >= 10
		})
		if first := v.received(true, 1)[0]; !first.key {
			t.Errorf("viewer %d: first video packet is not a keyframe (gate)", i)
		}
	}
	if got, want := e.sessionCount(), 4; got != want {
		t.Errorf("sessions: got %d, want %d", got, want)
	}
	if got, want := e.rec.count(live.Published, "live/cam"), 1; got != want {
		t.Errorf("Published events: got %d, want %d", got, want)
	}
	if got, want := e.rec.count(live.Joined, "live/cam"), 3; got != want {
		t.Errorf("Joined events: got %d, want %d", got, want)
	}
	mustStatus(t, e.do(http.MethodDelete, pub.location, tokPub, "", ""), http.StatusOK)
	if got, want := e.rec.count(live.Unpublished, "live/cam"), 1; got != want {
		t.Errorf("Unpublished events: got %d, want %d", got, want)
	}
	if got, want := e.sessionCount(), 3; got != want {
		t.Errorf("sessions after publisher left: got %d, want %d (viewers wait for a reconnect)", got, want)
	}
}
