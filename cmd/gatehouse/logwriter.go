package main

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"
)

// logWriter buffers log output and flushes it every interval, so the decision log (one line per
// request) costs a memory copy on the hot path instead of a write syscall. At most interval of
// log lines is lost if the process is killed; Flush runs on every orderly exit.
type logWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newLogWriter(w io.Writer) *logWriter {
	return &logWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write implements io.Writer.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Flush writes out everything buffered.
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.w.Flush()
}

// Run flushes every interval until ctx ends, then flushes once more.
func (l *logWriter) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.Flush()
			return
		case <-t.C:
			l.Flush()
		}
	}
}
