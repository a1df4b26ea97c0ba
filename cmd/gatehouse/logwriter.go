package main

import (
	"context"
	"io"
	"sync"
	"time"
)

// Bounds of the log writer's memory.
const (
	logFlushAt  = 64 << 10 // buffered bytes that wake the flusher before its interval
	logMaxQueue = 16 << 20 // buffered bytes beyond which writers wait for the flusher
)

// logWriter buffers log output and writes it from its own goroutine (Run), so the decision log
// (one line per request) costs a memory copy on the hot path, never a write syscall, and a slow
// reader of the log (a pipe, journald catching up) does not stall requests: writes only wait when
// logMaxQueue bytes are queued (about five seconds of lines at 15,000 decisions a second), and
// then they wait rather than drop a line. At most one interval of lines is lost if the process
// is killed; Flush runs on every orderly exit.
type logWriter struct {
	w     io.Writer
	wmu   sync.Mutex // serializes writes to w (Run and Flush), so lines keep their order
	mu    sync.Mutex // guards buf and spare
	room  *sync.Cond // signalled when buf was taken by a flush
	buf   []byte
	spare []byte // the buffer the last flush wrote out, reused for the next
	wake  chan struct{}
}

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: w, wake: make(chan struct{}, 1)}
	l.room = sync.NewCond(&l.mu)
	return l
}

// Write implements io.Writer. p is one whole line (slog and logline write a line per call).
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	for len(l.buf) >= logMaxQueue {
		l.room.Wait()
	}
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= logFlushAt
	l.mu.Unlock()
	if full {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes out everything buffered.
func (l *logWriter) Flush() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	out := l.buf
	l.buf, l.spare = l.spare[:0], nil
	l.room.Broadcast()
	l.mu.Unlock()
	if len(out) == 0 {
		return
	}
	_, _ = l.w.Write(out)         // outside mu: writers go on filling the next buffer meanwhile
	if cap(out) <= 4*logFlushAt { // keep a usual-sized buffer; let a burst's go
		l.mu.Lock()
		l.spare = out[:0]
		l.mu.Unlock()
	}
}

// Run flushes every interval, and sooner when logFlushAt bytes are waiting, until ctx ends, then
// flushes once more.
func (l *logWriter) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.Flush()
			return
		case <-t.C:
		case <-l.wake:
		}
		l.Flush()
	}
}
