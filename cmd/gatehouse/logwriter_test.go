package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// gateWriter blocks every Write until open is closed, like a pipe whose reader stalls.
type gateWriter struct {
	open chan struct{}
	mu   sync.Mutex
	b    bytes.Buffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.Write(p)
}

// A stalled log reader must not stall the requests that log: lines are queued (up to
// logMaxQueue) while the flusher is stuck in a write, and come out complete and in order.
func TestLogWriterDoesNotBlockOnASlowReader(t *testing.T) {
	g := &gateWriter{open: make(chan struct{})}
	l := newLogWriter(g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx, time.Millisecond) }()

	const lines = 20_000 // ~1 MB: several flushes' worth, far below logMaxQueue
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := range lines {
			fmt.Fprintf(l, "level=INFO msg=decision n=%06d path=live/cam result=allow\n", i)
		}
	}()
	select {
	case <-wrote: // every Write returned while the reader was stalled
	case <-time.After(30 * time.Second):
		t.Fatal("Write blocked behind a stalled reader")
	}
	close(g.open)
	cancel()
	<-done
	out := strings.Split(strings.TrimSuffix(g.b.String(), "\n"), "\n")
	if len(out) != lines {
		t.Fatalf("got %d lines, want %d", len(out), lines)
	}
	for i, line := range out {
		if want := fmt.Sprintf("level=INFO msg=decision n=%06d path=live/cam result=allow", i); line != want {
			t.Fatalf("line %d: %q, want %q (order or content lost)", i, line, want)
		}
	}
}

// Beyond logMaxQueue writers wait for the flusher instead of growing memory or dropping lines.
func TestLogWriterBoundsItsQueue(t *testing.T) {
	g := &gateWriter{open: make(chan struct{})}
	l := newLogWriter(g)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx, time.Millisecond) }()
	line := []byte(strings.Repeat("x", 1023) + "\n")
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		for range 3 * logMaxQueue / len(line) { // three queues' worth
			l.Write(line)
		}
	}()
	time.Sleep(200 * time.Millisecond) // let the writer reach the bound (not a timing assertion: checked below)
	l.mu.Lock()
	queued := len(l.buf)
	l.mu.Unlock()
	if queued > logMaxQueue+len(line) {
		t.Errorf("queued %d bytes behind a stalled reader, bound %d", queued, logMaxQueue)
	}
	select {
	case <-blocked:
		t.Fatal("all writes returned while the reader was stalled: nothing bounds the queue")
	default:
	}
	close(g.open)
	<-blocked
	cancel()
	<-done
	if got, want := g.b.Len(), 3*logMaxQueue/len(line)*len(line); got != want {
		t.Errorf("wrote %d bytes, want %d", got, want)
	}
}
