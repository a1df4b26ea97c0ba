package sfu

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// simulcastLayers are the test publisher's layers, low to high: RID, payload size (so the
// measured bitrates differ: 100 packets/s each) and the id each payload carries.
var simulcastLayers = []struct {
	rid  string
	size int
	id   byte
}{{"q", 100, 1}, {"h", 300, 2}, {"f", 900, 3}}

// simulcastPublisher sends three VP8 RID layers like a browser with sendEncodings; PLIs are
// counted per layer and answered with a keyframe on that layer. Keyframes also go out every 30
// packets (every keyEvery when set).
type simulcastPublisher struct {
	pc   *webrtc.PeerConnection
	stop chan struct{}
	done sync.WaitGroup
	plis [3]atomic.Int64
}

func (p *simulcastPublisher) totalPLIs() int64 {
	return p.plis[0].Load() + p.plis[1].Load() + p.plis[2].Load()
}

func (e *env) publishSimulcast(path string, keyEvery uint32) *simulcastPublisher {
	t := e.t
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := registerSimulcast(m); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &simulcastPublisher{pc: pc, stop: make(chan struct{})}
	var tracks []*webrtc.TrackLocalStaticRTP
	for _, l := range simulcastLayers {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub", webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	tx, err := pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	sender := tx.Sender()
	for _, tr := range tracks[1:] {
		if err := sender.AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
	}
	res := e.do(http.MethodPost, "/whip/"+path, tokPub, typeSDP, offer(t, pc))
	answer := mustStatus(t, res, http.StatusCreated)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	mid := tx.Mid()
	var keyNow [3]chan struct{}
	for i, l := range simulcastLayers {
		keyNow[i] = make(chan struct{}, 1)
		p.done.Go(func() {
			for {
				pkts, _, err := sender.ReadSimulcastRTCP(l.rid)
				if err != nil {
					return
				}
				for _, pk := range pkts {
					if _, ok := pk.(*rtcp.PictureLossIndication); ok {
						p.plis[i].Add(1)
						select {
						case keyNow[i] <- struct{}{}:
						default:
						}
					}
				}
			}
		})
	}
	if keyEvery == 0 {
		keyEvery = 30
	}
	p.done.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var n uint32
		seq := [3]uint16{100, 20000, 40000}
		ts := [3]uint32{1000, 5000000, 90000000}
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			for i, l := range simulcastLayers {
				key := n%keyEvery == 0
				select {
				case <-keyNow[i]:
					key = true
				default:
				}
				payload := make([]byte, l.size)
				payload[0] = 0x10
				if !key {
					payload[1] = 0x01
				}
				payload[2] = l.id
				binary.BigEndian.PutUint32(payload[3:], n)
				// pion's sender does not add the MID and RID extensions a simulcast receiver
				// needs (a browser does): IDs 1 and 2 as registered (registerSimulcast's order).
				h := rtp.Header{Version: 2, Marker: true, SequenceNumber: seq[i], Timestamp: ts[i]}
				_ = h.SetExtension(1, []byte(mid))
				_ = h.SetExtension(2, []byte(l.rid))
				_ = tracks[i].WriteRTP(&rtp.Packet{Header: h, Payload: payload})
				seq[i]++
				ts[i] += 900
			}
			n++
		}
	})
	t.Cleanup(func() {
		select {
		case <-p.stop:
		default:
			close(p.stop)
		}
		_ = pc.Close()
		p.done.Wait()
	})
	return p
}

// layersLive waits until the SFU has all three layers of path with measured bitrates.
func (e *env) layersLive(path string) {
	e.t.Helper()
	eventually(e.t, 15*time.Second, "three measured simulcast layers", func() bool {
		e.sfu.mu.Lock()
		st := e.sfu.streams[path]
		e.sfu.mu.Unlock()
		if st == nil {
			return false
		}
		ls := st.slots[1].ordered()
		if len(ls) != 3 {
			return false
		}
		for i, u := range ls {
			if u.bps.Load() == 0 || u.rid != simulcastLayers[i].rid {
				return false
			}
		}
		return true
	})
}

