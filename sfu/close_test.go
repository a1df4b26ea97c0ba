package sfu

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// endWait bounds how long a client may take to see the server end its session. It is well under
// the client's ICE timeouts (iceTimeouts), so only a close the server signals can meet it.
const endWait = 5 * time.Second

// iceTimeouts sets the client's ICE disconnected and failed timeouts far beyond endWait: a client
// that notices the end only through ICE silence fails the test.
func iceTimeouts(se *webrtc.SettingEngine) {
	se.SetICETimeouts(30*time.Second, 30*time.Second, 2*time.Second)
}

// leftConnected returns a channel that receives pc's first state after "connected" that ends
// or suspends it (disconnected, failed, closed).
func leftConnected(pc *webrtc.PeerConnection) (connected <-chan struct{}, left <-chan webrtc.PeerConnectionState) {
	c, l := make(chan struct{}), make(chan webrtc.PeerConnectionState, 1)
	var was bool
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			if !was {
				was = true
				close(c)
			}
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			select {
			case l <- s:
			default:
			}
		}
	})
	return c, l
}

// TestServerEndIsSeenByTheClient: when the SFU ends a session (a kick, a revocation, an expiry
// all end it the same way), the remote PeerConnection learns it from the SFU within endWait,
// not from its own ICE timeout many seconds later: a real encoder would otherwise keep sending
// into a closed session.
func TestServerEndIsSeenByTheClient(t *testing.T) {
	e := newEnv(t, nil)
	e.api = clientAPIWith(t, iceTimeouts)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	pubUp, pubLeft := leftConnected(pub.pc)
	view, res := e.view("live/cam", tokView, true)
	if view == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	viewUp, viewLeft := leftConnected(view.pc)
	for what, up := range map[string]<-chan struct{}{"publisher": pubUp, "viewer": viewUp} {
		select {
		case <-up:
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s did not connect", what)
		}
	}
	eventually(t, 5*time.Second, "video at the viewer", func() bool { return len(view.received(true, 1)) > 0 })

	sessionOf := func(kind Kind) string {
		for _, s := range e.sfu.Sessions() {
			if s.Kind == kind {
				return s.ID
			}
		}
		t.Fatalf("no %s session", kind)
		return ""
	}
	for _, tt := range []struct {
		name string
		kind Kind
		left <-chan webrtc.PeerConnectionState
	}{
		{"publisher", KindPublish, pubLeft},
		{"viewer", KindRead, viewLeft},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.sfu.Kick(sessionOf(tt.kind)); err != nil {
				t.Fatalf("Kick: %v", err)
			}
			select {
			case s := <-tt.left:
				t.Logf("the %s's PeerConnection went %s", tt.name, s)
			case <-time.After(endWait):
				t.Fatalf("the %s's PeerConnection stayed connected %v after the SFU ended its session", tt.name, endWait)
			}
		})
	}
}
