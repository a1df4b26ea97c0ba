package hookio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// readBodyRef is ReadBody before its declared-length path: everything through MaxBytesReader.
func readBodyRef(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *Refusal) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Refusal{Status: http.StatusRequestEntityTooLarge, Reason: "body_too_large", Message: fmt.Sprintf("body exceeds %d bytes", max)}
		}
		return nil, &Refusal{Status: http.StatusBadRequest, Reason: "read_error", Message: "could not read body"}
	}
	return body, nil
}

type readAnswer struct{ body, refusal string }

// serveReads starts a real net/http server whose handler reads each request's own body with
// ReadBody (X-Reader: new) or readBodyRef (X-Reader: ref) and reports what it got.
func serveReads(t *testing.T, max int64) (addr string, got <-chan readAnswer) {
	t.Helper()
	ch := make(chan readAnswer, 4)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read := ReadBody
		if r.Header.Get("X-Reader") == "ref" {
			read = readBodyRef
		}
		b, ref := read(w, r, max)
		a := readAnswer{body: string(b)}
		if ref != nil {
			a.refusal = fmt.Sprint(ref.Status, " ", ref.Reason, " ", ref.Message)
		}
		ch <- a
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), ch
}

// send writes raw (with the reader header added) on a new connection, then closes its writing
// side, and waits for the handler's answer.
func send(t *testing.T, addr, reader, raw string, got <-chan readAnswer) readAnswer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	if _, err := io.WriteString(c, head+"\r\nX-Reader: "+reader+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite() // a body shorter than declared ends here
	select {
	case a := <-got:
		_, _ = http.ReadResponse(bufio.NewReader(c), nil)
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from the handler")
		return readAnswer{}
	}
}

// TestReadBodyAsBefore: on a real server, each reader reading net/http's own body reader,
// ReadBody reads and refuses exactly as reading through MaxBytesReader did: declared lengths
// within the small-body bound and beyond it, beyond the limit, a body shorter than declared,
// chunked bodies.
func TestReadBodyAsBefore(t *testing.T) {
	const max = 8 << 10
	addr, got := serveReads(t, max)
	small, mid, big := strings.Repeat("a", 40), strings.Repeat("m", smallBody+100), strings.Repeat("b", max+1)
	for _, tc := range []struct{ name, req string }{
		{"declared, small", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n" + small},
		{"declared, empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"},
		{"declared, beyond the small-body bound", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(mid), mid)},
		{"declared, beyond the limit", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(big), big)},
		{"declared, ends early", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + small},
		{"declared large, ends early", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", max, small)},
		{"chunked, within", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n" + small + "\r\n0\r\n\r\n"},
		{"chunked, beyond the limit", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big)},
		{"no body", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := send(t, addr, "new", tc.req, got), send(t, addr, "ref", tc.req, got)
			if a != b {
				t.Errorf("ReadBody = %.80q / %q, reading through MaxBytesReader = %.80q / %q", a.body, a.refusal, b.body, b.refusal)
			}
		})
	}
}

// TestReadBodyAllocatesWhatArrives: a client that declares a large body and sends a few bytes
// costs what it sent, not what it declared (a buffer of the declared size, allocated before any
// byte, would let a few hundred bytes of headers pin 64 KiB per connection).
func TestReadBodyAllocatesWhatArrives(t *testing.T) {
	const declared = 64 << 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		r, _ := http.NewRequest("POST", "/", io.NopCloser(io.MultiReader(strings.NewReader("0123456789"), errReader{})))
		r.ContentLength = declared
		if _, ref := ReadBody(httptest.NewRecorder(), r, declared); ref == nil {
			t.Fatal("a body that broke off was read")
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 10*16<<10 {
		t.Errorf("10 requests declaring %d bytes and sending 10 allocated %d bytes, want well under one declared size each", declared, got)
	}
}

// errReader is a body that breaks off (the connection dropped).
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
