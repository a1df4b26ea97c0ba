package sfu

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// registerCodecs registers the passthrough codecs (Opus, VP8, VP9, AV1, H.264 variants) with
// NACK, PLI and FIR feedback on video, and goog-remb so browser viewers report their receive
// bandwidth estimate (REMB), which picks their simulcast layer. No RTX and no FEC: publishers
// retransmit on the media SSRC, which keeps one packet cache per track.
func registerCodecs(m *webrtc.MediaEngine) error {
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	video := func(mime, fmtp string, pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: fb},
			PayloadType:        pt,
		}
	}
	h264 := func(pm, plid string) string {
		return "level-asymmetry-allowed=1;packetization-mode=" + pm + ";profile-level-id=" + plid
	}
	videoCodecs := []webrtc.RTPCodecParameters{
		video(webrtc.MimeTypeH264, h264("1", "42e01f"), 106),
		video(webrtc.MimeTypeH264, h264("1", "42001f"), 102),
		video(webrtc.MimeTypeH264, h264("0", "42001f"), 104),
		video(webrtc.MimeTypeH264, h264("0", "42e01f"), 108),
		video(webrtc.MimeTypeH264, h264("1", "4d001f"), 127),
		video(webrtc.MimeTypeH264, h264("0", "4d001f"), 39),
		video(webrtc.MimeTypeH264, h264("1", "64001f"), 112),
		video(webrtc.MimeTypeVP8, "", 96),
		video(webrtc.MimeTypeVP9, "profile-id=0", 98),
		video(webrtc.MimeTypeVP9, "profile-id=2", 100),
		video(webrtc.MimeTypeAV1, "", 45),
	}
	for _, c := range videoCodecs {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio)
}

// fmtpParams parses "a=b;c=d" into a map with lower-case keys.
func fmtpParams(line string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			out[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// codecCompatible reports whether a viewer codec can carry a publisher's packets unchanged:
// same MIME type and clock rate, and for H.264 the same packetization mode and profile,
// for VP9 and AV1 the same profile.
func codecCompatible(pub, view webrtc.RTPCodecCapability) bool {
	if !strings.EqualFold(pub.MimeType, view.MimeType) || pub.ClockRate != view.ClockRate {
		return false
	}
	a, b := fmtpParams(pub.SDPFmtpLine), fmtpParams(view.SDPFmtpLine)
	get := func(m map[string]string, k, def string) string {
		if v, ok := m[k]; ok {
			return strings.ToLower(v)
		}
		return def
	}
	switch strings.ToLower(pub.MimeType) {
	case strings.ToLower(webrtc.MimeTypeH264):
		pa, pb := get(a, "profile-level-id", "42001f"), get(b, "profile-level-id", "42001f")
		return get(a, "packetization-mode", "0") == get(b, "packetization-mode", "0") &&
			len(pa) == 6 && len(pb) == 6 && pa[:4] == pb[:4]
	case strings.ToLower(webrtc.MimeTypeVP9):
		return get(a, "profile-id", "0") == get(b, "profile-id", "0")
	case strings.ToLower(webrtc.MimeTypeAV1):
		return get(a, "profile", "0") == get(b, "profile", "0")
	}
	return true
}

// keyframeFunc returns the keyframe detector for a video MIME type. Detectors look at one
// packet's payload and report whether it starts (or, for H.264, carries a parameter set or IDR
// slice of) an independently decodable frame. Unknown types never report a keyframe.
func keyframeFunc(mime string) func([]byte) bool {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeH264):
		return isH264Keyframe
	case strings.ToLower(webrtc.MimeTypeVP8):
		return isVP8Keyframe
	case strings.ToLower(webrtc.MimeTypeVP9):
		return isVP9Keyframe
	case strings.ToLower(webrtc.MimeTypeAV1):
		return isAV1Keyframe
	}
	return func([]byte) bool { return false }
}

func isH264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch nal := p[0] & 0x1f; nal {
	case 5, 7: // IDR slice, SPS
		return true
	case 24: // STAP-A: 16-bit size + NAL unit, repeated
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if t := p[i] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += size
		}
	case 28: // FU-A: start bit and original type
		return len(p) > 1 && p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}

// isVP8Keyframe parses the RFC 7741 payload descriptor and checks the P bit of the first
// partition's frame header.
func isVP8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	if !s || pid != 0 {
		return false
	}
	i := 1
	if x {
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id
			if i >= len(p) {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K
			i++
		}
	}
	return i < len(p) && p[i]&0x01 == 0
}

// isVP9Keyframe uses the RFC 9628 descriptor: not inter-predicted (P=0) and start of frame (B=1).
func isVP9Keyframe(p []byte) bool {
	return len(p) > 0 && p[0]&0x40 == 0 && p[0]&0x08 != 0
}

// isAV1Keyframe uses the aggregation header's N bit: the first packet of a coded video sequence.
func isAV1Keyframe(p []byte) bool {
	return len(p) > 0 && p[0]&0x08 != 0
}
