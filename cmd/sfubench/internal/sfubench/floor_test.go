package sfubench

import (
	"net"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// BenchmarkFloor measures, on this machine, the per-packet work no SFU can avoid for one viewer:
// marshal the rewritten header, SRTP-encrypt a 1,180-byte payload and send it over loopback UDP
// to a socket drained by another goroutine. Compare gatehouse's µs/packet from "sfubench run"
// with the "encrypt+send" results.
func BenchmarkFloor(b *testing.B) {
	for _, prof := range []struct {
		name string
		p    srtp.ProtectionProfile
	}{{"aes128gcm", srtp.ProtectionProfileAeadAes128Gcm}, {"aes128cm", srtp.ProtectionProfileAes128CmHmacSha1_80}} {
		b.Run("encrypt/"+prof.name, func(b *testing.B) {
			ctx := srtpContext(b, prof.p)
			hdr, payload := floorPacket()
			var out []byte
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				hdr.SequenceNumber++
				plain, _ := (&rtp.Packet{Header: hdr, Payload: payload}).Marshal()
				var err error
				if out, err = ctx.EncryptRTP(out[:0], plain, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encrypt+send/"+prof.name, func(b *testing.B) {
			ctx := srtpContext(b, prof.p)
			send, addr := loopbackPair(b)
			hdr, payload := floorPacket()
			var out []byte
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				hdr.SequenceNumber++
				plain, _ := (&rtp.Packet{Header: hdr, Payload: payload}).Marshal()
				var err error
				if out, err = ctx.EncryptRTP(out[:0], plain, nil); err != nil {
					b.Fatal(err)
				}
				if _, err := send.WriteToUDP(out, addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("send", func(b *testing.B) {
		send, addr := loopbackPair(b)
		buf := make([]byte, 1208)
		for b.Loop() {
			if _, err := send.WriteToUDP(buf, addr); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func floorPacket() (rtp.Header, []byte) {
	return rtp.Header{Version: 2, PayloadType: 96, SSRC: 0x1234, Timestamp: 90000}, make([]byte, VideoPayloadSize)
}

func srtpContext(b *testing.B, p srtp.ProtectionProfile) *srtp.Context {
	b.Helper()
	kl, _ := p.KeyLen()
	sl, _ := p.SaltLen()
	ctx, err := srtp.CreateContext(make([]byte, kl), make([]byte, sl), p)
	if err != nil {
		b.Fatal(err)
	}
	return ctx
}

// loopbackPair returns a sending socket and the address of a receiving socket drained by a
// goroutine until the benchmark ends.
func loopbackPair(b *testing.B) (*net.UDPConn, *net.UDPAddr) {
	b.Helper()
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	send, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := recv.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		_ = send.Close()
		_ = recv.Close()
		<-done
	})
	return send, recv.LocalAddr().(*net.UDPAddr)
}
