package sfu

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/conformance"
)

// TestConformance runs the seam's table (authz/conformance) through WHIP and WHEP admission: a
// token in the Authorization header, WebRTC is an HTTP protocol, a stream key as the name is
// renamed (the session attaches to the public path).
func TestConformance(t *testing.T) {
	api := clientAPI(t)
	offers := map[authz.Action]string{}
	for a, dir := range map[authz.Action]webrtc.RTPTransceiverDirection{
		authz.ActionPublish: webrtc.RTPTransceiverDirectionSendonly, authz.ActionRead: webrtc.RTPTransceiverDirectionRecvonly,
	} {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			t.Fatal(err)
		}
		offers[a] = offer(t, pc)
		_ = pc.Close()
	}
	var s *SFU
	post := func(prefix, path, query, ctype, body string, hdr ...string) *http.Request {
		if query != "" {
			path += "?" + query
		}
		r := httptest.NewRequest(http.MethodPost, prefix+path, strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		r.RemoteAddr = "127.0.0.1:40000"
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	conformance.Run(t, conformance.Adapter{
		Name: "sfu",
		Handler: func(t *testing.T, eng *authz.Engine, log *slog.Logger) http.Handler {
			cfg := DefaultConfig()
			cfg.UDPPort = 0
			cfg.IncludeLoopback = true
			cfg.AllowPrivateCandidates = true
			cfg.ConnectTimeout = conf.Duration(time.Hour) // no client ever connects
			var err error
			if s, err = New(cfg, eng, nil, log); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = s.Run(ctx) }()
			t.Cleanup(func() { _ = s.Close(); cancel(); <-done })
			return s.Handler()
		},
		Encode: func(_ *testing.T, a conformance.Ask) (*http.Request, bool) {
			if a.NonHTTP {
				return nil, false
			}
			prefix := "/whep/"
			if a.Action == authz.ActionPublish {
				prefix = "/whip/"
			}
			var hdr []string
			if a.Token != "" {
				hdr = []string{"Authorization", "Bearer " + a.Token}
			}
			return post(prefix, a.Path(), a.Query, "application/sdp", offers[a.Action], hdr...), true
		},
		Malformed: func() *http.Request { return post("/whip/", "live/cam", "", "application/sdp", "") },
		Oversized: func() *http.Request {
			return post("/whip/", "live/cam", "", "application/sdp", strings.Repeat("a", DefaultMaxBody+1))
		},
		CanRename: true,
		Decode: func(_ *testing.T, a conformance.Ask, w *httptest.ResponseRecorder) conformance.Answer {
			v := conformance.Status(w.Code)
			if v == conformance.Allowed && a.Stream == conformance.Key {
				for _, si := range s.Sessions() {
					if strings.HasSuffix(w.Header().Get("Location"), si.ID) {
						return conformance.Answer{Verdict: conformance.Renamed, Rename: si.Path}
					}
				}
			}
			return conformance.Answer{Verdict: v}
		},
	})
}
