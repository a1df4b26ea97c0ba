package nginxrtmp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
)

// replyOld is reply before the hook-speed work (Header.Set per value, Location set by the
// caller), kept as the oracle of TestReplyMatchesOld.
func replyOld(w http.ResponseWriter, status int, msg string) {
	body := msg + "\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// TestReplyMatchesOld: reply and replyLine answer with the same status, header map and body as
// before, with and without a Location and a header set earlier (Allow), and a later append to
// one header value does not change another.
func TestReplyMatchesOld(t *testing.T) {
	cases := []struct {
		name          string
		status        int
		msg, location string
		allow         string
		constant      bool // the caller passes the line (replyLine)
	}{
		{name: "ok", status: http.StatusOK, msg: "ok", constant: true},
		{name: "renamed", status: http.StatusFound, msg: "renamed", location: "cam", constant: true},
		{name: "denied", status: http.StatusForbidden, msg: "denied: bad_credentials"},
		{name: "empty", status: http.StatusBadRequest, msg: ""},
		{name: "long", status: http.StatusBadRequest, msg: string(make([]byte, 4000))},
		{name: "405", status: http.StatusMethodNotAllowed, msg: "use POST", allow: "GET, POST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := httptest.NewRecorder()
			if c.allow != "" {
				want.Header().Set("Allow", c.allow)
			}
			if c.location != "" {
				want.Header().Set("Location", c.location)
			}
			replyOld(want, c.status, c.msg)

			got := httptest.NewRecorder()
			if c.allow != "" {
				got.Header().Set("Allow", c.allow)
			}
			switch {
			case c.constant:
				replyLine(got, c.status, c.msg+"\n", c.location)
			default:
				reply(got, c.status, c.msg)
			}
			if got.Code != want.Code || got.Body.String() != want.Body.String() {
				t.Errorf("got %d %q, want %d %q", got.Code, got.Body, want.Code, want.Body)
			}
			if !reflect.DeepEqual(got.Header(), want.Header()) {
				t.Errorf("header: got %v, want %v", got.Header(), want.Header())
			}
			if !reflect.DeepEqual(got.Result().Header, want.Result().Header) {
				t.Errorf("sent header: got %v, want %v", got.Result().Header, want.Result().Header)
			}
			hdr := got.Header()
			hdr["Content-Type"] = append(hdr["Content-Type"], "x")
			if hdr.Get("Content-Length") != strconv.Itoa(len(c.msg)+1) || (c.location != "" && hdr.Get("Location") != c.location) {
				t.Errorf("an append to Content-Type changed another header: %v", hdr)
			}
		})
	}
}
