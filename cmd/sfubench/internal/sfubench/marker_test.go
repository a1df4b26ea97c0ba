package sfubench

import (
	"encoding/binary"
	"testing"
)

// publisherPackets packetizes frames the way Publisher.sendVideo does: 1-byte descriptors,
// VideoPayloadSize payloads, a trailer (counter, send time) at the end of each payload, the RTP
// marker bit on each frame's last packet. It returns raw RTP packets.
func publisherPackets(frames int, keyEvery int) [][]byte {
	var out [][]byte
	var seq uint16
	var ctr uint64
	frame := make([]byte, frameBytes(PacketsPerFrame))
	for id := range frames {
		buildFrame(frame, id%keyEvery == 0, frameMarker{Publisher: 7, Frame: uint64(id), Sent: int64(1000 + id)})
		for i := range PacketsPerFrame {
			payload := make([]byte, VideoPayloadSize)
			if i == 0 {
				payload[0] = 0x10
			}
			copy(payload[1:], frame[i*(VideoPayloadSize-1):])
			binary.BigEndian.PutUint64(payload[len(payload)-16:], ctr)
			binary.BigEndian.PutUint64(payload[len(payload)-8:], uint64(1000+id))
			ctr++
			out = append(out, rawRTP(seq, uint32(id*ticksPerFrame), i == PacketsPerFrame-1, payload))
			seq++
		}
	}
	return out
}

func rawRTP(seq uint16, ts uint32, marker bool, payload []byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	b[0] = 0x80
	b[1] = 96
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], 0x1234)
	return append(b, payload...)
}

// repacketize does what MediaMTX does to VP8: reassemble each frame (strip the descriptors,
// concatenate by timestamp until the marker bit) and packetize it again into payloads of at
// most maxPayload bytes, with its own descriptor (here X=1, I=1 and a 15-bit picture ID), its
// own sequence numbers and a timestamp offset.
func repacketize(t *testing.T, pkts [][]byte, maxPayload int) [][]byte {
	t.Helper()
	var out [][]byte
	var frame []byte
	var seq uint16 = 40000
	var pic uint16
	for _, p := range pkts {
		payload, ok := rtpPayload(p)
		if !ok {
			t.Fatal("bad RTP packet")
		}
		n, _, ok := vp8Descriptor(payload)
		if !ok {
			t.Fatal("bad VP8 descriptor")
		}
		frame = append(frame, payload[n:]...)
		if p[1]&0x80 == 0 {
			continue
		}
		ts := binary.BigEndian.Uint32(p[4:]) + 777777
		const desc = 4
		for off := 0; off < len(frame); off += maxPayload - desc {
			end := min(off+maxPayload-desc, len(frame))
			d := []byte{0x80, 0x80, 0x80 | byte(pic>>8), byte(pic)}
			if off == 0 {
				d[0] |= 0x10
			}
			out = append(out, rawRTP(seq, ts, end == len(frame), append(d, frame[off:end]...)))
			seq++
		}
		pic = (pic + 1) & 0x7fff
		frame = frame[:0]
	}
	return out
}

