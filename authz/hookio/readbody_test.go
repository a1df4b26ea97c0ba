package hookio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// TestReadBodyAsBefore sends raw requests to a real net/http server (declared lengths within and
// beyond the bound, a body shorter than declared, chunked bodies) and checks that ReadBody reads
// and refuses exactly as reading through MaxBytesReader did.
func TestReadBodyAsBefore(t *testing.T) {
	const max = 64
	type answer struct {
		body    string
		refusal string
	}
	got := make(chan [2]answer, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a [2]answer
		// Each reader gets its own copy of the body, read from the wire once.
		raw, _ := io.ReadAll(r.Body)
		for i, read := range []func(http.ResponseWriter, *http.Request, int64) ([]byte, *Refusal){ReadBody, readBodyRef} {
			r2 := r.Clone(r.Context())
			r2.Body = io.NopCloser(io.MultiReader(strings.NewReader(string(raw)), errReader{}))
			if r.ContentLength >= 0 && int64(len(raw)) == r.ContentLength {
				r2.Body = io.NopCloser(strings.NewReader(string(raw)))
			}
			b, ref := read(w, r2, max)
			a[i].body = string(b)
			if ref != nil {
				a[i].refusal = fmt.Sprint(ref.Status, ref.Reason, ref.Message)
			}
		}
		got <- a
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	small, big := strings.Repeat("a", 40), strings.Repeat("b", max+1)
	for _, tc := range []struct{ name, req string }{
		{"declared, within", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n" + small},
		{"declared, exactly the bound", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", max, strings.Repeat("c", max))},
		{"declared, empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"},
		{"declared, beyond", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", max+1, big)},
		{"chunked, within", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n" + small + "\r\n0\r\n\r\n"},
		{"chunked, beyond", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", max+1, big)},
		{"no body", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
				t.Fatal(err)
			}
			a := <-got
			if a[0] != a[1] {
				t.Errorf("ReadBody = %+v, reading through MaxBytesReader = %+v", a[0], a[1])
			}
		})
	}
	// A body shorter than declared: the client stops sending; both must refuse with read_error.
	t.Run("declared, ends early", func(t *testing.T) {
		for i, read := range []func(http.ResponseWriter, *http.Request, int64) ([]byte, *Refusal){ReadBody, readBodyRef} {
			r, _ := http.NewRequest("POST", "/", io.NopCloser(io.MultiReader(strings.NewReader("abc"), errReader{})))
			r.ContentLength = 10
			if _, ref := read(nil, r, max); ref == nil || ref.Reason != "read_error" {
				t.Errorf("reader %d: got %+v, want read_error", i, ref)
			}
		}
	})
}

// errReader is a body that breaks off (the connection dropped).
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
