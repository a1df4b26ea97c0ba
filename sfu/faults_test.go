package sfu

// Fault tests of the SFU (run the whole fault suite with `go test -run Fault ./...`):
//
//	TestFaultViewerVanishes    a viewer's UDP goes away without DELETE: reaped by ICE timeouts
//	TestFaultPublisherLoss     5 % of the publisher's video lost on the way: NACKs recover it
//
// Neighbours: TestUnconnectedSessionClosed (a viewer that never connects), TestStalledViewerDoesNotDelayOthers,
// TestNACKServedFromSharedCache, TestKeyframeRequestsThrottled.

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"gatehouse/authz/live"
)

// apiOn is clientAPI with all ICE traffic on conn, so closing conn makes the peer vanish without
// a word (no DTLS close_notify, no DELETE), like a browser tab killed or a network gone.
func apiOn(t *testing.T, conn net.PacketConn, extra ...interceptor.Factory) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	for _, f := range extra { // first registered: closest to the wire
		ir.Add(f)
	}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		t.Fatal(err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	if conn != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(logging.NewDefaultLoggerFactory().NewLogger("test"), conn))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// TestFaultViewerVanishes: one of two viewers loses its UDP socket without sending DELETE or a
// DTLS close. The SFU reaps it when ICE gives up (pion's defaults: disconnected after 5 s of
// silence, failed 25 s later): the session and its registry entry go, the stream's viewer count
// drops, its goroutines end, and the other viewer keeps receiving.
func TestFaultViewerVanishes(t *testing.T) {
	e := newEnv(t, nil)
	if pub, res := e.publish("live/cam", tokPub, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam")
	stay, res := e.view("live/cam", tokView, true)
	if stay == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	eventually(t, 20*time.Second, "media at the first viewer", func() bool { return len(stay.received(true, 1)) >= 20 })
	before := runtime.NumGoroutine()

	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain := e.api
	e.api = apiOn(t, conn)
	gone, res := e.view("live/cam", tokView, true)
	e.api = plain
	if gone == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	eventually(t, 20*time.Second, "media at the vanishing viewer", func() bool { return len(gone.received(true, 1)) >= 20 })
	if got, want := e.sfu.Stats().Viewers, 2; got != want {
		t.Fatalf("viewers: got %d, want %d", got, want)
	}
	during := runtime.NumGoroutine()

	vanished := time.Now()
	_ = conn.Close() // the network is gone: no DELETE, no close_notify, no STUN
	eventually(t, 60*time.Second, "the vanished viewer reaped", func() bool { return e.sfu.Stats().Viewers == 1 })
	reaped := time.Since(vanished)
	// The registry hears of it once the session's PeerConnection is closed.
	eventually(t, 10*time.Second, "the vanished viewer's Left event", func() bool { return e.rec.Count(live.Left, "live/cam") == 1 })
	if got, want := e.sessionCount(), 2; got != want {
		t.Errorf("sessions: got %d, want %d (publisher and the other viewer)", got, want)
	}
	n := len(stay.received(true, 1))
	eventually(t, 10*time.Second, "media at the remaining viewer", func() bool { return len(stay.received(true, 1)) >= n+20 })

	gone.close() // the client side's own goroutines (test code, not the SFU's)
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); after > before && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		time.Sleep(50 * time.Millisecond)
	}
	if after > before {
		t.Errorf("goroutines: %d before the second viewer, %d after it was reaped, want at most %d", before, after, before)
	}
	t.Logf("vanished viewer reaped %v after its UDP went away; viewers 2 -> 1; goroutines %d before it joined, %d while it played, %d after it was reaped",
		reaped.Round(100*time.Millisecond), before, during, after)
}

// lossy drops every 20th RTP packet of the video stream on its way to the wire (5 %), counting
// the NACKs the publisher receives and the retransmissions it sends.
type lossy struct {
	interceptor.NoOp
	writes, dropped, retrans, nacks atomic.Int64
	mu                              sync.Mutex
	seen                            map[uint16]bool
}

func (l *lossy) NewInterceptor(string) (interceptor.Interceptor, error) { return l, nil }

func (l *lossy) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if info.MimeType != webrtc.MimeTypeVP8 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, a interceptor.Attributes) (int, error) {
		l.mu.Lock()
		again := h.SSRC != info.SSRC || l.seen[h.SequenceNumber]
		l.seen[h.SequenceNumber] = true
		l.mu.Unlock()
		if again {
			l.retrans.Add(1)
		}
		if l.writes.Add(1)%20 == 0 {
			l.dropped.Add(1)
			return h.MarshalSize() + len(p), nil
		}
		return w.Write(h, p, a)
	})
}

func (l *lossy) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err == nil {
			if pkts, uerr := rtcp.Unmarshal(b[:n]); uerr == nil {
				for _, p := range pkts {
					if _, ok := p.(*rtcp.TransportLayerNack); ok {
						l.nacks.Add(1)
					}
				}
			}
		}
		return n, a, err
	})
}

// TestFaultPublisherLoss: 5 % of the publisher's video packets are lost between it and the SFU.
// The SFU asks for them (NACK), the publisher resends, and a viewer receives nearly every frame
// — far more than the 95 % that got through the first time; what cannot be recovered is covered
// by keyframe requests forwarded to the publisher.
func TestFaultPublisherLoss(t *testing.T) {
	e := newEnv(t, nil)
	drop := &lossy{seen: map[uint16]bool{}}
	plain := e.api
	e.api = apiOn(t, nil, drop)
	pub, res := e.publish("live/cam", tokPub, 1)
	e.api = plain
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam")
	v, res := e.view("live/cam", tokView, true)
	if v == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	const frames = 400 // 4 s at 100 packets per second
	eventually(t, 30*time.Second, "frames at the viewer", func() bool { return len(v.received(true, 1)) >= frames+100 })
	got := map[uint32]bool{}
	var first, last uint32
	for i, p := range v.received(true, 1) {
		if i == 0 || p.n < first {
			first = p.n
		}
		last = max(last, p.n)
		got[p.n] = true
	}
	// Count over a window that leaves the last second for late retransmissions.
	lo, hi := first, last-100
	have := 0
	for n := lo; n <= hi; n++ {
		if got[n] {
			have++
		}
	}
	span := int(hi - lo + 1)
	ratio := float64(have) / float64(span)
	t.Logf("publisher loss 5 %%: %d of %d video packets dropped on the wire; %d NACKs reached the publisher, %d retransmissions sent; keyframe requests at the publisher %d; viewer has %d of %d frames (%.1f %%)",
		drop.dropped.Load(), drop.writes.Load(), drop.nacks.Load(), drop.retrans.Load(), pub.plis.Load(), have, span, 100*ratio)
	if drop.dropped.Load() == 0 {
		t.Fatal("nothing was dropped: the lossy interceptor is not in the path")
	}
	if drop.nacks.Load() == 0 || drop.retrans.Load() == 0 {
		t.Errorf("NACKs %d, retransmissions %d: want both > 0 (the SFU asks for lost packets)", drop.nacks.Load(), drop.retrans.Load())
	}
	if ratio < 0.98 {
		t.Errorf("viewer received %.1f %% of the frames, want at least 98 %% (5 %% lost, recovered by NACK)", 100*ratio)
	}
}
