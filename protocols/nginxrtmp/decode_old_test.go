package nginxrtmp

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gatehouse/authz/creds"
	"gatehouse/authz/hookio"
)

// keyKind classifies a parameter name as the decoder before round 3 did (the oracle of
// TestParamIndexMatchesKeyKind). server: a field nginx-rtmp (arut, Debian or the fork)
// writes itself; a client can append any of them to its stream name's query, so each may appear
// at most once, and they are not part of the client's args. cred: a client arg carrying
// credentials (creds.IsParam); it stays in the args but may appear only once.
func keyKind(k string) (server, cred bool) {
	switch k {
	case "call", "app", "name", "addr", "clientid", "epoch",
		"flashver", "swfurl", "tcurl", "pageurl",
		"type", "start", "duration", "reset", "time", "timestamp",
		"recorder", "path", "bytes_in", "bytes_out", "module":
		return true, false
	}
	return false, creds.IsParam(k)
}

// decodeOld is the decoder before round 3 of the hook-speed work (a map of slices, as
// url.ParseQuery), kept as the oracle of FuzzDecodeMatchesOld. It parses a callback's
// form-encoded parameters (a POST body or a GET query). It rejects a
// server key or credential key that appears twice (a client injecting call=, name=, app=, user=
// … through its stream name's query), a missing call, and invalid percent-encoding. Errors wrap
// ErrMalformed or ErrDuplicate and name keys, never values.
func decodeOld(raw string) (*hook, error) {
	var (
		seen = make(map[string][]string, 16)
		args []string
	)
	for i, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, fmt.Errorf("%w: parameter %d has invalid percent-encoding", ErrMalformed, i+1)
		}
		v, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, fmt.Errorf("%w: value of parameter %d has invalid percent-encoding", ErrMalformed, i+1)
		}
		server, cred := keyKind(k)
		if server || cred {
			seen[k] = append(seen[k], v)
		}
		if !server {
			args = append(args, pair)
		}
	}
	calls := seen["call"]
	switch {
	case len(calls) == 0 || calls[0] == "":
		return nil, fmt.Errorf("%w: no call parameter", ErrMalformed)
	case len(calls) > 1:
		return nil, fmt.Errorf("%w %q", ErrDuplicate, "call")
	}
	h := &hook{call: calls[0]}
	for k, vs := range seen {
		if len(vs) < 2 {
			continue
		}
		// arut's on_disconnect sends app twice (session prefix and event part) with one value.
		if k == "app" && h.call == CallDisconnect && len(vs) == 2 && vs[0] == vs[1] {
			continue
		}
		return nil, fmt.Errorf("%w %q", ErrDuplicate, k)
	}
	first := func(k string) string {
		if vs := seen[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	h.app = strings.Trim(first("app"), "/")
	h.name = first("name")
	h.clientID = first("clientid")
	h.flashver = first("flashver")
	h.addr, _ = hookio.ParseIP(first("addr"))
	h.addrText = first("addr") // remote() from it is the old handler's addr.String() (FuzzRemoteText)
	h.args = strings.Join(args, "&")
	if len(h.app) > maxField || len(h.name) > maxField {
		return nil, fmt.Errorf("%w: app or name longer than %d bytes", ErrMalformed, maxField)
	}
	q := make(url.Values, 5)
	for k, vs := range seen {
		if _, cred := keyKind(k); cred {
			q[k] = vs
		}
	}
	c, err := creds.FromQuery(q) // duplicates were rejected above
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h.creds = c
	return h, nil
}

// TestParamIndexMatchesKeyKind: the decoder's table counts exactly the server keys and the
// credential keys, and classifies them as before.
func TestParamIndexMatchesKeyKind(t *testing.T) {
	names := []string{"", "x", "Call", "CALL", "app ", "access_key", "stream", "args"}
	for i := 0; i < nParams; i++ {
		names = append(names, paramName(i))
		if paramIndex(paramName(i)) != i {
			t.Errorf("paramIndex(paramName(%d) = %q) = %d", i, paramName(i), paramIndex(paramName(i)))
		}
	}
	for _, k := range names {
		server, cred := keyKind(k)
		i := paramIndex(k)
		if gotServer, gotCred := i >= 0 && i < pUser, i >= pUser; gotServer != server || gotCred != cred {
			t.Errorf("%q: index %d, keyKind says server %v cred %v", k, i, server, cred)
		}
	}
}

// checkSameDecode compares decode with decodeOld on raw: the same hook, or errors with the same
// sentinel and text. When several keys are repeated, decodeOld names one of them at random (a
// map's order) and decode the first in its table's order, so then only the repetition of the
// named key is checked.
func checkSameDecode(t *testing.T, raw string) {
	t.Helper()
	want, werr := decodeOld(raw)
	got, gerr := decode(raw)
	switch {
	case werr == nil && gerr == nil:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decode(%q)\n got  %+v\n want %+v", raw, got, want)
		}
	case werr == nil || gerr == nil:
		t.Fatalf("decode(%q): got error %v, want %v", raw, gerr, werr)
	case errors.Is(werr, ErrDuplicate) && errors.Is(gerr, ErrDuplicate):
		if werr.Error() == gerr.Error() {
			return
		}
		// The old decoder's choice among several repeated keys is random (a map's order), and
		// not uniform: a key whose slot follows another repeated key's comes first only when
		// the iteration starts at it (about 1 in 8 for a small map), so 20 tries missed it
		// about once in 16 such inputs (the seeds in testdata/fuzz/FuzzDecodeMatchesOld).
		for range 1000 {
			if _, werr = decodeOld(raw); werr.Error() == gerr.Error() {
				return
			}
		}
		t.Fatalf("decode(%q): got %v, never seen from the old decoder (%v)", raw, gerr, werr)
	case werr.Error() != gerr.Error() || errors.Is(werr, ErrDuplicate) != errors.Is(gerr, ErrDuplicate) ||
		errors.Is(werr, ErrMalformed) != errors.Is(gerr, ErrMalformed):
		t.Fatalf("decode(%q): got error %v, want %v", raw, gerr, werr)
	}
}

