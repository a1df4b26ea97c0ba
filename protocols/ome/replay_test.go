package ome

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz/conf"
	"gatehouse/authz/logtest"
)

// TestSignedRequestTimeChecked: the signature covers the body only, so a captured signed body
// used to be good forever (a replayed opening admits, a replayed closing ends a live entry).
// A signed request whose request.time is farther than max_clock_skew (default 5m) from the clock,
// either way, or unreadable, is refused with 401 and a reason; without a secret nothing can be
// trusted anyway and the time is not checked.
func TestSignedRequestTimeChecked(t *testing.T) {
	sent := time.Date(2026, 5, 12, 13, 45, 0, 0, time.UTC)
	body := func(tm string) []byte {
		return bytes.Replace(doc("opening", "incoming", "RTMP", "rtmp://ome.example/app/stream?token=abc"),
			[]byte("2026-05-12T13:45:00.123+09:00"), []byte(tm), 1)
	}
	for _, tt := range []struct {
		name   string
		secret string
		skew   time.Duration
		time   string
		now    time.Time
		want   int
	}{
		{"on time", testSecret, 0, "2026-05-12T22:45:00.123+09:00", sent, 200},
		{"4 minutes late", testSecret, 0, "2026-05-12T13:45:00Z", sent.Add(4 * time.Minute), 200},
		{"replayed 6 minutes later", testSecret, 0, "2026-05-12T13:45:00+00:00", sent.Add(6 * time.Minute), 401},
		{"from the future", testSecret, 0, "2026-05-12T13:51:00+00:00", sent, 401},
		{"configured skew", testSecret, time.Hour, "2026-05-12T13:45:00+00:00", sent.Add(30 * time.Minute), 200},
		{"no time", testSecret, 0, "", sent, 401},
		{"not a time", testSecret, 0, "yesterday", sent, 401},
		{"unsigned: not checked", "", 0, "2020-01-01T00:00:00+00:00", sent, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, _, rec := newHandler(t, Config{Secret: tt.secret, MaxClockSkew: conf.Duration(tt.skew)})
			h.now = func() time.Time { return tt.now }
			b := body(tt.time)
			r := httptest.NewRequest(http.MethodPost, "/hooks/ome", bytes.NewReader(b))
			if tt.secret != "" {
				r.Header.Set(SignatureHeader, Sign([]byte(tt.secret), b))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if tt.want != 200 && (!strings.Contains(w.Body.String(), "request.time") || len(rec.events) != 0) {
				t.Errorf("refused: got %s and %d events, want a request.time reason and none", w.Body, len(rec.events))
			}
		})
	}
}

// TestUnsignedCallbacksWarned: without hooks.ome.secret every callback is accepted; the first one
// is logged at WARN (once), so an operator who pointed OME at gatehouse without a SecretKey
// hears of it.
func TestUnsignedCallbacksWarned(t *testing.T) {
	for _, secret := range []string{"", testSecret} {
		var buf logtest.Buffer
		h := New(Config{Secret: secret}, nil, nil, slog.New(slog.NewTextHandler(&buf, nil)))
		for range 3 {
			r := httptest.NewRequest(http.MethodPost, "/hooks/ome", strings.NewReader(`{}`))
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
		got := strings.Count(buf.String(), "level=WARN msg=\"ome: accepting unsigned callbacks")
		if want := map[bool]int{true: 1, false: 0}[secret == ""]; got != want {
			t.Errorf("secret %q: %d warnings, want %d:\n%s", secret, got, want, buf.String())
		}
	}
}
