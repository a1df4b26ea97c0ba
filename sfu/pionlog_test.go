package sfu

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestPionPeerWarningsAreDebug: warnings from pion's per-PeerConnection scopes are Debug;
// warnings of the process-wide sockets and errors of every scope keep their level.
func TestPionPeerWarningsAreDebug(t *testing.T) {
	tests := []struct {
		scope string
		log   func(l slogLeveled)
		want  slog.Level
	}{
		{"ice", func(l slogLeveled) { l.Warn("Failed to ping without candidate pairs. Connection is not possible yet.") }, slog.LevelDebug},
		{"pc", func(l slogLeveled) { l.Warnf("Failed to accept RTP %v", "stream is already closed") }, slog.LevelDebug},
		{"pc", func(l slogLeveled) { l.Warnf("Failed to start manager: %s", "handshake error: EOF") }, slog.LevelDebug},
		{"mux", func(l slogLeveled) { l.Warnf("Warning: mux: no endpoint for packet starting with %d", 21) }, slog.LevelDebug},
		{"udpmux", func(l slogLeveled) { l.Warn("could not read from the socket: permission denied") }, slog.LevelWarn},
		{"tcpmux", func(l slogLeveled) { l.Warn("accept failed") }, slog.LevelWarn},
		{"pc", func(l slogLeveled) { l.Errorf("Failed to %s", "write") }, slog.LevelError},
		{"ice", func(l slogLeveled) { l.Error("agent failed") }, slog.LevelError},
	}
	for _, tt := range tests {
		h := &levelHandler{min: slog.LevelDebug}
		l, ok := slogFactory{log: slog.New(h)}.NewLogger(tt.scope).(slogLeveled)
		if !ok {
			t.Fatal("NewLogger did not return a slogLeveled")
		}
		tt.log(l)
		if len(h.recs) != 1 {
			t.Fatalf("%s: got %d records, want 1", tt.scope, len(h.recs))
		}
		if got := h.recs[0].Level; got != tt.want {
			t.Errorf("%s %q: got %v, want %v", tt.scope, h.recs[0].Message, got, tt.want)
		}
	}
}

// TestSessionLifeLogsNoPionWarning: publishing, watching and leaving log no pion line at Warn
// (the log is at Info, as in production).
func TestSessionLifeLogsNoPionWarning(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam")
	v, res := e.view("live/cam", tokView, true)
	if v == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "media", func() bool { return len(v.received(true, 1)) >= 10 })
	v.close()
	pub.close()
	if err := e.sfu.Close(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "pion=") {
			t.Errorf("pion warning at WARN: %s", line)
		}
	}
}
