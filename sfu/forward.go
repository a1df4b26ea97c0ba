package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// cacheSize is the number of packets kept per publisher track for NACK answers (a power of two).
const cacheSize = 1024

// packet is one received RTP packet, parsed once and shared read-only by the cache and every
// viewer queue.
type packet struct {
	hdr     rtp.Header
	payload []byte
	key     bool      // starts a keyframe (always true for audio)
	at      time.Time // when it was received, stamped once for every viewer
	up      *upTrack
}

// packetCache is a ring buffer of recent packets indexed by sequence number, shared by all
// viewers of a track for retransmissions.
type packetCache struct {
	mu   sync.RWMutex
	ring [cacheSize]*packet
}

func (c *packetCache) put(p *packet) {
	c.mu.Lock()
	c.ring[p.hdr.SequenceNumber%cacheSize] = p
	c.mu.Unlock()
}

func (c *packetCache) get(seq uint16) *packet {
	c.mu.RLock()
	p := c.ring[seq%cacheSize]
	c.mu.RUnlock()
	if p == nil || p.hdr.SequenceNumber != seq {
		return nil
	}
	return p
}

// slot is one media kind (audio or video) of a stream. It outlives publishers, so viewers bound
// to it keep playing across a publisher reconnect. Readers load up and downs without locks;
// writers hold the stream's lock and replace them.
type slot struct {
	kind  webrtc.RTPCodecType
	codec atomic.Pointer[webrtc.RTPCodecParameters] // the publisher's codec; nil until published
	up    atomic.Pointer[upTrack]                   // the current source's latest track; nil: none
	downs atomic.Pointer[[]*downTrack]
	// layers are the current source's tracks: one, or one per simulcast layer (simulcast.go).
	layers atomic.Pointer[[]*upTrack]
}

func (s *slot) viewers() []*downTrack {
	if d := s.downs.Load(); d != nil {
		return *d
	}
	return nil
}

// afterFunc schedules f to run in its own goroutine after d, like time.AfterFunc; the returned
// function cancels it and reports whether it did.
type afterFunc func(d time.Duration, f func()) (stop func() bool)

func realAfter(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// upTrack is one publisher track. Its reader goroutine (run) parses each packet once, stores it
// in the cache and offers it to every viewer queue without ever blocking.
type upTrack struct {
	slot  *slot
	track *webrtc.TrackRemote
	codec webrtc.RTPCodecParameters
	pli   func()            // sends one PLI upstream
	isKey func([]byte) bool // nil for audio: every packet is a start point
	now   func() time.Time  // the clock for the PLI throttle and packet stamps
	after afterFunc         // schedules a deferred PLI
	cache packetCache
	rid   string // the simulcast layer's RID; "": no simulcast
	owner any    // the PeerConnection's owner (session or pull attempt): layers of one source
	// received and malformed count this track's packets; only run's goroutine writes them.
	received, malformed atomic.Uint64

	kmu       sync.Mutex // guards the keyframe-request state below
	lastPLI   time.Time  // when the last PLI went out; zero: never
	pending   bool       // a request arrived within KeyframeInterval; the timer will send it
	stopTimer func() bool
	ended     bool // the track ended: no more PLIs

	bps       atomic.Int64 // measured bitrate, bit/s; 0 until measured
	rateAt    time.Time    // run's goroutine: start of the bitrate window
	rateBytes int          // run's goroutine: bytes in the window
	gopMu     sync.Mutex   // guards gop and gopBytes
	gop       []*packet    // the last keyframe's packets and what followed (video)
	gopBytes  int
}

func newUpTrack(sl *slot, pc *webrtc.PeerConnection, t *webrtc.TrackRemote) *upTrack {
	u := &upTrack{slot: sl, track: t, codec: t.Codec(), rid: t.RID(), now: time.Now, after: realAfter}
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		u.isKey = keyframeFunc(u.codec.MimeType)
	}
	ssrc := uint32(t.SSRC())
	u.pli = func() { _ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}) }
	return u
}

// requestKeyframe sends a PLI to the publisher now, or, if one went out less than
// KeyframeInterval ago, makes the request pending: a timer sends one PLI when the interval has
// passed, however many requests arrive meanwhile. So the publisher sees at most one PLI per
// KeyframeInterval and no request is lost. Safe for concurrent use.
func (u *upTrack) requestKeyframe() {
	if u.isKey == nil {
		return
	}
	u.kmu.Lock()
	if u.ended || u.pending {
		u.kmu.Unlock()
		return
	}
	now := u.now()
	if wait := KeyframeInterval - now.Sub(u.lastPLI); !u.lastPLI.IsZero() && wait > 0 {
		u.pending = true
		u.stopTimer = u.after(wait, u.sendPending)
		u.kmu.Unlock()
		return
	}
	u.lastPLI = now
	u.kmu.Unlock()
	u.pli()
}

