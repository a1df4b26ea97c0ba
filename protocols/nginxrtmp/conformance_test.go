package nginxrtmp

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/authz"
	"gatehouse/authz/conformance"
)

// TestConformance runs the seam's table (authz/conformance) through nginx-rtmp's callbacks:
// RTMP only, every denial is 403, a rename is a 302 to the new name in the same application.
func TestConformance(t *testing.T) {
	post := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks/nginx-rtmp", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "127.0.0.1:40000"
		return r
	}
	conformance.Run(t, conformance.Adapter{
		Name: "nginx-rtmp",
		Handler: func(_ *testing.T, eng *authz.Engine, log *slog.Logger) http.Handler {
			return New(Config{}, eng, nil, log)
		},
		Encode: func(_ *testing.T, a conformance.Ask) (*http.Request, bool) {
			if a.HTTP {
				return nil, false
			}
			call := "play"
			if a.Action == authz.ActionPublish {
				call = "publish"
			}
			body := "call=" + call + "&app=" + a.App + "&name=" + a.Stream + "&addr=192.0.2.1&clientid=7"
			if a.Token != "" {
				body += "&token=" + a.Token
			}
			if a.Query != "" {
				body += "&" + a.Query
			}
			return post(body), true
		},
		Malformed: func() *http.Request { return post("app=live&name=cam") },
		Oversized: func() *http.Request {
			return post("call=publish&app=live&name=cam&x=" + strings.Repeat("a", DefaultMaxBody))
		},
		CanRename: true,
		Decode: func(_ *testing.T, a conformance.Ask, w *httptest.ResponseRecorder) conformance.Answer {
			switch w.Code {
			case http.StatusFound:
				return conformance.Answer{Verdict: conformance.Renamed, Rename: a.App + "/" + w.Header().Get("Location")}
			case http.StatusForbidden:
				return conformance.Answer{Verdict: conformance.Denied}
			}
			return conformance.Answer{Verdict: conformance.Status(w.Code)}
		},
	})
}
