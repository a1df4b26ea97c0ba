package sfu

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz/conf"
)

func TestParseSDPFrag(t *testing.T) {
	host := "candidate:1 1 udp 2130706431 192.0.2.1 61764 typ host"
	tests := []struct {
		name    string
		in      string
		want    sdpFrag
		wantErr bool
	}{
		{"RFC 9725 example", "a=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\na=" + host + "\r\na=end-of-candidates\r\n",
			sdpFrag{Ufrag: "EsAw", Pwd: "P2uYro0UCOQ4zxjKXaWCBui1", Candidates: []fragCandidate{{Mid: "0", Candidate: host}}, End: true}, false},
		{"bare LF, two sections", "a=ice-ufrag:u\na=ice-pwd:p\nm=audio 9 X 0\na=mid:a\na=" + host + "\nm=video 9 X 0\na=mid:v\na=" + host + "\n",
			sdpFrag{Ufrag: "u", Pwd: "p", Candidates: []fragCandidate{{Mid: "a", Candidate: host}, {Mid: "v", MLineIndex: 1, Candidate: host}}}, false},
		{"end only", "a=end-of-candidates", sdpFrag{End: true}, false},
		{"tcp port 9", "a=candidate:1 1 tcp 1 192.0.2.1 9 typ host tcptype active",
			sdpFrag{Candidates: []fragCandidate{{Candidate: "candidate:1 1 tcp 1 192.0.2.1 9 typ host tcptype active"}}}, false},
		{"ufrag without pwd", "a=ice-ufrag:u", sdpFrag{}, true},
		{"conflicting ufrag", "a=ice-ufrag:u\na=ice-ufrag:v\na=ice-pwd:p", sdpFrag{}, true},
		{"short candidate", "a=candidate:1 1 udp", sdpFrag{}, true},
		{"bad port", "a=candidate:1 1 udp 1 192.0.2.1 99999 typ host", sdpFrag{}, true},
		{"no typ", "a=candidate:1 1 udp 1 192.0.2.1 5000 xx host", sdpFrag{}, true},
		{"not SDP", "hello", sdpFrag{}, true},
		{"control character", "a=mid:\x00", sdpFrag{}, true},
		{"too many candidates", strings.Repeat("a="+host+"\n", maxFragCandidates+1), sdpFrag{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSDPFrag(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadFrag) {
					t.Fatalf("got error %v, want ErrBadFrag", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if got.Ufrag != tt.want.Ufrag || got.Pwd != tt.want.Pwd || got.End != tt.want.End || len(got.Candidates) != len(tt.want.Candidates) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got.Candidates {
				if got.Candidates[i] != tt.want.Candidates[i] {
					t.Errorf("candidate %d: got %+v, want %+v", i, got.Candidates[i], tt.want.Candidates[i])
				}
			}
		})
	}
}

func FuzzParseSDPFrag(f *testing.F) {
	f.Add("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host\r\na=end-of-candidates\r\n")
	f.Add("a=end-of-candidates")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseSDPFrag(in)
		if err != nil {
			if !errors.Is(err, ErrBadFrag) {
				t.Fatalf("error %v does not wrap ErrBadFrag", err)
			}
			return
		}
		if (got.Ufrag == "") != (got.Pwd == "") {
			t.Fatalf("ufrag %q without pwd %q", got.Ufrag, got.Pwd)
		}
		if len(got.Candidates) > maxFragCandidates {
			t.Fatalf("%d candidates, limit %d", len(got.Candidates), maxFragCandidates)
		}
		for _, c := range got.Candidates {
			if !strings.HasPrefix(c.Candidate, "candidate:") || strings.ContainsAny(c.Candidate+c.Mid, "\r\n\x00") {
				t.Fatalf("unsafe candidate %q (mid %q)", c.Candidate, c.Mid)
			}
		}
	})
}