// sendPending is the deferred-request timer: it sends the pending PLI unless the track ended.
func (u *upTrack) sendPending() {
	u.kmu.Lock()
	if u.ended || !u.pending {
		u.kmu.Unlock()
		return
	}
	u.pending, u.stopTimer = false, nil
	u.lastPLI = u.now()
	u.kmu.Unlock()
	u.pli()
}

// end stops keyframe requests and cancels a pending one. Idempotent.
func (u *upTrack) end() {
	u.kmu.Lock()
	u.ended, u.pending = true, false
	if u.stopTimer != nil {
		u.stopTimer()
		u.stopTimer = nil
	}
	u.kmu.Unlock()
}

// run reads the track until it ends (the publisher's PeerConnection closed), then cancels any
// pending keyframe request.
func (u *upTrack) run() {
	defer u.end()
	buf := make([]byte, 1500)
	for {
		n, _, err := u.track.Read(buf)
		if err != nil {
			return
		}
		u.handle(buf[:n])
	}
}

// handle parses one packet and fans it out. Padding-only packets (bandwidth probes) are dropped.
func (u *upTrack) handle(raw []byte) {
	b := make([]byte, len(raw))
	copy(b, raw)
	var pkt rtp.Packet
	if err := pkt.Unmarshal(b); err != nil || len(pkt.Payload) == 0 {
		u.malformed.Add(1)
		return
	}
	u.received.Add(1)
	p := &packet{hdr: pkt.Header, payload: pkt.Payload, key: true, at: u.now(), up: u}
	p.hdr.Padding, p.hdr.PaddingSize = false, 0
	p.hdr.Extension, p.hdr.Extensions, p.hdr.ExtensionProfile = false, nil, 0
	if u.isKey != nil {
		p.key = u.isKey(p.payload)
		u.measure(p.at, len(raw))
		u.keep(p, len(raw))
	}
	u.cache.put(p)
	if !u.slot.isSource(u) {
		return // replaced by a newer publisher; this one is closing
	}
	for _, d := range u.slot.viewers() {
		if d.wants(u) {
			d.push(p)
		}
	}
}

// binding is what pion negotiated for one viewer: where to write and with which SSRC and PT.
type binding struct {
	ws   webrtc.TrackLocalWriter
	ssrc uint32
	pt   uint8
	// absID is the viewer's negotiated abs-send-time extension ID (0: none). Each packet
	// carries the time it leaves, so Chromium's receive-side estimator, which needs it for a
	// REMB worth the name, measures this path rather than the publisher's.
	absID uint8
}

// downTrack is one viewer's copy of a slot: a webrtc.TrackLocal whose Bind picks the viewer's
// payload type for the publisher's codec, plus a bounded queue drained by its own writer
// goroutine (run), so a slow viewer only ever delays itself. The writer rewrites SSRC, payload
// type, sequence numbers and timestamps so the viewer sees one continuous stream across
// publisher reconnects and dropped runs, and answers NACKs from the publisher track's cache.
type downTrack struct {
	owner    *session
	slot     *slot
	codec    webrtc.RTPCodecParameters // the publisher codec this viewer negotiated
	id       string
	streamID string
	queue    chan *packet
	nacks    chan []uint16
	done     chan struct{}
	stopOnce sync.Once
	bound    atomic.Pointer[binding]
	active   atomic.Bool // the viewer's transport is up; packets before that are lost anyway
	overflow atomic.Bool // the queue overflowed: restart at the next keyframe
	// queueFull and notConnected count the packets push dropped (rare: the publisher's reader
	// writes them only then).
	queueFull, notConnected atomic.Uint64

	now    func() time.Time
	picker layerPicker
	selMu  sync.Mutex                // serialises changes of sel
	sel    atomic.Pointer[selection] // the simulcast layer followed; never nil

	// writer-goroutine state
	waitKey  bool
	started  bool
	sent     bool
	gen      *upTrack // the publisher track the current mapping belongs to
	seqDelta uint16   // viewer seq = source seq + seqDelta
	tsDelta  uint32   // viewer ts = source ts + tsDelta
	fromSeq  uint16   // first source seq sent with the current mapping
	lastSeq  uint16
	lastTS   uint32
	lastAt   time.Time
	// forwarded counts the packets written; only the writer goroutine writes it, next to the
	// state above that it writes for every packet anyway.
	forwarded atomic.Uint64
}

