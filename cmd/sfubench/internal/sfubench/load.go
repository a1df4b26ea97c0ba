package sfubench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
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

// ClientAPI returns the pion API the load generator uses for its publisher and viewers: VP8 and
// Opus only, no interceptors (viewers never NACK, so loss is not hidden by retransmission and
// the client costs little), loopback IPv4 only, and the given SRTP profile.
func ClientAPI(srtp string) (*webrtc.API, error) {
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
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	switch srtp {
	case "", SRTPDefault:
	case SRTPGCM128:
		se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM)
	case SRTPCM:
		se.SetSRTPProtectionProfiles(dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	default:
		return nil, fmt.Errorf("%w: unknown srtp profile %q", ErrConfig, srtp)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(&interceptor.Registry{}),
		webrtc.WithSettingEngine(se)), nil
}

// signal creates pc's offer, waits for ICE gathering, POSTs it to url and applies the answer.
// It returns the session Location and the time just before the POST.
func signal(ctx context.Context, client *http.Client, pc *webrtc.PeerConnection, url string) (string, time.Time, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", time.Time{}, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", time.Time{}, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", time.Time{}, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer sfubench")
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return "", start, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", start, err
	}
	if res.StatusCode != http.StatusCreated {
		return "", start, fmt.Errorf("%w: POST %s: %s: %.200s", ErrSignal, url, res.Status, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return "", start, err
	}
	return res.Header.Get("Location"), start, nil
}

// Publisher is the synthetic WHIP publisher. Every payload ends with a trailer holding a
// per-track counter and the send time, so viewers can measure loss and latency whatever the
// SFU does to headers. Start it with Publish; Close stops its goroutines and waits.
type Publisher struct {
	pc    *webrtc.PeerConnection
	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP

	videoSent atomic.Uint64 // next video counter = video packets sent
	audioSent atomic.Uint64
	plis      atomic.Uint64
	keyframes atomic.Uint64

	keyNow chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// Publish connects a publisher to whipURL and starts sending at once. The caller must Close it.
func Publish(ctx context.Context, api *webrtc.API, client *http.Client, whipURL string) (*Publisher, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &Publisher{pc: pc, keyNow: make(chan struct{}, 1), stop: make(chan struct{})}
	p.video, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "sfubench")
	p.audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "sfubench")
	var senders []*webrtc.RTPSender
	for _, tr := range []webrtc.TrackLocal{p.video, p.audio} {
		tx, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			_ = pc.Close()
			return nil, err
		}
		senders = append(senders, tx.Sender())
	}
	if _, _, err := signal(ctx, client, pc, whipURL); err != nil {
		_ = pc.Close()
		return nil, err
	}
	for _, s := range senders {
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

// Counters returns the video and audio packets sent so far (the next counters).
func (p *Publisher) Counters() (video, audio uint64) {
	return p.videoSent.Load(), p.audioSent.Load()
}

// PLIs returns the keyframe requests received and the keyframes sent.
func (p *Publisher) PLIs() (plis, keyframes uint64) { return p.plis.Load(), p.keyframes.Load() }

func (p *Publisher) sendVideo() {
	tick := time.NewTicker(time.Second / FrameRate)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	var lastKey time.Time
	pending := false
	payload := make([]byte, VideoPayloadSize)
	for frame := 0; ; frame++ {
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
		for i := range PacketsPerFrame {
			clear(payload[:4])
			if i == 0 {
				payload[0] = 0x10 // VP8 descriptor: S=1, PID=0
				if key {
					payload[1] = 0x00 // frame tag: P=0, key frame
				} else {
					payload[1] = 0x01 // P=1, inter frame
				}
			}
			n := p.videoSent.Load()
			binary.BigEndian.PutUint64(payload[len(payload)-16:], n)
			binary.BigEndian.PutUint64(payload[len(payload)-8:], uint64(time.Now().UnixNano()))
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts,
				Marker: i == PacketsPerFrame-1}, Payload: payload}
			_ = p.video.WriteRTP(&pkt)
			p.videoSent.Add(1)
			seq++
		}
		ts += 90000 / FrameRate
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

// Close stops sending, closes the PeerConnection and waits for the publisher's goroutines.
// Idempotent.
func (p *Publisher) Close() error {
	p.once.Do(func() {
		close(p.stop)
		_ = p.pc.Close()
		p.wg.Wait()
	})
	return nil
}

// Viewer is one synthetic WHEP viewer. It reads raw RTP from each track and records, per
// counter, the one-way latency of the packet that carried it.
type Viewer struct {
	pc       *webrtc.PeerConnection
	postAt   time.Time
	firstAt  atomic.Int64 // unix ns of the first media packet
	firstKey atomic.Int64 // unix ns of the first video keyframe start
	tracks   sync.WaitGroup
	mu       sync.Mutex
	closed   bool // guarded by mu: no new track readers

	// written by the track readers, read after Close
	lat [2][]int32 // [audio, video]: latency in µs by counter; 0 = not received
}

// View connects a viewer to whepURL. The caller must Close it.
func View(ctx context.Context, api *webrtc.API, client *http.Client, whepURL string) (*Viewer, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &Viewer{pc: pc}
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
		idx := 0
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			idx = 1
		}
		v.tracks.Go(func() { v.read(tr, idx) })
	})
	_, v.postAt, err = signal(ctx, client, pc, whepURL)
	if err != nil {
		_ = v.Close()
		return nil, err
	}
	return v, nil
}

// Close closes the PeerConnection and waits for the track readers. Idempotent.
func (v *Viewer) Close() error {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	_ = v.pc.Close()
	v.tracks.Wait()
	return nil
}

// joined reports whether the viewer has received a video keyframe.
func (v *Viewer) joined() bool { return v.firstKey.Load() != 0 }

func (v *Viewer) read(tr *webrtc.TrackRemote, idx int) {
	buf := make([]byte, 1600)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		at := time.Now().UnixNano()
		payload, ok := rtpPayload(buf[:n])
		if !ok || len(payload) < trailerSize {
			continue
		}
		ctr := binary.BigEndian.Uint64(payload[len(payload)-16:])
		sent := int64(binary.BigEndian.Uint64(payload[len(payload)-8:]))
		v.firstAt.CompareAndSwap(0, at)
		if idx == 1 && len(payload) > 1 && payload[0]&0x10 != 0 && payload[1]&0x01 == 0 {
			v.firstKey.CompareAndSwap(0, at)
		}
		if ctr > 1<<24 {
			continue // not ours
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
