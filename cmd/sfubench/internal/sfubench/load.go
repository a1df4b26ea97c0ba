package sfubench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Synthetic stream shape: about 2.5 Mbit/s of VP8 at 30 fps in 1,200-byte RTP packets, plus
// Opus at 50 packets per second.
const (
	FrameRate        = 30
	PacketsPerFrame  = 9
	VideoPayloadSize = 1180 // + 12-byte RTP header = 1,192 bytes before SRTP
	AudioPayloadSize = 100
	AudioInterval    = 20 * time.Millisecond
	KeyframeEvery    = 2 * time.Second
	// MinKeyframeGap throttles keyframes sent in answer to PLIs.
	MinKeyframeGap = 500 * time.Millisecond
	// trailerSize is the payload trailer: 8-byte counter, 8-byte send time (Unix ns).
	trailerSize = 16
)

// SRTP profile choices for the load generator's PeerConnections (the viewer is the DTLS server
// towards a pion SFU and picks the profile).
const (
	SRTPDefault = "default" // pion's order: AEAD_AES_256_GCM first
	SRTPGCM128  = "aes128gcm"
	SRTPCM      = "aes128cm" // AES128_CM_HMAC_SHA1_80, what many non-browser clients end up with
)

// ClientOptions configures ClientAPI.
type ClientOptions struct {
	// SRTP is the SRTP profile choice (SRTPDefault, SRTPGCM128, SRTPCM). Default SRTPDefault.
	SRTP string
	// AllInterfaces gathers candidates on every IPv4 interface instead of loopback only (for a
	// server on another host, or one that does not answer with loopback candidates).
	AllInterfaces bool
	// Simulcast registers the mid and RID header extensions a simulcast publisher needs.
	Simulcast bool
}

// ClientAPI returns the pion API the load generator uses for its publishers and viewers: VP8
// and Opus only, no interceptors (viewers never NACK, so loss is not hidden by retransmission
// and the client costs little), IPv4, loopback only unless o.AllInterfaces, and the given SRTP
// profile.
func ClientAPI(o ClientOptions) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack", Parameter: "pli"}}},
		PayloadType: 96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if o.Simulcast {
		for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
				return nil, err
			}
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if !o.AllInterfaces {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	switch o.SRTP {
	case "", SRTPDefault:
	case SRTPGCM128:
		se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM)
	case SRTPCM:
		se.SetSRTPProtectionProfiles(dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	default:
		return nil, fmt.Errorf("%w: unknown srtp profile %q", ErrConfig, o.SRTP)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(&interceptor.Registry{}),
		webrtc.WithSettingEngine(se)), nil
}

// session is one WHIP or WHEP session resource, deleted on close (best effort).
type session struct {
	client   *http.Client
	location string // absolute URL, "" if the server gave none
	bearer   string
}

func (s session) delete() {
	if s.location == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.location, nil)
	if err != nil {
		return
	}
	if s.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+s.bearer)
	}
	if res, err := s.client.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		_ = res.Body.Close()
	}
}

// signal creates pc's offer, waits for ICE gathering, POSTs it to endpoint (with the bearer
// token, if any) and applies the answer. It returns the session resource and the time just
// before the POST.
func signal(ctx context.Context, client *http.Client, pc *webrtc.PeerConnection, endpoint, bearer string) (session, time.Time, error) {
	sess := session{client: client, bearer: bearer}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return sess, time.Time{}, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return sess, time.Time{}, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return sess, time.Time{}, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return sess, time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return sess, start, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return sess, start, err
	}
	if res.StatusCode != http.StatusCreated {
		return sess, start, fmt.Errorf("%w: POST %s: %s: %.200s", ErrSignal, endpoint, res.Status, body)
	}
	if loc := res.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			sess.location = res.Request.URL.ResolveReference(u).String()
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return sess, start, err
	}
	return sess, start, nil
}

// maxLayers bounds simulcast layers; Layers names them, lowest first.
const maxLayers = 3

