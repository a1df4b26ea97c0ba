package sfu

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
)

// levelHandler records the level and message of every record.
type levelHandler struct {
	min  slog.Level
	mu   sync.Mutex
	recs []slog.Record
}

func (h *levelHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h *levelHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *levelHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelHandler) WithGroup(string) slog.Handler      { return h }

func TestPionLogLevels(t *testing.T) {
	closedPipe := fmt.Errorf("read: %w", io.ErrClosedPipe)
	tests := []struct {
		name      string
		min       slog.Level
		log       func(l slogLeveled)
		wantLevel slog.Level
		wantNone  bool
	}{
		{"candidate read on closed pipe is debug", slog.LevelDebug, func(l slogLeveled) {
			l.Warnf("Failed to read from candidate %s: %v", "udp4 host 127.0.0.1:8189", closedPipe)
		}, slog.LevelDebug, false},
		{"closed network connection is debug", slog.LevelDebug, func(l slogLeveled) {
			l.Warnf("Failed to read: %v", &net.OpError{Op: "read", Net: "udp", Err: net.ErrClosed})
		}, slog.LevelDebug, false},
		{"closed pipe hidden at info", slog.LevelInfo, func(l slogLeveled) {
			l.Warnf("Failed to read from candidate %s: %v", "c", closedPipe)
		}, 0, true},
		{"real warning stays a warning", slog.LevelInfo, func(l slogLeveled) {
			l.Warnf("Failed to read from candidate %s: %v", "c", "connection refused")
		}, slog.LevelWarn, false},
		{"plain warning", slog.LevelInfo, func(l slogLeveled) { l.Warn("something odd") }, slog.LevelWarn, false},
		{"error with closed pipe stays an error", slog.LevelInfo, func(l slogLeveled) {
			l.Errorf("write: %v", closedPipe)
		}, slog.LevelError, false},
		{"info is debug", slog.LevelDebug, func(l slogLeveled) { l.Infof("gathering %d", 1) }, slog.LevelDebug, false},
		{"info hidden at info", slog.LevelInfo, func(l slogLeveled) { l.Info("gathering") }, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &levelHandler{min: tt.min}
			// udpmux: a process-wide scope (a per-PeerConnection scope's warnings are all Debug).
			l, ok := slogFactory{log: slog.New(h)}.NewLogger("udpmux").(slogLeveled)
			if !ok {
				t.Fatal("NewLogger did not return a slogLeveled")
			}
			tt.log(l)
			if tt.wantNone {
				if len(h.recs) != 0 {
					t.Fatalf("got %d records (%q), want none", len(h.recs), h.recs[0].Message)
				}
				return
			}
			if len(h.recs) != 1 {
				t.Fatalf("got %d records, want 1", len(h.recs))
			}
			if got := h.recs[0].Level; got != tt.wantLevel {
				t.Errorf("level of %q: got %v, want %v", h.recs[0].Message, got, tt.wantLevel)
			}
		})
	}
}
