package authz

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"gatehouse/authz/logline"
)

// BenchmarkEngineLog compares a decision without logging, with slog's text and JSON handlers and
// with the engine's own decision line (logline) writing to io.Discard: the cost of the one line
// per decision. The method is ContextBound, as every built-in backend is (the chain runs on the
// caller's goroutine).
func BenchmarkEngineLog(b *testing.B) {
	chain := NewChain(Method{Name: "internal", Backend: bound{d: Allowing("alice", time.Time{})}})
	req := &Request{Action: ActionPublish, Path: "live/alice", Protocol: "rtmp", Source: "mediamtx", IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Pass: "pw"}
	for _, c := range []struct {
		name string
		log  *slog.Logger
		opts []EngineOption
	}{
		{"no log", nil, nil},
		{"text", slog.New(slog.NewTextHandler(io.Discard, nil)), nil},
		{"json", slog.New(slog.NewJSONHandler(io.Discard, nil)), nil},
		{"logline text", nil, []EngineOption{WithDecisionLog(logline.New(io.Discard, false, nil))}},
		{"logline json", nil, []EngineOption{WithDecisionLog(logline.New(io.Discard, true, nil))}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := NewEngine(chain, c.log, c.opts...)
			b.ReportAllocs()
			for b.Loop() {
				if !e.Authorize(context.Background(), req).Allowed() {
					b.Fatal("denied")
				}
			}
		})
	}
}