func TestKeyframeDetectors(t *testing.T) {
	tests := []struct {
		name    string
		mime    string
		payload []byte
		want    bool
	}{
		{"h264 IDR", webrtc.MimeTypeH264, []byte{0x65, 0}, true},
		{"h264 SPS", webrtc.MimeTypeH264, []byte{0x67, 0}, true},
		{"h264 P slice", webrtc.MimeTypeH264, []byte{0x41, 0}, false},
		{"h264 STAP-A with SPS", webrtc.MimeTypeH264, []byte{0x78, 0, 2, 0x67, 0, 0, 2, 0x68, 0}, true},
		{"h264 STAP-A without", webrtc.MimeTypeH264, []byte{0x78, 0, 2, 0x41, 0}, false},
		{"h264 STAP-A truncated", webrtc.MimeTypeH264, []byte{0x78, 0, 9, 0x67}, false},
		{"h264 FU-A IDR start", webrtc.MimeTypeH264, []byte{0x7c, 0x85, 0}, true},
		{"h264 FU-A IDR middle", webrtc.MimeTypeH264, []byte{0x7c, 0x05, 0}, false},
		{"vp8 key", webrtc.MimeTypeVP8, []byte{0x10, 0x00}, true},
		{"vp8 inter", webrtc.MimeTypeVP8, []byte{0x10, 0x01}, false},
		{"vp8 not partition start", webrtc.MimeTypeVP8, []byte{0x00, 0x00}, false},
		{"vp8 extended, 15-bit picture id", webrtc.MimeTypeVP8, []byte{0x90, 0x80, 0x81, 0x02, 0x00}, true},
		{"vp8 extended, truncated", webrtc.MimeTypeVP8, []byte{0x90, 0x80}, false},
		{"vp9 key start", webrtc.MimeTypeVP9, []byte{0x08}, true},
		{"vp9 inter", webrtc.MimeTypeVP9, []byte{0x48}, false},
		{"av1 new sequence", webrtc.MimeTypeAV1, []byte{0x08}, true},
		{"av1 other", webrtc.MimeTypeAV1, []byte{0x10}, false},
		{"empty", webrtc.MimeTypeVP8, nil, false},
		{"unknown codec", "video/H265", []byte{0x26}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keyframeFunc(tt.mime)(tt.payload); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCodecCompatible(t *testing.T) {
	h := func(f string) webrtc.RTPCodecCapability {
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: f}
	}
	tests := []struct {
		name string
		a, b webrtc.RTPCodecCapability
		want bool
	}{
		{"same h264", h("packetization-mode=1;profile-level-id=42e01f"), h("profile-level-id=42e01f;packetization-mode=1"), true},
		{"h264 level differs", h("packetization-mode=1;profile-level-id=42e01f"), h("packetization-mode=1;profile-level-id=42e034"), true},
		{"h264 mode differs", h("packetization-mode=1;profile-level-id=42e01f"), h("packetization-mode=0;profile-level-id=42e01f"), false},
		{"h264 profile differs", h("packetization-mode=1;profile-level-id=42e01f"), h("packetization-mode=1;profile-level-id=64001f"), false},
		{"vp8 vs vp9", webrtc.RTPCodecCapability{MimeType: "video/VP8", ClockRate: 90000}, webrtc.RTPCodecCapability{MimeType: "video/VP9", ClockRate: 90000}, false},
		{"vp9 profiles", webrtc.RTPCodecCapability{MimeType: "video/VP9", ClockRate: 90000, SDPFmtpLine: "profile-id=0"}, webrtc.RTPCodecCapability{MimeType: "video/vp9", ClockRate: 90000, SDPFmtpLine: "profile-id=2"}, false},
		{"opus any fmtp", webrtc.RTPCodecCapability{MimeType: "audio/opus", ClockRate: 48000}, webrtc.RTPCodecCapability{MimeType: "audio/OPUS", ClockRate: 48000, SDPFmtpLine: "stereo=1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codecCompatible(tt.a, tt.b); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	type file struct {
		SFU Config `yaml:"sfu"`
	}
	t.Run("defaults", func(t *testing.T) {
		var f file
		if err := conf.Decode("t.yml", []byte("sfu: {}\n"), nil, &f); err != nil {
			t.Fatal(err)
		}
		def := DefaultConfig()
		if f.SFU.UDPPort != def.UDPPort || f.SFU.IgnoreExpiry || !f.SFU.Pages || f.SFU.ViewerQueue != def.ViewerQueue ||
			f.SFU.GatherTimeout.Std() != DefaultGatherTimeout || len(f.SFU.AllowedOrigins) != 1 ||
			f.SFU.MaxSessions != DefaultMaxSessions || f.SFU.MaxSessionsPerClient != DefaultMaxSessionsPerClient ||
			f.SFU.MaxViewersPerPath != DefaultMaxViewersPerPath || f.SFU.ConnectTimeout.Std() != DefaultConnectTimeout ||
			f.SFU.MaxCandidates != DefaultMaxCandidates || f.SFU.AllowPrivateCandidates {
			t.Errorf("got %+v, want the defaults", f.SFU)
		}
	})
	t.Run("written zero caps are refused, never unlimited nor silently the default", func(t *testing.T) {
		var f file
		src := "sfu:\n  max_sessions: 0\n  max_sessions_per_client: 0\n  max_viewers_per_path: 0\n  connect_timeout: 0s\n  max_candidates: 0\n"
		err := conf.Decode("t.yml", []byte(src), nil, &f)
		for i, key := range []string{"max_sessions", "max_sessions_per_client", "max_viewers_per_path", "connect_timeout", "max_candidates"} {
			want := fmt.Sprintf("t.yml:%d: sfu.%s: %s must not be 0", i+2, key, key)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want an error containing %q", err, want)
			}
		}
	})
	t.Run("full", func(t *testing.T) {
		src := `sfu:
  udp_port: 0
  tcp: true
  public_ips: [203.0.113.7, "2001:db8::7"]
  include_loopback: true
  ice_servers:
    - urls: ["stun:stun.example.net:3478"]
    - urls: ["turn:turn.example.net:3478?transport=udp"]
      username: u
      credential: p
  trusted_proxies: []
  allowed_origins: ["https://a.example"]
  replace_publisher: true
  enforce_expiry: false
  gather_timeout: 2s
  reconnect_grace: 1m
  viewer_queue: 64
  pages: false
  max_sessions: 50
  max_sessions_per_client: 5
  max_viewers_per_path: 40
  connect_timeout: 4s
  max_candidates: 8
  allow_private_candidates: true
`
		var f file
		if err := conf.Decode("t.yml", []byte(src), nil, &f); err != nil {
			t.Fatal(err)
		}
		c := f.SFU
		if c.UDPPort != 0 || !c.TCP || len(c.PublicIPs) != 2 || !c.IncludeLoopback || len(c.ICEServers) != 2 ||
			!c.ReplacePublisher || !c.IgnoreExpiry ||
			c.GatherTimeout.Std().String() != "2s" || c.ReconnectGrace.Std().String() != "1m0s" || c.ViewerQueue != 64 || c.Pages ||
			c.MaxSessions != 50 || c.MaxSessionsPerClient != 5 || c.MaxViewersPerPath != 40 || c.ConnectTimeout.Std().String() != "4s" ||
			c.MaxCandidates != 8 || !c.AllowPrivateCandidates {
			t.Errorf("got %+v", c)
		}
	})
	errs := []struct{ name, src, want string }{
		{"unknown key", "sfu:\n  udp_prot: 1\n", `unknown key "udp_prot"`},
		{"port range", "sfu:\n  udp_port: 70000\n", "out of range"},
		{"bad public ip", "sfu:\n  public_ips: [example.com]\n", "not an IP address"},
		{"moved trusted_proxies", "sfu:\n  trusted_proxies: [10.0.0.0/8]\n", "t.yml:2: sfu.trusted_proxies: sfu.trusted_proxies moved to the top-level trusted_proxies"},
		{"bad ice scheme", "sfu:\n  ice_servers: [{urls: [\"http://x\"]}]\n", "must start with stun:"},
		{"comma in credential", "sfu:\n  ice_servers: [{urls: [\"turn:x\"], username: u, credential: \"a,b\"}]\n", "commas"},
		{"bad duration", "sfu:\n  gather_timeout: soon\n", "invalid duration"},
		{"negative max_sessions", "sfu:\n  max_sessions: -1\n", "max_sessions -1 must be positive"},
		{"negative per-client cap", "sfu:\n  max_sessions_per_client: -5\n", "max_sessions_per_client"},
		{"negative candidate cap", "sfu:\n  max_candidates: -1\n", "max_candidates"},
		{"negative per-path cap", "sfu:\n  max_viewers_per_path: -5\n", "max_viewers_per_path"},
		{"negative connect_timeout", "sfu:\n  connect_timeout: -1s\n", "must not be negative"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := conf.Decode("t.yml", []byte(tt.src), nil, &f)
			if !errors.Is(err, conf.ErrInvalid) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "t.yml:") {
				t.Errorf("got %v, want a located error containing %q", err, tt.want)
			}
		})
	}
}