// Layers are the simulcast RIDs the publisher sends, lowest first, and the packets per frame of
// each (the top layer is the single-layer stream's size).
var (
	layerRIDs    = [maxLayers]string{"q", "h", "f"}
	layerPackets = [maxLayers]int{1, 3, PacketsPerFrame}
)

// layerState is one video encoding of a publisher.
type layerState struct {
	index   uint8
	track   *webrtc.TrackLocalStaticRTP
	packets int           // per frame
	frames  atomic.Uint64 // frames sent = next frame id
	sent    atomic.Uint64 // packets sent = next packet counter
	seq     uint16
}

// frameBytes is the VP8 frame size of a layer: its packets' payloads minus one descriptor byte
// each.
func frameBytes(packets int) int { return packets * (VideoPayloadSize - 1) }

// PublishOptions configures Publish.
type PublishOptions struct {
	// Index goes into every marker so that a viewer can check which publisher it receives.
	Index uint16
	// Simulcast sends three RID layers (q, h, f: 1, 3 and 9 packets per frame) in one video
	// transceiver instead of one layer; the API must come from ClientAPI with Simulcast.
	Simulcast bool
	// Bearer is sent as "Authorization: Bearer …" if not empty.
	Bearer string
}

// Publisher is the synthetic WHIP publisher. Every video frame carries a frame marker (see
// marker.go) and every payload, audio and video, ends with a trailer holding a per-track
// counter and the send time, so viewers can measure loss and latency per frame whatever the
// server does to packets, and per packet when it forwards them unchanged. Start it with
// Publish; Close stops its goroutines and waits.
type Publisher struct {
	pc     *webrtc.PeerConnection
	sess   session
	index  uint16
	layers []*layerState
	audio  *webrtc.TrackLocalStaticRTP
	// Simulcast packets carry the mid and RID header extensions (pion's TrackLocalStaticRTP
	// does not add them); 0 when not negotiated.
	midID, ridID uint8
	mid          string

	connected chan struct{} // closed when the PeerConnection is connected
	audioSent atomic.Uint64
	plis      atomic.Uint64
	keyframes atomic.Uint64

	keyNow chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// Publish connects a publisher to whipURL and starts sending at once. The caller must Close it.
func Publish(ctx context.Context, api *webrtc.API, client *http.Client, whipURL string, o PublishOptions) (*Publisher, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &Publisher{pc: pc, index: o.Index, keyNow: make(chan struct{}, 1), stop: make(chan struct{}), connected: make(chan struct{})}
	var connOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			connOnce.Do(func() { close(p.connected) })
		}
	})
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	if o.Simulcast {
		for i := maxLayers - 1; i >= 0; i-- { // the top layer first: it is the base encoding
			tr, err := webrtc.NewTrackLocalStaticRTP(vp8, "video", "sfubench", webrtc.WithRTPStreamID(layerRIDs[i]))
			if err != nil {
				_ = pc.Close()
				return nil, err
			}
			p.layers = append(p.layers, &layerState{index: uint8(i), track: tr, packets: layerPackets[i]})
		}
	} else {
		tr, _ := webrtc.NewTrackLocalStaticRTP(vp8, "video", "sfubench")
		p.layers = []*layerState{{index: 0, track: tr, packets: PacketsPerFrame}}
	}
	p.audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "sfubench")
	vtx, err := pc.AddTransceiverFromTrack(p.layers[0].track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	for _, l := range p.layers[1:] {
		if err := vtx.Sender().AddEncoding(l.track); err != nil {
			_ = pc.Close()
			return nil, err
		}
	}
	atx, err := pc.AddTransceiverFromTrack(p.audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	if p.sess, _, err = signal(ctx, client, pc, whipURL, o.Bearer); err != nil {
		_ = pc.Close()
		return nil, err
	}
	if o.Simulcast {
		for _, e := range vtx.Sender().GetParameters().HeaderExtensions {
			switch e.URI {
			case sdp.SDESMidURI:
				p.midID = uint8(e.ID)
			case sdp.SDESRTPStreamIDURI:
				p.ridID = uint8(e.ID)
			}
		}
		p.mid = vtx.Mid()
	}
	for _, s := range []*webrtc.RTPSender{vtx.Sender(), atx.Sender()} {
		p.wg.Go(func() { p.readRTCP(s) })
	}
	p.wg.Go(p.sendVideo)
	p.wg.Go(p.sendAudio)
	return p, nil
}

func (p *Publisher) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.plis.Add(1)
				select {
				case p.keyNow <- struct{}{}:
				default:
				}
			}
		}
	}
}

