package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// nopWriter is a viewer transport that takes every packet at once.
type nopWriter struct{}

func (nopWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) { return len(payload), nil }
func (nopWriter) Write(b []byte) (int, error)                         { return len(b), nil }

// BenchmarkViewerWriteParallel is the viewer side of the forwarding path: each goroutine is one
// viewer's writer (its own stream, as with many streams), rewriting and writing packets. The
// packet counters must not make the goroutines share a cache line.
func BenchmarkViewerWriteParallel(b *testing.B) {
	sfu := benchSFU()
	b.RunParallel(func(pb *testing.PB) {
		st := sfu.benchStream()
		d := newDownTrack(st.slots[1], vp8, "video", "bench", 16)
		d.bound.Store(&binding{ws: nopWriter{}, ssrc: 1, pt: 96})
		u := &upTrack{slot: st.slots[1], codec: vp8}
		p := &packet{hdr: rtp.Header{Version: 2, PayloadType: 120, SSRC: 1234}, payload: make([]byte, 1000), key: true, up: u}
		for pb.Next() {
			p.hdr.SequenceNumber++
			p.hdr.Timestamp += 3000
			d.forward(p)
		}
	})
}

// BenchmarkPublisherHandleParallel is the publisher side: each goroutine is one publisher
// track's reader (its own stream) parsing, caching and offering packets to one connected viewer
// whose queue a writer drains.
func BenchmarkPublisherHandleParallel(b *testing.B) {
	sfu := benchSFU()
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 120, SSRC: 1234}, Payload: make([]byte, 1000)}).Marshal()
	b.RunParallel(func(pb *testing.PB) {
		st := sfu.benchStream()
		sl := st.slots[0]
		u := &upTrack{slot: sl, codec: webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}}, now: time.Now}
		sl.setSource(u)
		d := newDownTrack(sl, u.codec, "audio", "bench", 1024)
		d.bound.Store(&binding{ws: nopWriter{}, ssrc: 1, pt: 111})
		addDown(sl, d)
		d.activate()
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.run()
		}()
		for pb.Next() {
			u.handle(raw)
		}
		d.stop()
		<-done
	})
}

// benchRig builds streams the way the SFU does.
type benchRig struct{}

func benchSFU() *benchRig { return &benchRig{} }

func (r *benchRig) benchStream() *stream { return newStream("bench") }