func newDownTrack(sl *slot, codec webrtc.RTPCodecParameters, id, streamID string, queue int) *downTrack {
	d := &downTrack{
		now:      time.Now,
		slot:     sl,
		codec:    codec,
		id:       id,
		streamID: streamID,
		queue:    make(chan *packet, queue),
		nacks:    make(chan []uint16, 16),
		done:     make(chan struct{}),
		waitKey:  sl.kind == webrtc.RTPCodecTypeVideo,
	}
	d.sel.Store(&selection{})
	d.repick()
	return d
}

// Bind implements webrtc.TrackLocal: it chooses the viewer's payload type for our codec.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var best *webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		if !codecCompatible(d.codec.RTPCodecCapability, c.RTPCodecCapability) {
			continue
		}
		if best == nil || strings.EqualFold(c.SDPFmtpLine, d.codec.SDPFmtpLine) {
			best = &c
		}
	}
	if best == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	b := &binding{ws: ctx.WriteStream(), ssrc: uint32(ctx.SSRC()), pt: uint8(best.PayloadType)}
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == sdp.ABSSendTimeURI {
			b.absID = uint8(e.ID)
		}
	}
	d.bound.Store(b)
	return *best, nil
}

// Unbind implements webrtc.TrackLocal.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(nil)
	return nil
}

// ID implements webrtc.TrackLocal.
func (d *downTrack) ID() string { return d.id }