// counters is a snapshot of what a publisher has sent: per layer frames and packets, audio
// packets.
type counters struct {
	frames, packets [maxLayers]uint64
	audio           uint64
}

func (p *Publisher) counters() counters {
	var c counters
	for _, l := range p.layers {
		c.frames[l.index] = l.frames.Load()
		c.packets[l.index] = l.sent.Load()
	}
	c.audio = p.audioSent.Load()
	return c
}

// PLIs returns the keyframe requests received and the keyframes sent.
func (p *Publisher) PLIs() (plis, keyframes uint64) { return p.plis.Load(), p.keyframes.Load() }

// Packet counters in the trailer carry the layer in their top byte.
const (
	counterLayerShift = 56
	counterMask       = 1<<counterLayerShift - 1
)

func (p *Publisher) sendVideo() {
	tick := time.NewTicker(time.Second / FrameRate)
	defer tick.Stop()
	var ts uint32
	var lastKey time.Time
	pending := false
	frame := make([]byte, frameBytes(PacketsPerFrame))
	payload := make([]byte, VideoPayloadSize)
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		select {
		case <-p.keyNow:
			pending = true // answered as soon as MinKeyframeGap allows, never dropped
		default:
		}
		key := now.Sub(lastKey) >= KeyframeEvery || (pending && now.Sub(lastKey) >= MinKeyframeGap)
		if key {
			lastKey, pending = now, false
			p.keyframes.Add(1)
		}
		for _, l := range p.layers {
			f := frame[:frameBytes(l.packets)]
			buildFrame(f, key, frameMarker{Publisher: p.index, Layer: l.index, Frame: l.frames.Load(), Sent: time.Now().UnixNano()})
			for i := range l.packets {
				payload[0] = 0
				if i == 0 {
					payload[0] = 0x10 // VP8 descriptor: S=1, PID=0
				}
				copy(payload[1:], f[i*(VideoPayloadSize-1):])
				n := l.sent.Load() | uint64(l.index)<<counterLayerShift
				binary.BigEndian.PutUint64(payload[len(payload)-16:], n)
				binary.BigEndian.PutUint64(payload[len(payload)-8:], uint64(time.Now().UnixNano()))
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: l.seq, Timestamp: ts,
					Marker: i == l.packets-1}, Payload: payload}
				if p.midID != 0 && p.ridID != 0 {
					pkt.Extension, pkt.ExtensionProfile = true, 0xBEDE
					_ = pkt.SetExtension(p.midID, []byte(p.mid))
					_ = pkt.SetExtension(p.ridID, []byte(layerRIDs[l.index]))
				}
				_ = l.track.WriteRTP(&pkt)
				l.sent.Add(1)
				l.seq++
			}
			l.frames.Add(1)
		}
		ts += ticksPerFrame
	}
}

func (p *Publisher) sendAudio() {
	tick := time.NewTicker(AudioInterval)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	payload := make([]byte, AudioPayloadSize)
	payload[0] = 0xfc
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		n := p.audioSent.Load()
		binary.BigEndian.PutUint64(payload[len(payload)-16:], n)
		binary.BigEndian.PutUint64(payload[len(payload)-8:], uint64(time.Now().UnixNano()))
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts}, Payload: payload}
		_ = p.audio.WriteRTP(&pkt)
		p.audioSent.Add(1)
		seq++
		ts += 960
	}
}

// Close stops sending, closes the PeerConnection, deletes the session (best effort) and waits
// for the publisher's goroutines. Idempotent.
func (p *Publisher) Close() error {
	p.once.Do(func() {
		close(p.stop)
		_ = p.pc.Close()
		p.wg.Wait()
		p.sess.delete()
	})
	return nil
}