// lastLayer returns the layer id of the last video packet v received (0: none).
func lastLayer(v *testViewer) byte {
	if got := v.received(true, 0); len(got) > 0 {
		return got[len(got)-1].pub
	}
	return 0
}

// checkSwitch finds the first packet of layer to after one of another layer and checks that the
// viewer saw one continuous stream there: one SSRC, the next sequence number, a later timestamp,
// and a keyframe first.
func checkSwitch(t *testing.T, pkts []rx, to byte) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		a, b := pkts[i-1], pkts[i]
		if b.pub != to || a.pub == to {
			continue
		}
		if b.seq != a.seq+1 {
			t.Errorf("switch from layer %d to %d: seq %d after %d, want %d", a.pub, b.pub, b.seq, a.seq, a.seq+1)
		}
		if b.ssrc != a.ssrc {
			t.Errorf("switch: SSRC changed from %d to %d", a.ssrc, b.ssrc)
		}
		if int32(b.ts-a.ts) <= 0 {
			t.Errorf("switch: timestamp %d not after %d", b.ts, a.ts)
		}
		if !b.key {
			t.Errorf("switch: the first packet of layer %d is not a keyframe", to)
		}
		return
	}
	t.Fatalf("no switch to layer %d in %d packets", to, len(pkts))
}