// decodeCases are bodies on the edges of the decoder: escapes in keys and values, empty pairs,
// repeated keys (and arut's repeated app on disconnect), args split by server keys.
var decodeCases = []string{
	"",
	"&&&",
	"call",
	"call=",
	"call=publish",
	"call=publish&call=publish",
	"c%61ll=publish&call=play",
	"call=publish&name=cam&app=live&user=u&pass=p",
	"user=u&call=publish&pass=p&x=1&&y=2&name=a%2Fb&app=%2Flive%2F",
	"call=publish&user=u&user=v",
	"call=publish&us%65r=u&user=v",
	"call=publish&app=live&name=a&app=live",
	"call=disconnect&app=live&app=live",
	"call=disconnect&app=live&app=other",
	"call=disconnect&app=live&app=live&app=live",
	"call=disconnect&app=live&a%70p=live",
	"call=publish&tcurl=%zz",
	"call=publish&tcurl=%4",
	"call=publish&tcurl=abc%",
	"call=publish&swfurl=%41%4",
	"call=publish&x=%4g",
	"call=publish&%zz=1",
	"%=x&call=%",
	"call=publish&name=a+b&flashver=FMLE%2F3.0+(compatible)&addr=%3A%3Affff%3A1.2.3.4",
	"call=publish&name=x&time=1&time=2&bytes_in=1&bytes_in=2",
	"call=publish&token=t&jwt=j&key=k&pass=eyJ.x.y",
	"call=publish&name=" + strings.Repeat("n", 256),
	"call=publish&app=" + strings.Repeat("a", 255) + "&name=n",
	"a=1&call=publish&b=2&name=n&c=3&&d=4",
	"=&call=publish&=x&x=",
	"call=%70ublish&clientid=7&clientid=8",
}

func TestDecodeMatchesOld(t *testing.T) {
	for _, raw := range decodeCases {
		checkSameDecode(t, raw)
	}
}

// FuzzDecodeMatchesOld: decode accepts and refuses exactly what the decoder before round 3 did,
// with the same hook and the same error.
func FuzzDecodeMatchesOld(f *testing.F) {
	for _, raw := range decodeCases {
		f.Add(raw)
	}
	for _, name := range []string{"publish", "play", "update_publish", "fork_publish", "record_done"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "captured", name+".http"))
		if err != nil {
			f.Fatal(err)
		}
		_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		f.Add(string(body))
	}
	f.Fuzz(func(t *testing.T, raw string) { checkSameDecode(t, raw) })
}

// FuzzQueryUnescape: queryUnescape answers exactly as url.QueryUnescape.
func FuzzQueryUnescape(f *testing.F) {
	for _, s := range []string{"", "a", "a+b", "%41", "%4", "%zz", "FMLE%2F3.0", "100%", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gerr := queryUnescape(s)
		want, werr := url.QueryUnescape(s)
		if got != want || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("queryUnescape(%q) = %q, %v; url.QueryUnescape: %q, %v", s, got, gerr, want, werr)
		}
	})
}

// FuzzRemoteText: remoteText(s, a) is a.String() for every a hookio.ParseIP reads from s, and ""
// when it reads none.
func FuzzRemoteText(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "192.0.2.7", "1.2.3.04", "::ffff:1.2.3.4", "::1", "fe80::1%eth0", "1.2.3", "", "0.0.0.0", "255.255.255.255", "256.1.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, _ := hookio.ParseIP(s)
		want := ""
		if a.IsValid() {
			want = a.String()
		}
		if got := remoteText(s, a); got != want {
			t.Fatalf("remoteText(%q) = %q, want %q", s, got, want)
		}
	})
}

// decode returns the hook raw decodes to (hook.decode), or nil and the error.
func decode(raw string) (*hook, error) {
	h := new(hook)
	if err := h.decode(raw); err != nil {
		return nil, err
	}
	return h, nil
}
