package ome

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"gatehouse/authz"
	"gatehouse/authz/conformance"
)

// TestConformance runs the seam's table (authz/conformance) through OME's admission webhook. OME
// forwards the URL and never a header, so a token travels in the query; a denial is 200 with
// allowed:false (no 401/403), a rename is new_url.
func TestConformance(t *testing.T) {
	post := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks/ome", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	conformance.Run(t, conformance.Adapter{
		Name: "ome",
		Handler: func(_ *testing.T, eng *authz.Engine, log *slog.Logger) http.Handler {
			return New(Config{}, eng, nil, log)
		},
		Encode: func(_ *testing.T, a conformance.Ask) (*http.Request, bool) {
			dir, proto, u := "outgoing", "RTMP", "rtmp://h:1935/"+a.Path()
			if a.Action == authz.ActionPublish {
				dir = "incoming"
			}
			if a.HTTP {
				proto, u = "LLHLS", "https://h:3333/"+a.Path()+"/llhls.m3u8"
				if a.Action == authz.ActionPublish {
					proto, u = "WebRTC", "https://h:3333/"+a.Path()+"?direction=whip"
				}
			}
			var params []string
			if a.Token != "" {
				params = append(params, "token="+a.Token)
			}
			if a.Query != "" {
				params = append(params, a.Query)
			}
			if len(params) > 0 {
				sep := "?"
				if strings.Contains(u, "?") {
					sep = "&"
				}
				u += sep + strings.Join(params, "&")
			}
			b, _ := json.Marshal(map[string]any{
				"client":  map[string]any{"address": "192.0.2.1", "port": 5000},
				"request": map[string]any{"direction": dir, "protocol": proto, "status": "opening", "url": u, "time": "2026-01-01T00:00:00+00:00"},
			})
			return post(string(b)), true
		},
		Malformed: func() *http.Request { return post(`{"request":`) },
		Oversized: func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/hooks/ome", conformance.Oversized(`{"request":{"url":"`))
		},
		CanRename: true,
		Decode: func(t *testing.T, _ conformance.Ask, w *httptest.ResponseRecorder) conformance.Answer {
			if w.Code != http.StatusOK {
				return conformance.Answer{Verdict: conformance.Status(w.Code)}
			}
			var r reply
			if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
				t.Fatalf("reply %q: %v", w.Body, err)
			}
			switch {
			case !r.Allowed:
				return conformance.Answer{Verdict: conformance.Denied}
			case r.NewURL != "":
				nu, err := url.Parse(r.NewURL)
				if err != nil {
					t.Fatalf("new_url %q: %v", r.NewURL, err)
				}
				return conformance.Answer{Verdict: conformance.Renamed, Rename: strings.TrimPrefix(nu.Path, "/")}
			}
			return conformance.Answer{Verdict: conformance.Allowed}
		},
	})
}