// RID implements webrtc.TrackLocal.
func (d *downTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (d *downTrack) StreamID() string { return d.streamID }

// Kind implements webrtc.TrackLocal.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.slot.kind }

// push offers p to the viewer's queue without blocking. On overflow the packet is dropped, the
// writer restarts at the next keyframe and a (throttled) keyframe request goes upstream.
func (d *downTrack) push(p *packet) {
	if !d.active.Load() {
		d.notConnected.Add(1)
		return
	}
	select {
	case d.queue <- p:
	default:
		d.queueFull.Add(1)
		if !d.overflow.Swap(true) {
			d.requestKeyframe()
		}
	}
}

// activate starts delivery once the viewer's transport is connected. A video viewer starts
// from its layer's keyframe cache (replay); only when that is empty does it ask for a keyframe.
func (d *downTrack) activate() {
	if d.active.Swap(true) || d.slot.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	if u := d.source(); u != nil && len(u.gopSnapshot()) == 0 {
		u.requestKeyframe()
	}
}

// stop ends the writer goroutine. Idempotent.
func (d *downTrack) stop() { d.stopOnce.Do(func() { close(d.done) }) }

// run is the writer goroutine; it returns after stop.
func (d *downTrack) run() {
	for {
		select {
		case <-d.done:
			return
		case p := <-d.queue:
			d.forward(p)
		case seqs := <-d.nacks:
			d.retransmit(seqs)
		}
	}
}

// forward rewrites and writes one packet, applying the keyframe gate.
func (d *downTrack) forward(p *packet) {
	if !strings.EqualFold(p.up.codec.MimeType, d.codec.MimeType) {
		return // the publisher came back with another codec; this viewer is being closed
	}
	video := d.slot.kind == webrtc.RTPCodecTypeVideo
	if d.overflow.Swap(false) && video {
		d.waitKey = true
	}
	if r := p.up.rid; r != "" {
		if s := d.sel.Load(); r != s.cur {
			// Another layer: only the one being switched to, from its keyframe (or, for a
			// viewer that has sent nothing yet, from its keyframe cache).
			if r != s.next {
				return
			}
			if !p.key {
				if d.started || !d.replay(p) {
					return
				}
				d.commit(r)
				return
			}
			d.commit(r)
		}
	}
	if video && !d.started && !p.key && d.replay(p) {
		return
	}
	switch {
	case p.up != d.gen:
		// A new publisher track: video restarts at a keyframe, then seq and ts continue from
		// what this viewer last saw.
		if d.slot.kind == webrtc.RTPCodecTypeVideo && !p.key {
			d.waitKey = true
			return
		}
		d.rebase(p, true)
	case d.waitKey:
		if !p.key {
			return
		}
		d.rebase(p, false) // close the gap left by dropped packets
	case d.beforeMapping(p.hdr.SequenceNumber):
		// From before the current mapping's first packet (a packet of the layer switched to,
		// older than its keyframe: reordered or resent): its seq would be one the viewer
		// already got from the previous layer or publisher.
		return
	}
	d.waitKey = false
	d.write(p, p.hdr.SequenceNumber+d.seqDelta)
}

// rebase maps p's source seq to lastSeq+1; for a new publisher track it also moves the
// timestamp on by the time between the two packets' arrival (at least one tick).
func (d *downTrack) rebase(p *packet, newTrack bool) {
	if !d.started {
		d.started = true
		d.seqDelta, d.tsDelta = 0, 0
	} else {
		d.seqDelta = d.lastSeq + 1 - p.hdr.SequenceNumber
		if newTrack {
			ticks := uint32(1)
			if el := p.at.Sub(d.lastAt); el > 0 && p.up.codec.ClockRate > 0 {
				ticks = max(1, uint32(el.Seconds()*float64(p.up.codec.ClockRate)))
			}
			d.tsDelta = d.lastTS + ticks - p.hdr.Timestamp
		}
	}
	d.gen = p.up
	d.fromSeq = p.hdr.SequenceNumber
	d.lastAt = p.at
}

// beforeMapping reports whether source seq src precedes the current mapping's first packet
// (fromSeq): mapped, it lies behind the last seq sent, further back than the mapping reaches.
// Unlike int16(src-fromSeq) < 0 it holds however many packets the mapping has carried.
func (d *downTrack) beforeMapping(src uint16) bool {
	if !d.sent {
		return false
	}
	v := src + d.seqDelta
	return int16(v-d.lastSeq) < 0 && d.lastSeq-v > d.lastSeq-(d.fromSeq+d.seqDelta)
}

func (d *downTrack) write(p *packet, seq uint16) {
	b := d.bound.Load()
	if b == nil {
		return
	}
	hdr := p.hdr
	hdr.SSRC = b.ssrc
	hdr.PayloadType = b.pt
	hdr.SequenceNumber = seq
	hdr.Timestamp = p.hdr.Timestamp + d.tsDelta
	// The publisher's extensions (its MID, RID, transport-wide sequence numbers) use the
	// publisher's IDs and mean nothing to the viewer.
	hdr.Extension, hdr.Extensions, hdr.ExtensionProfile = false, nil, 0
	if b.absID != 0 {
		if ext, err := rtp.NewAbsSendTimeExtension(time.Now()).Marshal(); err == nil {
			_ = hdr.SetExtension(b.absID, ext)
		}
	}
	if !d.sent || int16(seq-d.lastSeq) > 0 {
		d.sent = true
		d.lastSeq, d.lastTS = seq, hdr.Timestamp
		d.lastAt = p.at
	}
	if _, err := b.ws.WriteRTP(&hdr, p.payload); err == nil {
		d.forwarded.Add(1)
	}
}

// retransmit answers a viewer NACK from the publisher track's shared cache. Only packets sent
// under the current mapping can be found.
func (d *downTrack) retransmit(seqs []uint16) {
	if d.gen == nil {
		return
	}
	for _, v := range seqs {
		src := v - d.seqDelta
		if d.beforeMapping(src) || int16(v-d.lastSeq) > 0 {
			continue
		}
		if p := d.gen.cache.get(src); p != nil {
			d.write(p, v)
		} else if d.gen.rid != "" {
			// Lost before it reached us, on a simulcast layer: OBS does not answer NACKs on its
			// lower layers (OBS #13161), so a keyframe (throttled per layer) repairs it sooner.
			d.gen.requestKeyframe()
			return
		}
	}
}

// nack queues a viewer's NACK for the writer goroutine; dropped if the writer is busy.
func (d *downTrack) nack(seqs []uint16) {
	select {
	case d.nacks <- seqs:
	default:
	}
}

// handleRTCP reads one viewer sender's RTCP until the sender closes: NACKs are answered from the
// cache, PLI and FIR become throttled keyframe requests to the publisher.
func (d *downTrack) handleRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		repick := false
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.ReceiverEstimatedMaximumBitrate, *rtcp.ReceiverReport:
				repick = d.feedback(p) || repick
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.requestKeyframe()
			case *rtcp.TransportLayerNack:
				var seqs []uint16
				for _, n := range p.Nacks {
					seqs = append(seqs, n.PacketList()...)
				}
				if len(seqs) > 0 {
					d.nack(seqs)
				}
			}
		}
		if repick {
			d.repick()
		}
	}
}