// TestMarkersSurviveRepacketization feeds frames re-packetized into 1,188-byte payloads (as
// MediaMTX sends them) to a viewer's frame reader: every frame's marker is read, every frame is
// complete with all its bytes, and keyframes are recognised. The per-packet trailer, read the
// way a viewer in packet mode does, loses most packets on the same input; that is why frame
// markers are the default.
func TestMarkersSurviveRepacketization(t *testing.T) {
	const frames = 90
	orig := publisherPackets(frames, 30)
	for _, tt := range []struct {
		name string
		pkts [][]byte
	}{
		{"unchanged", orig},
		{"re-packetized into 1188-byte payloads", repacketize(t, orig, 1188)},
		{"re-packetized into 500-byte payloads", repacketize(t, orig, 500)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newFrameReader()
			var keys int
			r.onKey = func(int64) { keys++ }
			trailers := 0
			for i, p := range tt.pkts {
				payload, _ := rtpPayload(p)
				r.add(binary.BigEndian.Uint16(p[2:]), binary.BigEndian.Uint32(p[4:]), p[1]&0x80 != 0, payload, int64(5000+i))
				if ctr := binary.BigEndian.Uint64(payload[len(payload)-16:]); ctr < uint64(len(orig)) &&
					binary.BigEndian.Uint64(payload[len(payload)-8:]) == uint64(1000+int(ctr)/PacketsPerFrame) {
					trailers++
				}
			}
			r.flush()
			if got := len(r.frames[0]); got < frames {
				t.Fatalf("frame records: got %d, want %d", got, frames)
			}
			for id := range frames {
				rec := r.frames[0][id]
				if rec.Latency <= 0 || int(rec.Bytes) != frameBytes(PacketsPerFrame) {
					t.Errorf("frame %d: got latency %dµs, %d bytes; want complete with %d bytes", id, rec.Latency, rec.Bytes, frameBytes(PacketsPerFrame))
				}
			}
			if r.seenLayers[0] != frames || r.publisher != 7 || r.wrongPub != 0 {
				t.Errorf("complete frames %d from publisher %d (%d wrong): want %d from 7", r.seenLayers[0], r.publisher, r.wrongPub, frames)
			}
			if keys != 1 {
				t.Errorf("first-keyframe callbacks: got %d, want 1", keys)
			}
			t.Logf("%d packets, %d with a readable per-packet trailer", len(tt.pkts), trailers)
			if tt.name == "unchanged" && trailers != len(orig) {
				t.Errorf("per-packet trailers on unchanged packets: got %d, want %d", trailers, len(orig))
			}
			if tt.name != "unchanged" && trailers > len(orig)/2 {
				t.Errorf("per-packet trailers after re-packetization: got %d of %d, the test no longer re-packetizes", trailers, len(orig))
			}
		})
	}
}

// TestFrameReaderLoss drops packets: a frame missing a middle packet is incomplete (no latency)
// but keeps its other bytes; a frame missing its first packet (and so its marker) is attributed
// to its id through the RTP timestamp.
func TestFrameReaderLoss(t *testing.T) {
	orig := publisherPackets(10, 30)
	drop := map[int]bool{3*PacketsPerFrame + 4: true, 6 * PacketsPerFrame: true}
	r := newFrameReader()
	for i, p := range orig {
		if drop[i] {
			continue
		}
		payload, _ := rtpPayload(p)
		r.add(binary.BigEndian.Uint16(p[2:]), binary.BigEndian.Uint32(p[4:]), p[1]&0x80 != 0, payload, int64(5000+i))
	}
	r.flush()
	full := int32(frameBytes(PacketsPerFrame))
	for id := range 10 {
		rec := r.frames[0][id]
		wantBytes, complete := full, true
		if id == 3 || id == 6 {
			wantBytes, complete = full-(VideoPayloadSize-1), false
		}
		if rec.Bytes != wantBytes || (rec.Latency > 0) != complete {
			t.Errorf("frame %d: got %d bytes, latency %d; want %d bytes, complete %v", id, rec.Bytes, rec.Latency, wantBytes, complete)
		}
	}
}

func TestVP8Descriptor(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		n         int
		start, ok bool
	}{
		{"plain start", []byte{0x10, 0}, 1, true, true},
		{"continuation", []byte{0x00, 0}, 1, false, true},
		{"start of partition 1", []byte{0x11, 0}, 1, false, true},
		{"7-bit picture id", []byte{0x90, 0x80, 0x05, 0}, 3, true, true},
		{"15-bit picture id, L, T", []byte{0x90, 0xe0, 0x81, 0x02, 0x03, 0x04, 0}, 6, true, true},
		{"truncated", []byte{0x90, 0x80}, 0, false, false},
		{"empty", nil, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, start, ok := vp8Descriptor(tt.in)
			if n != tt.n || start != tt.start || ok != tt.ok {
				t.Errorf("got %d %v %v, want %d %v %v", n, start, ok, tt.n, tt.start, tt.ok)
			}
		})
	}
}
