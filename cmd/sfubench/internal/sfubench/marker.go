package sfubench

import (
	"encoding/binary"
)

// Frame markers. A server may forward RTP packets unchanged (gatehouse, the naive forwarder) or
// rebuild each VP8 frame and packetize it again with its own payload size (MediaMTX uses
// 1,188-byte payloads). A trailer at the end of every packet only survives the first kind, so
// every video frame also carries one marker at the start of its VP8 data, right after the frame
// tag and the keyframe header area: a re-packetizer copies frame data byte for byte and only
// rewrites payload descriptors, so the marker is still the first bytes of the frame after
// reassembly. The receiver reassembles frames (VP8 descriptor S bit with partition 0 starts a
// frame, the RTP marker bit ends it, packets of a frame share one RTP timestamp) and reads it.
const (
	// markerOffset is where the marker starts in the VP8 frame: after the 3-byte frame tag and
	// the 7-byte keyframe start code and size, which a decoder-aware server may look at.
	markerOffset = 10
	// markerSize is magic(4) + publisher(2) + layer(1) + flags(1) + frame id(8) + send time(8)
	// + frame length(4).
	markerSize = 28
	// markerMagic opens every marker ("SFBM").
	markerMagic = 0x5346424d
	// ticksPerFrame is the RTP timestamp step between two video frames (90 kHz clock).
	ticksPerFrame = 90000 / FrameRate
)

// frameMarker is what the publisher writes into each video frame.
type frameMarker struct {
	Publisher uint16 // index of the publisher in the step (rooms have many)
	Layer     uint8  // simulcast layer index (0 without simulcast)
	Frame     uint64 // per publisher and layer, from 0
	Sent      int64  // Unix ns just before the frame's first packet was written
	Length    uint32 // frame length in bytes (VP8 data, without payload descriptors)
}

func (m frameMarker) put(b []byte) {
	binary.BigEndian.PutUint32(b[0:], markerMagic)
	binary.BigEndian.PutUint16(b[4:], m.Publisher)
	b[6] = m.Layer
	b[7] = 0
	binary.BigEndian.PutUint64(b[8:], m.Frame)
	binary.BigEndian.PutUint64(b[16:], uint64(m.Sent))
	binary.BigEndian.PutUint32(b[24:], m.Length)
}

// readFrameMarker reads the marker of a VP8 frame's first bytes (the frame data of the packet
// that starts the frame, after its payload descriptor).
func readFrameMarker(frame []byte) (frameMarker, bool) {
	if len(frame) < markerOffset+markerSize {
		return frameMarker{}, false
	}
	b := frame[markerOffset:]
	if binary.BigEndian.Uint32(b) != markerMagic {
		return frameMarker{}, false
	}
	return frameMarker{
		Publisher: binary.BigEndian.Uint16(b[4:]),
		Layer:     b[6],
		Frame:     binary.BigEndian.Uint64(b[8:]),
		Sent:      int64(binary.BigEndian.Uint64(b[16:])),
		Length:    binary.BigEndian.Uint32(b[24:]),
	}, true
}

// buildFrame fills frame (its length is the frame size) with a VP8-looking frame: frame tag,
// keyframe start code and 640×360 for keyframes, the marker, zeros.
func buildFrame(frame []byte, key bool, m frameMarker) {
	clear(frame)
	if key {
		frame[0] = 0x10 // P=0 (key frame), show_frame=1
		frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(frame[6:], 640)
		binary.LittleEndian.PutUint16(frame[8:], 360)
	} else {
		frame[0] = 0x11 // P=1 (inter frame), show_frame=1
	}
	m.Length = uint32(len(frame))
	m.put(frame[markerOffset:])
}

// vp8Descriptor parses the VP8 payload descriptor (RFC 7741 §4.2) at the start of payload and
// returns its length and whether this packet starts a frame (S=1 and partition index 0).
func vp8Descriptor(payload []byte) (n int, start, ok bool) {
	if len(payload) < 1 {
		return 0, false, false
	}
	b0 := payload[0]
	n = 1
	if b0&0x80 != 0 { // X: extension byte follows
		if len(payload) < 2 {
			return 0, false, false
		}
		x := payload[1]
		n = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(payload) < n+1 {
				return 0, false, false
			}
			if payload[n]&0x80 != 0 {
				n += 2
			} else {
				n++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			n++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX byte
			n++
		}
	}
	if n > len(payload) {
		return 0, false, false
	}
	return n, b0&0x10 != 0 && b0&0x07 == 0, true
}