// TestViewerPacketsCarryAbsSendTime: a viewer that negotiated abs-send-time gets it on every
// video packet, stamped by the SFU, and none of the publisher's extensions (MID, RID, TWCC under
// the publisher's IDs). Without it Chromium's receive-side estimate, and so its REMB, stays far
// below what the path carries and every Chromium viewer ends on the lowest layer.
func TestViewerPacketsCarryAbsSendTime(t *testing.T) {
	e := newEnv(t, nil)
	e.publishSimulcast("live/sc", 0)
	e.layersLive("live/sc")
	v, res := e.view("live/sc", tokView, true)
	if v == nil {
		t.Fatalf("view: status %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "video", func() bool { return len(v.received(true, 0)) >= 10 })
	var id uint8
	for _, tr := range v.pc.GetTransceivers() {
		if tr.Kind() != webrtc.RTPCodecTypeVideo || tr.Receiver() == nil {
			continue
		}
		for _, h := range tr.Receiver().GetParameters().HeaderExtensions {
			if h.URI == sdp.ABSSendTimeURI {
				id = uint8(h.ID)
			}
		}
	}
	if id == 0 {
		t.Fatal("the answer did not negotiate abs-send-time")
	}
	for _, p := range v.received(true, 0) {
		if !slices.Equal(p.exts, []uint8{id}) {
			t.Fatalf("video packet %d: extension IDs %v, want only abs-send-time (%d)", p.seq, p.exts, id)
		}
	}
}

func TestSimulcastViewerLayers(t *testing.T) {
	e := newEnv(t, nil)
	e.publishSimulcast("live/sc", 0)
	e.layersLive("live/sc")

	// The default viewer gets the top layer.
	top, res := e.view("live/sc", tokView, true)
	if top == nil {
		t.Fatalf("view: status %d", res.StatusCode)
	}
	if !strings.Contains(strings.Join(res.Header.Values("Link"), ","), layerRel) {
		t.Errorf("WHEP answer Link headers %q: want the layer resource", res.Header.Values("Link"))
	}
	eventually(t, 10*time.Second, "the default viewer on the top layer", func() bool { return len(top.received(true, 3)) >= 20 })
	for _, p := range top.received(true, 0) {
		if p.pub != 3 {
			t.Fatalf("the default viewer got a packet of layer %d", p.pub)
		}
	}

	// A viewer whose REMB estimate is low moves down to the layer that fits, at its keyframe.
	low, res := e.view("live/sc", tokView, true)
	if low == nil {
		t.Fatalf("view: status %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "video", func() bool { return len(low.received(true, 0)) > 0 })
	ssrc := low.received(true, 0)[0].ssrc
	eventually(t, 15*time.Second, "the low-bandwidth viewer on layer q", func() bool {
		_ = low.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 150_000, SSRCs: []uint32{ssrc}}})
		return len(low.received(true, 1)) >= 10 && lastLayer(low) == 1
	})
	checkSwitch(t, low.received(true, 0), 1)

	// A pin switches at the pinned layer's next keyframe, with continuous sequence numbers.
	pinned, res := e.view("live/sc", tokView, true)
	if pinned == nil {
		t.Fatalf("view: status %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "video", func() bool { return len(pinned.received(true, 3)) > 5 })
	res = e.do(http.MethodPost, pinned.location+"/layer", tokView, "application/json", `{"rid":"h"}`)
	var st layerState
	if err := json.Unmarshal([]byte(mustStatus(t, res, http.StatusOK)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Target != "h" || st.Mode != "pinned" || len(st.Layers) != 3 {
		t.Errorf("layer state after the pin: %+v; want target h, pinned, 3 layers", st)
	}
	eventually(t, 10*time.Second, "the pinned viewer on layer h", func() bool { return len(pinned.received(true, 2)) >= 10 })
	pk := pinned.received(true, 0)
	checkSwitch(t, pk, 2)
	after := false
	for _, p := range pk {
		after = after || p.pub == 2
		if after && p.pub != 2 {
			t.Fatalf("a packet of layer %d after the switch to h", p.pub)
		}
	}
	// Back to automatic: the top layer again.
	res = e.do(http.MethodPatch, pinned.location+"/layer", tokView, "application/json", `{"rid":"auto"}`)
	mustStatus(t, res, http.StatusOK)
	eventually(t, 10*time.Second, "the unpinned viewer back on the top layer", func() bool { return lastLayer(pinned) == 3 })
}

func TestSimulcastLayerResource(t *testing.T) {
	e := newEnv(t, nil)
	e.publishSimulcast("live/res", 0)
	e.layersLive("live/res")
	v, res := e.view("live/res", tokView, true)
	if v == nil {
		t.Fatalf("view: status %d", res.StatusCode)
	}
	for _, c := range []struct {
		name, method, token, body string
		want                      int
	}{
		{"no credential", http.MethodPost, "", `{"rid":"q"}`, http.StatusUnauthorized},
		{"another credential", http.MethodPost, tokAdmin, `{"rid":"q"}`, http.StatusForbidden},
		{"unknown layer", http.MethodPost, tokView, `{"rid":"x"}`, http.StatusUnprocessableEntity},
		{"bad rid", http.MethodPost, tokView, `{"rid":"a b"}`, http.StatusBadRequest},
		{"unknown field", http.MethodPost, tokView, `{"rid":"q","x":1}`, http.StatusBadRequest},
		{"too large", http.MethodPost, tokView, `{"rid":"` + strings.Repeat("q", 2000) + `"}`, http.StatusBadRequest},
		{"get", http.MethodGet, tokView, "", http.StatusOK},
		{"pin", http.MethodPatch, tokView, `{"rid":"q"}`, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			mustStatus(t, e.do(c.method, v.location+"/layer", c.token, "application/json", c.body), c.want)
		})
	}
	// A publisher session has no layer resource.
	mustStatus(t, e.do(http.MethodGet, "/whep/session/nope/layer", tokView, "", ""), http.StatusNotFound)
}

// TestNewViewerStartsFromCachedKeyframe: a viewer joining a running stream starts with the
// cached keyframe (its first video packet is one) and no keyframe request reaches the publisher.
func TestNewViewerStartsFromCachedKeyframe(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/gop", tokPub, 7)
	if pub == nil {
		t.Fatalf("publish: status %d", res.StatusCode)
	}
	first, res := e.view("live/gop", tokView, true)
	if first == nil {
		t.Fatalf("view: status %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "the first viewer's video", func() bool { return len(first.received(true, 7)) >= 40 })
	time.Sleep(KeyframeInterval) // any keyframe request of the first viewer is answered by now
	plis := pub.plis.Load()
	for i := range 3 {
		v, res := e.view("live/gop", tokView, true)
		if v == nil {
			t.Fatalf("view: status %d", res.StatusCode)
		}
		eventually(t, 10*time.Second, "a new viewer's video", func() bool { return len(v.received(true, 7)) >= 5 })
		got := v.received(true, 7)
		if !got[0].key {
			t.Errorf("viewer %d: the first video packet is not a keyframe", i)
		}
		for j := 1; j < len(got); j++ {
			if got[j].seq != got[j-1].seq+1 || got[j].n != got[j-1].n+1 {
				t.Fatalf("viewer %d: packet %d: seq %d n %d after seq %d n %d; want consecutive", i, j, got[j].seq, got[j].n, got[j-1].seq, got[j-1].n)
			}
		}
	}
	if got := pub.plis.Load(); got != plis {
		t.Errorf("keyframe requests for three new viewers: got %d, want 0", got-plis)
	}
}

func TestKeyframeCacheBounded(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	pkt := func(seq uint16, ts uint32, key bool) *packet {
		return &packet{hdr: rtp.Header{SequenceNumber: seq, Timestamp: ts}, payload: make([]byte, 1188), key: key, up: u}
	}
	u.keep(pkt(1, 100, false), 1200)
	if g := u.gopSnapshot(); len(g) != 0 {
		t.Fatalf("cache before any keyframe: %d packets, want 0", len(g))
	}
	u.keep(pkt(2, 200, true), 1200)
	u.keep(pkt(3, 200, true), 1200) // a second packet of the same keyframe does not restart it
	u.keep(pkt(4, 300, false), 1200)
	if g := u.gopSnapshot(); len(g) != 3 || g[0].hdr.SequenceNumber != 2 {
		t.Fatalf("cache after a keyframe: %d packets, want 3 from seq 2", len(g))
	}
	old := u.gopSnapshot()
	seq := uint16(5)
	for range gopMaxBytes / (1200 + gopPacketCost) {
		u.keep(pkt(seq, 400, false), 1200)
		seq++
	}
	if g := u.gopSnapshot(); g != nil {
		t.Fatalf("cache over %d bytes: %d packets kept, want none", gopMaxBytes, len(g))
	}
	if old[0].hdr.SequenceNumber != 2 || len(old) != 3 {
		t.Error("a snapshot changed after it was taken")
	}
	u.keep(pkt(seq, 500, false), 1200)
	if g := u.gopSnapshot(); len(g) != 0 {
		t.Fatal("the cache restarted without a keyframe")
	}
	u.keep(pkt(seq+1, 600, true), 1200)
	if g := u.gopSnapshot(); len(g) != 1 {
		t.Fatalf("cache after the next keyframe: %d packets, want 1", len(g))
	}
	// A viewer activated while the cache is empty asks the publisher for a keyframe; with a
	// cached keyframe it does not.
	d := newDownTrack(sl, vp8, "video", "t", 8)
	d.activate()
	if got := plis.Load(); got != 0 {
		t.Errorf("PLIs when a viewer starts with a cached keyframe: got %d, want 0", got)
	}
	u.gopMu.Lock()
	u.gop = nil
	u.gopMu.Unlock()
	d2 := newDownTrack(sl, vp8, "video", "t", 8)
	d2.activate()
	if got := plis.Load(); got != 1 {
		t.Errorf("PLIs when a viewer starts without a cached keyframe: got %d, want 1", got)
	}
}

func TestLayerPicker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const ms = time.Millisecond
	layers := []layerInfo{{"q", 100_000}, {"h", 500_000}, {"f", 2_000_000}}
	type step struct {
		at     time.Duration
		remb   float32 // 0: none this step
		loss   uint8
		pin    string
		cur    string
		want   string
		reason string
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"no estimate: top", []step{{cur: "", want: "f", reason: "start"}}},
		{"estimate at start: what fits", []step{{remb: 600_000, cur: "", want: "h", reason: "start"}}},
		{"join: estimates in the settle time are ignored", []step{
			{cur: "", want: "f", reason: "start without an estimate"},
			{at: 100 * ms, cur: "f", want: "f"},
			{at: time.Second, remb: 200_000, cur: "f", want: "f", reason: "the estimator is still converging"},
			{at: 2500 * ms, remb: 2_600_000, cur: "f", want: "f", reason: "converged"},
		}},
		{"far below: down at once", []step{
			{remb: 3_000_000, cur: "f", want: "f", reason: "fits"},
			{at: 3 * time.Second, remb: 400_000, cur: "f", want: "q", reason: "below f × 0.5; fits q"},
		}},
		{"a short dip below the layer is no reason to move", []step{
			{remb: 600_000, cur: "h", want: "h"},
			{at: 3 * time.Second, remb: 350_000, cur: "h", want: "h", reason: "below h × 0.75 for 0 s"},
			{at: 4 * time.Second, remb: 350_000, cur: "h", want: "h", reason: "for 1 s"},
			{at: 5 * time.Second, remb: 600_000, cur: "h", want: "h", reason: "back"},
			{at: 6 * time.Second, remb: 350_000, cur: "h", want: "h", reason: "below again: the hold restarts"},
			{at: 7500 * ms, remb: 350_000, cur: "h", want: "q", reason: "below for 1.5 s"},
			{at: 8 * time.Second, remb: 350_000, cur: "h", want: "q", reason: "the move stands until the keyframe"},
		}},
		{"probe up from q to h to f while the estimate tracks 1.5 × the layer", []step{
			{remb: 160_000, cur: "q", want: "q"},
			{at: 2 * time.Second, remb: 160_000, cur: "q", want: "q", reason: "settled, above q × 1.25: hold starts"},
			{at: 4 * time.Second, remb: 160_000, cur: "q", want: "q", reason: "2 s into the hold"},
			{at: 5 * time.Second, remb: 160_000, cur: "q", want: "h", reason: "3 s: probe h"},
			{at: 5500 * ms, remb: 160_000, cur: "q", want: "h", reason: "the move stands until the keyframe"},
			{at: 6 * time.Second, remb: 160_000, cur: "h", want: "h", reason: "switched: settling"},
			{at: 8 * time.Second, remb: 400_000, cur: "h", want: "h", reason: "grace: below h but not far"},
			{at: 11 * time.Second, remb: 760_000, cur: "h", want: "h", reason: "grace over, the estimate reached h: hold starts"},
			{at: 14 * time.Second, remb: 760_000, cur: "h", want: "f", reason: "3 s: probe f"},
			{at: 15 * time.Second, remb: 760_000, cur: "f", want: "f", reason: "switched: settling"},
			{at: 17 * time.Second, remb: 1_200_000, cur: "f", want: "f", reason: "grace"},
			{at: 21 * time.Second, remb: 3_000_000, cur: "f", want: "f", reason: "grace over: stays"},
		}},
		{"a failed probe doubles the hold", []step{
			{remb: 700_000, cur: "h", want: "h"},
			{at: 2 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "hold starts"},
			{at: 5 * time.Second, remb: 700_000, cur: "h", want: "f", reason: "probe f"},
			{at: 5 * time.Second, remb: 700_000, cur: "f", want: "f", reason: "switched"},
			{at: 7 * time.Second, remb: 700_000, cur: "f", want: "h", reason: "far below f: failed"},
			{at: 7 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "switched"},
			{at: 9 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "hold starts"},
			{at: 12 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "3 s: not yet"},
			{at: 15 * time.Second, remb: 700_000, cur: "h", want: "f", reason: "6 s: probe again"},
			{at: 15 * time.Second, remb: 700_000, cur: "f", want: "f", reason: "switched"},
			{at: 20 * time.Second, remb: 1_200_000, cur: "f", want: "h", reason: "grace over, below f × 0.75: failed"},
			{at: 20 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "switched"},
			{at: 22 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "hold starts"},
			{at: 33 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "11 s into the hold"},
			{at: 34 * time.Second, remb: 700_000, cur: "h", want: "f", reason: "12 s: probe again"},
			{at: 34 * time.Second, remb: 700_000, cur: "f", want: "f", reason: "switched"},
			{at: 40 * time.Second, remb: 2_900_000, cur: "f", want: "f", reason: "success"},
			{at: 41 * time.Second, remb: 700_000, cur: "f", want: "h", reason: "far below f again: not a probe"},
			{at: 41 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "switched"},
			{at: 43 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "hold starts"},
			{at: 46 * time.Second, remb: 700_000, cur: "h", want: "f", reason: "the success reset the hold to 3 s"},
		}},
		{"the hold is capped", []step{
			{remb: 700_000, cur: "h", want: "h"},
			{at: 2 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 5 * time.Second, remb: 700_000, cur: "h", want: "f"},
			{at: 5 * time.Second, remb: 700_000, cur: "f", want: "f"},
			{at: 7 * time.Second, remb: 700_000, cur: "f", want: "h", reason: "fail 1"},
			{at: 7 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 9 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 15 * time.Second, remb: 700_000, cur: "h", want: "f"},
			{at: 15 * time.Second, remb: 700_000, cur: "f", want: "f"},
			{at: 17 * time.Second, remb: 700_000, cur: "f", want: "h", reason: "fail 2"},
			{at: 17 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 19 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 31 * time.Second, remb: 700_000, cur: "h", want: "f"},
			{at: 31 * time.Second, remb: 700_000, cur: "f", want: "f"},
			{at: 33 * time.Second, remb: 700_000, cur: "f", want: "h", reason: "fail 3"},
			{at: 33 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 35 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 59 * time.Second, remb: 700_000, cur: "h", want: "f"},
			{at: 59 * time.Second, remb: 700_000, cur: "f", want: "f"},
			{at: 61 * time.Second, remb: 700_000, cur: "f", want: "h", reason: "fail 4"},
			{at: 61 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 63 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "hold starts"},
			{at: 92 * time.Second, remb: 700_000, cur: "h", want: "h", reason: "29 s"},
			{at: 93 * time.Second, remb: 700_000, cur: "h", want: "f", reason: "30 s, not 48 s"},
		}},
		{"sustained loss: one down, held", []step{
			{cur: "f", want: "f"},
			{at: 3 * time.Second, loss: 60, cur: "f", want: "f", reason: "one lossy report"},
			{at: 4 * time.Second, loss: 60, cur: "f", want: "h", reason: "two: down"},
			{at: 8 * time.Second, cur: "h", want: "h", reason: "held"},
			{at: 15 * time.Second, cur: "h", want: "f", reason: "hold over, no estimate: top"},
		}},
		{"loss right after joining is not the link's", []step{
			{cur: "", want: "f"},
			{at: 100 * ms, loss: 60, cur: "f", want: "f"},
			{at: 600 * ms, loss: 60, cur: "f", want: "f", reason: "two lossy reports in the settle time"},
			{at: 2500 * ms, cur: "f", want: "f"},
		}},
		{"sustained loss right after a probe up fails it", []step{
			{remb: 700_000, cur: "h", want: "h"},
			{at: 2 * time.Second, remb: 700_000, cur: "h", want: "h"},
			{at: 5 * time.Second, remb: 700_000, cur: "h", want: "f", reason: "probe f"},
			{at: 5 * time.Second, loss: 60, cur: "f", want: "f", reason: "switched; one lossy report"},
			{at: 6 * time.Second, loss: 60, cur: "f", want: "h", reason: "two: failed"},
		}},
		{"sustained loss moves down whatever the estimate", []step{
			{remb: 3_000_000, cur: "f", want: "f"},
			{at: 3 * time.Second, remb: 3_000_000, loss: 60, cur: "f", want: "f", reason: "one lossy report"},
			{at: 4 * time.Second, remb: 3_000_000, loss: 60, cur: "f", want: "h", reason: "two: down"},
			{at: 4 * time.Second, remb: 3_000_000, cur: "h", want: "h", reason: "switched"},
			{at: 10 * time.Second, remb: 3_000_000, cur: "h", want: "h", reason: "held"},
			{at: 14 * time.Second, remb: 3_000_000, cur: "h", want: "h", reason: "hold over: the up hold starts"},
			{at: 17 * time.Second, remb: 3_000_000, cur: "h", want: "f"},
		}},
		{"no oscillation under a steady estimate between layers", []step{
			{remb: 550_000, cur: "h", want: "h", reason: "above h, below h × 1.25"},
			{at: 10 * time.Second, remb: 550_000, cur: "h", want: "h"},
			{at: 20 * time.Second, remb: 420_000, cur: "h", want: "h", reason: "below h, above h × 0.75"},
			{at: 30 * time.Second, remb: 420_000, cur: "h", want: "h"},
			{at: 60 * time.Second, remb: 420_000, cur: "h", want: "h"},
		}},
		{"pin wins over the estimate", []step{
			{remb: 50_000, pin: "f", cur: "q", want: "f"},
			{at: time.Second, pin: "auto", cur: "f", want: "f", reason: "the estimate settles after the pin ends"},
			{at: 3 * time.Second, cur: "f", want: "q", reason: "far below f"},
			{at: 3 * time.Second, pin: "zz", cur: "q", want: "q", reason: "an absent layer pins nothing"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var lp layerPicker
			for i, s := range c.steps {
				if s.remb != 0 {
					lp.remb(s.remb)
				}
				if s.loss != 0 {
					lp.report(s.loss)
				} else {
					lp.report(0)
				}
				if s.pin != "" {
					lp.setPin(s.pin)
				}
				if got := lp.decide(t0.Add(s.at), layers, s.cur); got != s.want {
					t.Fatalf("step %d (%s): got %q, want %q", i, s.reason, got, s.want)
				}
			}
		})
	}
}

// TestLayerOrder: well-known RID names order the layers even when a layer's measured bitrate
// dips below a lower one's for a moment (an encoder pausing its top layer would otherwise fake a
// move up); other names are ordered by what each layer carries, once all are measured.
func TestLayerOrder(t *testing.T) {
	for _, tt := range []struct {
		name string
		rids []string
		bps  []int64
		want []string
	}{
		{"named, top layer dips", []string{"f", "q", "h"}, []int64{36_000, 140_000, 330_000}, []string{"q", "h", "f"}},
		{"named, unmeasured", []string{"h", "f", "q"}, []int64{0, 0, 0}, []string{"q", "h", "f"}},
		{"other names by bitrate", []string{"0", "1", "2"}, []int64{900_000, 150_000, 400_000}, []string{"1", "2", "0"}},
		{"two names of one rank: by bitrate", []string{"h", "m"}, []int64{500_000, 200_000}, []string{"m", "h"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sl := &slot{kind: webrtc.RTPCodecTypeVideo}
			owner := &slot{}
			for i, rid := range tt.rids {
				u := &upTrack{slot: sl, codec: vp8, isKey: isVP8Keyframe, pli: func() {}, now: time.Now, after: realAfter, rid: rid, owner: owner}
				u.bps.Store(tt.bps[i])
				if !sl.addLayer(u) {
					t.Fatalf("addLayer(%s)", rid)
				}
			}
			var got []string
			for _, u := range sl.ordered() {
				got = append(got, u.rid)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ordered: %v, want %v", got, tt.want)
			}
		})
	}
}

// A packet of the new layer from before its keyframe (reordered, or a publisher's NACK resend)
// must not be written after a switch: its seq would map onto one the viewer already got from
// the old layer, with a timestamp going back.
func TestLayerSwitchDropsPacketsBeforeTheKeyframe(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	mk := func(rid string) *upTrack {
		u := &upTrack{slot: sl, codec: vp8, isKey: isVP8Keyframe, pli: func() { plis.Add(1) }, now: time.Now, after: realAfter, rid: rid, owner: sl}
		if !sl.addLayer(u) {
			t.Fatal("addLayer")
		}
		return u
	}
	q, f := mk("q"), mk("f")
	w := &fakeWriter{}
	d := testDown(t, sl, w, 64, 777, 96)
	sentN := func(n byte) func() bool { // the writer has written a packet marked n
		return func() bool {
			_, pays := w.sent()
			for _, p := range pays {
				if p[3] == n {
					return true
				}
			}
			return false
		}
	}
	d.picker.setPin("q")
	d.repick()
	for i := range 5 {
		q.handle(vp8Packet(t, uint16(100+i), uint32(1000+i*3000), i == 0, 1))
	}
	eventually(t, 5*time.Second, "the q layer", func() bool { h, _ := w.sent(); return len(h) == 5 })
	d.picker.setPin("f")
	d.repick()
	f.handle(vp8Packet(t, 500, 90000, true, 3))
	f.handle(vp8Packet(t, 501, 93000, false, 3))
	f.handle(vp8Packet(t, 499, 87000, false, 4)) // late: precedes f's keyframe
	f.handle(vp8Packet(t, 502, 96000, false, 5)) // the queue is FIFO: 499 was handled before
	eventually(t, 5*time.Second, "the last f packet", sentN(5))
	hdrs, pays := w.sent()
	seen := map[uint16]byte{}
	for i, h := range hdrs {
		if pays[i][3] == 4 {
			t.Errorf("the packet before f's keyframe was written as viewer seq %d", h.SequenceNumber)
		}
		if prev, ok := seen[h.SequenceNumber]; ok {
			t.Errorf("viewer seq %d sent twice: marks %d, then %d", h.SequenceNumber, prev, pays[i][3])
		}
		seen[h.SequenceNumber] = pays[i][3]
	}
	if len(hdrs) != 8 {
		t.Errorf("viewer got %d packets, want 5 from q and 3 from f", len(hdrs))
	}
}

// The guard against packets before the mapping's start must survive more than 32768 packets
// in one mapping (seq arithmetic wraps).
func TestForwardLongMappingKeepsLatePackets(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	w := &fakeWriter{}
	d := testDown(t, sl, w, 64, 777, 96)
	p := func(seq uint16, key bool) *packet {
		var pkt rtp.Packet
		if err := pkt.Unmarshal(vp8Packet(t, seq, uint32(seq), key, 1)); err != nil {
			t.Fatal(err)
		}
		return &packet{hdr: pkt.Header, payload: pkt.Payload, key: key, at: time.Now(), up: u}
	}
	// Drive the writer directly (no goroutine races: stop it first).
	d.stop()
	d.forward(p(10, true))
	for s := uint16(11); s < 10+40000; s++ {
		d.forward(p(s, false))
	}
	before := len(w.hdrs)
	d.forward(p(10+39990, false)) // reordered by ten packets, well inside the mapping
	if len(w.hdrs) != before+1 {
		t.Errorf("a late packet 40000 packets into the mapping was dropped")
	}
}

// The keyframe cache's bound covers what it keeps alive, not only the payload bytes: one
// keyframe then a long run of tiny packets must not hold many times gopMaxBytes.
func TestKeyframeCacheBoundCountsPacketOverhead(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	mk := func(seq uint16, ts uint32, key bool) []byte {
		pl := []byte{0x10, 0x01}
		if key {
			pl[1] = 0
		}
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1}, Payload: pl}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	u.handle(mk(0, 1, true))
	for i := 1; i < gopMaxBytes/14-10; i++ {
		u.handle(mk(uint16(i), uint32(i), false))
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if grew := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grew > 3*gopMaxBytes {
		t.Errorf("one layer's keyframe cache holds %d MB, its bound is %d MB", grew>>20, gopMaxBytes>>20)
	}
	runtime.KeepAlive(u)
}

func TestKeyframeCacheBoundsPacketCount(t *testing.T) {
	var plis atomic.Int64
	sl := &slot{kind: webrtc.RTPCodecTypeVideo}
	u := testUp(sl, &plis)
	u.keep(&packet{hdr: rtp.Header{Timestamp: 1}, key: true, up: u}, 13)
	for i := 1; i < gopMaxPackets; i++ {
		u.keep(&packet{hdr: rtp.Header{SequenceNumber: uint16(i), Timestamp: 2}, up: u}, 13)
	}
	if g := u.gopSnapshot(); len(g) != gopMaxPackets {
		t.Fatalf("cache at the packet bound: %d packets, want %d", len(g), gopMaxPackets)
	}
	u.keep(&packet{hdr: rtp.Header{SequenceNumber: gopMaxPackets, Timestamp: 2}, up: u}, 13)
	if g := u.gopSnapshot(); g != nil {
		t.Errorf("cache over %d packets: %d kept, want none", gopMaxPackets, len(g))
	}
}
