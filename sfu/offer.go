package sfu

import (
	"errors"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Reading SDP offers and answers: media sections, their codecs and directions.

// parseOffer checks that body is an SDP offer with at least one audio or video section.
func parseOffer(body string) (*sdp.SessionDescription, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(body); err != nil {
		return nil, errors.New("the body is not valid SDP")
	}
	for _, md := range sd.MediaDescriptions {
		if k := md.MediaName.Media; k == "audio" || k == "video" {
			return &sd, nil
		}
	}
	return nil, errors.New("the offer has no audio or video section")
}

// mediaCodecs lists an m-section's codecs in the order of its format list.
func mediaCodecs(md *sdp.MediaDescription) []webrtc.RTPCodecParameters {
	rtpmap, fmtp := map[string]string{}, map[string]string{}
	for _, a := range md.Attributes {
		pt, rest, _ := strings.Cut(a.Value, " ")
		switch a.Key {
		case "rtpmap":
			rtpmap[pt] = rest
		case "fmtp":
			fmtp[pt] = rest
		}
	}
	var out []webrtc.RTPCodecParameters
	for _, f := range md.MediaName.Formats {
		rm, ok := rtpmap[f]
		if !ok {
			continue
		}
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		parts := strings.Split(rm, "/")
		c := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt)}
		c.MimeType = md.MediaName.Media + "/" + parts[0]
		if len(parts) > 1 {
			cr, _ := strconv.ParseUint(parts[1], 10, 32)
			c.ClockRate = uint32(cr)
		}
		if len(parts) > 2 {
			ch, _ := strconv.ParseUint(parts[2], 10, 16)
			c.Channels = uint16(ch)
		}
		c.SDPFmtpLine = fmtp[f]
		out = append(out, c)
	}
	return out
}

func mediaKind(md *sdp.MediaDescription) (webrtc.RTPCodecType, bool) {
	if md.MediaName.Port.Value == 0 {
		return 0, false // rejected section
	}
	switch md.MediaName.Media {
	case "audio":
		return webrtc.RTPCodecTypeAudio, true
	case "video":
		return webrtc.RTPCodecTypeVideo, true
	}
	return 0, false
}

func direction(md *sdp.MediaDescription) string {
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return "sendrecv"
}

// answerCodecs returns, per kind, the codec a publisher will send: the first codec of each
// accepted section of our answer.
func answerCodecs(answer string) [2]*webrtc.RTPCodecParameters {
	var out [2]*webrtc.RTPCodecParameters
	var sd sdp.SessionDescription
	if sd.UnmarshalString(answer) != nil {
		return out
	}
	for _, md := range sd.MediaDescriptions {
		k, ok := mediaKind(md)
		if !ok || direction(md) == "inactive" || out[kindIndex(k)] != nil {
			continue
		}
		if cs := mediaCodecs(md); len(cs) > 0 {
			c := cs[0]
			out[kindIndex(k)] = &c
		}
	}
	return out
}
