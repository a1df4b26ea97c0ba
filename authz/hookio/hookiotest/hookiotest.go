// Package hookiotest holds test helpers for the hook adapters' wire behaviour.
package hookiotest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

var dateLine = regexp.MustCompile(`Date: [^\r]*\r\n`)

// WireReply serves one GET with h on a loopback server and returns the raw HTTP/1.1 reply as
// the client read it (status line, headers in their order, body), with the Date header's value
// masked: what a rewrite of a reply writer must leave byte for byte as it was.
func WireReply(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return dateLine.ReplaceAllString(string(b), "Date: -\r\n")
}
