package mediamtx

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

// TestConformance runs the seam's table (authz/conformance) through MediaMTX's hook: MediaMTX
// cannot rename, so a stream key used as the name is refused.
func TestConformance(t *testing.T) {
	post := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks/mediamtx", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	conformance.Run(t, conformance.Adapter{
		Name:    "mediamtx",
		Handler: func(_ *testing.T, eng *authz.Engine, _ *slog.Logger) http.Handler { return New(Config{}, eng) },
		Encode: func(_ *testing.T, a conformance.Ask) (*http.Request, bool) {
			proto := "rtmp"
			if a.HTTP {
				proto = "hls"
			}
			b, _ := json.Marshal(map[string]string{"action": string(a.Action), "path": a.Path(), "protocol": proto,
				"ip": "192.0.2.1", "token": a.Token, "query": a.Query})
			return post(string(b)), true
		},
		Malformed: func() *http.Request { return post(`{"action":`) },
		Oversized: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/hooks/mediamtx", conformance.Oversized(`{"action":"read","token":"`))
			return r
		},
		Decode: func(_ *testing.T, _ conformance.Ask, w *httptest.ResponseRecorder) conformance.Answer {
			return conformance.Answer{Verdict: conformance.Status(w.Code)}
		},
	})
}
