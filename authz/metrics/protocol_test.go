package metrics

import (
	"strings"
	"testing"
)

// protocolReference is Protocol as it was written first: fold, trim, look up a set.
func protocolReference(p string) string {
	known := map[string]bool{
		"rtmp": true, "rtmps": true, "rtsp": true, "rtsps": true, "srt": true, "hls": true, "llhls": true,
		"webrtc": true, "dash": true, "moq": true, "http": true, "https": true, "flv": true,
	}
	p = strings.ToLower(strings.TrimSpace(p))
	switch {
	case p == "":
		return "none"
	case known[p]:
		return p
	}
	return "other"
}

var protocolCases = []string{
	"", " ", "rtmp", "RTMP", " rtmp ", "\trtmps\n", "rtsp", "RTSPS", "srt", "hls", "LLHLS", "webrtc",
	"WebRTC", "dash", "moq", "http", "HTTPS", "flv", "rtmpx", "xrtmp", "rt mp", "ftp", "\u00a0srt\u00a0",
	"ſrt", "HTTP\u200b", "\xff", "rtmp\x00",
}

func TestProtocolMatchesReference(t *testing.T) {
	for _, p := range protocolCases {
		if got, want := Protocol(p), protocolReference(p); got != want {
			t.Errorf("Protocol(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestProtocolAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Protocol("rtmp") }); n != 0 {
		t.Errorf("Protocol allocates %v times", n)
	}
}

func FuzzProtocol(f *testing.F) {
	for _, p := range protocolCases {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := Protocol(p), protocolReference(p); got != want {
			t.Errorf("Protocol(%q) = %q, want %q", p, got, want)
		}
	})
}