// Viewer is one synthetic WHEP viewer. It reads raw RTP from each track; for audio and (in
// per-packet mode) video it records, per trailer counter, the one-way latency of the packet
// that carried it; for video it reassembles frames and records bytes and latency per frame.
type Viewer struct {
	pc       *webrtc.PeerConnection
	sess     session
	postAt   time.Time
	firstAt  atomic.Int64  // unix ns of the first media packet
	firstKey atomic.Int64  // unix ns of the first video keyframe start
	rx       atomic.Uint64 // RTP packets received, every track
	tracks   sync.WaitGroup
	mu       sync.Mutex
	closed   bool // guarded by mu: no new track readers
	hasVideo bool // guarded by mu: a video track reader started

	// written by the track readers, read after Close
	lat    [1 + maxLayers][]int32 // [audio, video layer 0..2]: latency in µs by counter; 0 = not received
	frames *frameReader
}

// View connects a viewer to whepURL. The caller must Close it.
func View(ctx context.Context, api *webrtc.API, client *http.Client, whepURL, bearer string) (*Viewer, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &Viewer{pc: pc, frames: newFrameReader()}
	v.frames.onKey = func(at int64) { v.firstKey.CompareAndSwap(0, at) }
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, err
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.closed {
			return
		}
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		if video && v.hasVideo {
			return // one video track per viewer; the frame reader is not shared
		}
		v.hasVideo = v.hasVideo || video
		v.tracks.Go(func() { v.read(tr, video) })
	})
	v.sess, v.postAt, err = signal(ctx, client, pc, whepURL, bearer)
	if err != nil {
		_ = v.Close()
		return nil, err
	}
	return v, nil
}

// Close closes the PeerConnection, waits for the track readers and deletes the session (best
// effort). Idempotent.
func (v *Viewer) Close() error {
	v.mu.Lock()
	already := v.closed
	v.closed = true
	v.mu.Unlock()
	_ = v.pc.Close()
	v.tracks.Wait()
	if !already {
		v.sess.delete()
	}
	return nil
}

// joined reports whether the viewer has received a video keyframe.
func (v *Viewer) joined() bool { return v.firstKey.Load() != 0 }

func (v *Viewer) read(tr *webrtc.TrackRemote, video bool) {
	buf := make([]byte, 1600)
	if video {
		defer v.frames.flush()
	}
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		at := time.Now().UnixNano()
		v.rx.Add(1)
		v.firstAt.CompareAndSwap(0, at)
		pkt := buf[:n]
		payload, ok := rtpPayload(pkt)
		if !ok {
			continue
		}
		if video {
			v.frames.add(binary.BigEndian.Uint16(pkt[2:]), binary.BigEndian.Uint32(pkt[4:]), pkt[1]&0x80 != 0, payload, at)
		}
		if len(payload) < trailerSize {
			continue
		}
		ctr := binary.BigEndian.Uint64(payload[len(payload)-16:])
		sent := int64(binary.BigEndian.Uint64(payload[len(payload)-8:]))
		idx := 0
		if video {
			idx = 1 + int(ctr>>counterLayerShift)
			ctr &= counterMask
		}
		if ctr > 1<<24 || idx >= len(v.lat) {
			continue // not a trailer (a re-packetized payload ends anywhere)
		}
		l := v.lat[idx]
		if int(ctr) >= len(l) {
			l = append(l, make([]int32, int(ctr)+1-len(l)+1024)...)
			v.lat[idx] = l
		}
		us := (at - sent) / 1000
		l[ctr] = int32(max(1, min(us, 1<<31-1)))
	}
}

// rtpPayload returns the payload of a raw RTP packet (after CSRCs and header extensions,
// before padding).
func rtpPayload(b []byte) ([]byte, bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > 0 {
		end -= int(b[end-1])
	}
	if off > end {
		return nil, false
	}
	return b[off:end], true
}