// frameAsm collects the packets of one frame (one RTP timestamp).
type frameAsm struct {
	ts          uint32
	marker      frameMarker
	hasMarker   bool
	key         bool
	start, end  bool
	firstSeq    uint16 // of the start packet
	lastSeq     uint16 // of the end packet
	packets     int
	bytes       int // frame data bytes (payloads without descriptors)
	completedAt int64
}

func (f *frameAsm) complete() bool {
	return f.start && f.end && f.packets == int(f.lastSeq-f.firstSeq)+1
}

// frameRecord is what a receiver keeps per frame id.
type frameRecord struct {
	Bytes   int32 // frame data bytes received
	Latency int32 // µs from send to the last packet, 0 unless the whole frame arrived
}

// frameReader reassembles VP8 frames from one received video track and records, per (layer,
// frame id), the bytes received and the latency of complete frames. Packets of a frame that
// lost its first packet are attributed to a frame id through the RTP timestamp distance from
// the last frame whose marker was read. It is used by one goroutine.
type frameReader struct {
	pending []*frameAsm // frames not yet finished, oldest first; at most maxPending
	anchor  struct {
		ok    bool
		ts    uint32
		frame uint64
		layer uint8
	}
	publisher  int // publisher index from the first marker, -1 until then
	frames     [maxLayers][]frameRecord
	seenLayers [maxLayers]uint64 // complete frames per layer
	wrongPub   uint64            // frames whose marker named another publisher than the first
	firstKey   int64             // Unix ns when the first keyframe start arrived
	onKey      func(at int64)
}

// maxPending bounds the frames kept open while waiting for late packets.
const maxPending = 8

func newFrameReader() *frameReader { return &frameReader{publisher: -1} }

// add takes one received RTP packet's header fields and payload at arrival time at (Unix ns).
func (r *frameReader) add(seq uint16, ts uint32, marker bool, payload []byte, at int64) {
	n, start, ok := vp8Descriptor(payload)
	if !ok {
		return
	}
	data := payload[n:]
	var f *frameAsm
	for _, p := range r.pending {
		if p.ts == ts {
			f = p
			break
		}
	}
	if f == nil {
		if len(r.pending) == maxPending {
			r.finish(r.pending[0])
			r.pending = r.pending[1:]
		}
		f = &frameAsm{ts: ts}
		r.pending = append(r.pending, f)
	}
	f.packets++
	f.bytes += len(data)
	if start {
		f.start, f.firstSeq = true, seq
		f.key = len(data) > 0 && data[0]&0x01 == 0
		if f.key && r.firstKey == 0 {
			r.firstKey = at
			if r.onKey != nil {
				r.onKey(at)
			}
		}
		if m, ok := readFrameMarker(data); ok {
			f.marker, f.hasMarker = m, true
			r.anchor.ok, r.anchor.ts, r.anchor.frame, r.anchor.layer = true, ts, m.Frame, m.Layer
		}
	}
	if marker {
		f.end, f.lastSeq = true, seq
	}
	if f.complete() {
		f.completedAt = at
		r.finish(f)
		for i, p := range r.pending {
			if p == f {
				r.pending = append(r.pending[:i], r.pending[i+1:]...)
				break
			}
		}
	}
}

// flush finishes every pending frame (call when the track ends).
func (r *frameReader) flush() {
	for _, f := range r.pending {
		r.finish(f)
	}
	r.pending = nil
}

func (r *frameReader) finish(f *frameAsm) {
	id, layer := f.marker.Frame, f.marker.Layer
	if f.hasMarker {
		if r.publisher < 0 {
			r.publisher = int(f.marker.Publisher)
		} else if int(f.marker.Publisher) != r.publisher {
			r.wrongPub++
			return
		}
	} else {
		if !r.anchor.ok {
			return
		}
		d := int64(int32(f.ts-r.anchor.ts)) / ticksPerFrame
		if int64(r.anchor.frame)+d < 0 {
			return
		}
		id, layer = uint64(int64(r.anchor.frame)+d), r.anchor.layer
	}
	if int(layer) >= maxLayers || id > 1<<24 {
		return
	}
	l := r.frames[layer]
	if int(id) >= len(l) {
		l = append(l, make([]frameRecord, int(id)+1-len(l)+256)...)
		r.frames[layer] = l
	}
	rec := &l[id]
	rec.Bytes += int32(f.bytes)
	if f.hasMarker && f.complete() {
		rec.Latency = int32(max(1, min((f.completedAt-f.marker.Sent)/1000, 1<<31-1)))
		r.seenLayers[layer]++
	}
}
