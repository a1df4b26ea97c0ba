package mediamtx

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"gatehouse/authz/hookio"
	"gatehouse/authz/hookio/hookiotest"
)

// decodeFastRef is decodeFast as it was before it copied the values in one allocation (one
// string per field, assigned as the walk goes): the reference of FuzzDecodeFastMatchesRef.
func decodeFastRef(b []byte, w *wireRequest) bool {
	return hookio.WalkJSON(b, func(_, key, val []byte, kind hookio.FastKind) bool {
		switch kind {
		case hookio.FastString:
			return assignRef(w, key, val, false)
		case hookio.FastNull:
			return assignRef(w, key, nil, true)
		}
		return false
	})
}

func assignRef(w *wireRequest, key, val []byte, isNull bool) bool {
	var dst *string
	switch string(key) {
	case "ip":
		dst = &w.IP
	case "user":
		dst = &w.User
	case "password":
		dst = &w.Password
	case "token":
		dst = &w.Token
	case "action":
		dst = &w.Action
	case "path":
		dst = &w.Path
	case "protocol":
		dst = &w.Protocol
	case "query":
		dst = &w.Query
	case "userAgent":
		dst = &w.UserAgent
	case "id":
		if isNull {
			w.ID = nil
		} else {
			v := string(val)
			w.ID = &v
		}
		return true
	default:
		for _, k := range knownKeys {
			if strings.EqualFold(k, string(key)) {
				return false
			}
		}
		return true
	}
	if !isNull {
		*dst = string(val)
	}
	return true
}

// FuzzDecodeFastMatchesRef: decodeFast accepts exactly what the one-string-per-field version
// accepted and yields the same fields; when it refuses, w is untouched.
func FuzzDecodeFastMatchesRef(f *testing.F) {
	f.Add([]byte(`{"ip":"127.0.0.1","user":"u","password":"p","token":"p","action":"publish","path":"cam1","protocol":"rtsp","id":null,"query":"","userAgent":"Lavf"}`))
	f.Add([]byte(`{"id":"x","id":null,"path":"a","path":null,"id":"","x":1}`))
	f.Add([]byte(`{"id":"x","user":"é","User":"y"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want wireRequest
		gok, wok := decodeFast(b, &got), decodeFastRef(b, &want)
		if gok != wok {
			t.Fatalf("accepted %v, reference %v for %q", gok, wok, b)
		}
		if !gok {
			if got != (wireRequest{}) {
				t.Fatalf("refused %q but changed w: %+v", b, got)
			}
			return
		}
		if (got.ID == nil) != (want.ID == nil) || (got.ID != nil && *got.ID != *want.ID) {
			t.Fatalf("id %v, reference %v for %q", got.ID, want.ID, b)
		}
		got.ID, want.ID = nil, nil
		if got != want {
			t.Fatalf("%+v, reference %+v for %q", got, want, b)
		}
	})
}

// FuzzToLowerMatchesStrings: toLower is strings.ToLower.
func FuzzToLowerMatchesStrings(f *testing.F) {
	for _, s := range []string{"rtmp", "RTMP", "WebRTC", "srt", "", "\u212a", "İ", "rtsp\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := toLower(s), strings.ToLower(s); got != want {
			t.Fatalf("toLower(%q) = %q, want %q", s, got, want)
		}
	})
}

// writeJSONRef is writeJSON before it put the body and header values in one allocation.
func writeJSONRef(w http.ResponseWriter, status int, v reply) {
	var buf [256]byte
	b := appendReply(buf[:0], v)
	h := w.Header()
	vals := []string{"application/json", strconv.Itoa(len(b))}
	h["Content-Type"], h["Content-Length"] = vals[0:1:1], vals[1:2:2]
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// TestWriteJSONWire: the reply's bytes on the wire (status line, headers, body) are the old
// writer's, for short replies and ones longer than writeJSON's buffer.
func TestWriteJSONWire(t *testing.T) {
	for _, r := range []reply{
		{Allowed: true, Reason: "allowed"},
		{Reason: "not_permitted", Message: "not permitted"},
		{Reason: "malformed_request", Message: strings.Repeat("é\"<x>\x01", 60)},
	} {
		var wire [2]string
		for i, write := range []func(http.ResponseWriter, int, reply){writeJSON, writeJSONRef} {
			wire[i] = hookiotest.WireReply(t, func(w http.ResponseWriter, _ *http.Request) { write(w, 403, r) })
		}
		if wire[0] != wire[1] {
			t.Errorf("writeJSON wrote\n%q\nwant\n%q", wire[0], wire[1])
		}
	}
}
