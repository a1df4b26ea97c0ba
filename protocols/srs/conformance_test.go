package srs

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/authz"
	"gatehouse/authz/conformance"
)

// TestConformance runs the seam's table (authz/conformance) through SRS's hooks. SRS forwards no
// header, so a token travels in param; its WebRTC (empty tcUrl) is the HTTP protocol.
func TestConformance(t *testing.T) {
	post := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks/srs", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	conformance.Run(t, conformance.Adapter{
		Name: "srs",
		Handler: func(_ *testing.T, eng *authz.Engine, log *slog.Logger) http.Handler {
			return New(Config{}, eng, nil, log)
		},
		Encode: func(_ *testing.T, a conformance.Ask) (*http.Request, bool) {
			action, tcURL := "on_play", "rtmp://h/"+a.App
			if a.Action == authz.ActionPublish {
				action = "on_publish"
			}
			if a.HTTP {
				tcURL = "" // WHIP/WHEP
			}
			var params []string
			if a.Token != "" {
				params = append(params, "token="+a.Token)
			}
			if a.Query != "" {
				params = append(params, a.Query)
			}
			b, _ := json.Marshal(map[string]any{"action": action, "client_id": "vid-1", "ip": "192.0.2.1",
				"vhost": DefaultVhost, "app": a.App, "stream": a.Stream, "param": "?" + strings.Join(params, "&"), "tcUrl": tcURL})
			return post(string(b)), true
		},
		Malformed: func() *http.Request { return post(`{"action":`) },
		Oversized: func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/hooks/srs", conformance.Oversized(`{"action":"on_publish","param":"`))
		},
		Decode: func(_ *testing.T, _ conformance.Ask, w *httptest.ResponseRecorder) conformance.Answer {
			if w.Code == http.StatusOK && w.Body.String() != ok {
				return conformance.Answer{Verdict: conformance.Denied}
			}
			return conformance.Answer{Verdict: conformance.Status(w.Code)}
		},
	})
}
