package srs

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conformance"
)

// TestConformance runs the seam's table (authz/conformance) through SRS's hooks. SRS forwards no
// header, so a token travels in param, and it does not say whether a client came over RTMP or
// HTTP-FLV/HLS: its tokens work only with auth.query_token_on_http (TestQueryTokenFailsClosed).
func TestConformance(t *testing.T) {
	post := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks/srs", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	conformance.Run(t, conformance.Adapter{
		Name:                  "srs",
		QueryTokensNeedPolicy: true,
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

// TestQueryTokenFailsClosed: with the default policy a token in SRS's param is refused whatever
// tcUrl the client wrote, because SRS does not say whether it came over RTMP or HTTP (where URLs
// reach access logs); auth.query_token_on_http: true lets it in.
func TestQueryTokenFailsClosed(t *testing.T) {
	allow := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		if r.Token == "tok" {
			return authz.Allowing("alice", time.Time{}), nil
		}
		return authz.Decision{}, nil
	})
	for _, on := range []bool{false, true} {
		chain := authz.NewChain(authz.Method{Name: "m", Backend: allow}).WithPolicy(authz.Policy{QueryTokenOnHTTP: on})
		h := New(Config{}, authz.NewEngine(chain, nil), nil, nil)
		for _, tc := range []string{"rtmp://h/live", "http://h/live", ""} {
			b, _ := json.Marshal(map[string]any{"action": "on_play", "client_id": "c1", "ip": "192.0.2.1", "vhost": DefaultVhost,
				"app": "live", "stream": "cam", "param": "?token=tok", "tcUrl": tc})
			r := httptest.NewRequest(http.MethodPost, "/hooks/srs", strings.NewReader(string(b)))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if allowed := w.Code == http.StatusOK && w.Body.String() == ok; allowed != on {
				t.Errorf("policy %v, tcUrl %q: got %d %q, want allowed=%v", on, tc, w.Code, w.Body.String(), on)
			}
		}
	}
}
