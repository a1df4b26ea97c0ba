package ome

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"gatehouse/authz"
	"gatehouse/authz/creds"
)

// The reference implementations below are the adapter's code before the hook-speed work (issue
// 12): the differential tests hold the faster code to them byte for byte.

// oldSessionID is SessionID as it was: sha256 over the concatenated string, hex-encoded.
func oldSessionID(a *Admission) string {
	sum := sha256.Sum256([]byte(a.Client.Address + "\x00" + a.Client.Port.String() + "\x00" + a.Request.URL))
	return "ome-" + hex.EncodeToString(sum[:16])
}

func FuzzSessionIDMatchesOld(f *testing.F) {
	f.Add("127.0.0.1", "51234", "rtmp://127.0.0.1:1935/live/cam?user=testuser&pass=testpass")
	f.Add("", "", "")
	f.Add("2001:db8::1", "0", strings.Repeat("x", 300)) // longer than SessionID's stack buffer
	f.Fuzz(func(t *testing.T, addr, port, url string) {
		var a Admission
		a.Client.Address, a.Client.Port, a.Request.URL = addr, json.Number(port), url
		if got, want := a.SessionID(), oldSessionID(&a); got != want {
			t.Fatalf("SessionID = %q, want %q", got, want)
		}
	})
}

// oldTarget is Target as it was (with the parsed query).
type oldTarget struct {
	Path, Rest string
	Query      url.Values
	RawQ       string
	URL        *url.URL
	Nested     bool
}

// oldParseTarget is ParseTarget as it was: url.Parse and url.ParseQuery on every URL.
func oldParseTarget(raw, protocol string) (*oldTarget, error) {
	t, err := oldParseTarget1(raw, protocol)
	if err == nil && t == nil {
		var outer *url.URL
		if outer, err = url.Parse(raw); err != nil {
			return nil, fmt.Errorf("%w: not a URL", ErrBadURL)
		}
		q, qerr := url.ParseQuery(outer.RawQuery)
		if qerr != nil {
			return nil, fmt.Errorf("%w: malformed query", ErrBadURL)
		}
		if sid := q["streamid"]; len(sid) != 1 || sid[0] == "" {
			return nil, fmt.Errorf("%w: path is not /app/stream", ErrBadURL)
		}
		if t, err = oldParseTarget1(q.Get("streamid"), protocol); err == nil && t == nil {
			return nil, fmt.Errorf("%w: streamid path is not /app/stream", ErrBadURL)
		}
		if t != nil {
			t.Nested = true
		}
	}
	return t, err
}

func oldParseTarget1(raw, protocol string) (*oldTarget, error) {
	if !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: invalid UTF-8 or a control character", ErrBadURL)
	}
	m, ok := matchOMEURL(raw)
	u, err := url.Parse(raw)
	if !ok || err != nil {
		return nil, fmt.Errorf("%w: not a URL", ErrBadURL)
	}
	if !strings.EqualFold(m.scheme, u.Scheme) || m.userinfo || u.User != nil ||
		u.Opaque != "" || u.Fragment != "" || strings.Contains(raw, "#") ||
		m.qs != u.RawQuery || m.path != u.EscapedPath() || strings.Contains(m.path, "%") {
		return nil, fmt.Errorf("%w: OME would read another stream from this url", ErrBadURL)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed query", ErrBadURL)
	}
	p := strings.TrimPrefix(u.Path, "/")
	segs := strings.Split(p, "/")
	if len(segs) < 2 {
		return nil, nil
	}
	max := 3
	if Protocol(protocol) == "rtmp" {
		max = 2
	}
	if len(segs) > max {
		return nil, fmt.Errorf("%w: path has %d segments, at most %d for this protocol", ErrBadURL, len(segs), max)
	}
	if err := authz.CheckPath(p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	t := &oldTarget{Path: segs[0] + "/" + segs[1], Query: q, RawQ: u.RawQuery, URL: u}
	if len(segs) == 3 {
		t.Rest = "/" + segs[2]
	}
	return t, nil
}

// checkTargetMatchesOld compares ParseTarget, and the credentials an opening reads from its
// query, with the old code.
func checkTargetMatchesOld(t *testing.T, raw, protocol string) {
	t.Helper()
	got, gotErr := ParseTarget(raw, protocol)
	want, wantErr := oldParseTarget(raw, protocol)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || (got == nil) != (want == nil) {
		t.Fatalf("ParseTarget(%q, %q) = %+v, %v; old: %+v, %v", raw, protocol, got, gotErr, want, wantErr)
	}
	if got == nil {
		return
	}
	if got.Path != want.Path || got.Rest != want.Rest || got.RawQ != want.RawQ || got.Nested != want.Nested ||
		!reflect.DeepEqual(got.URL, want.URL) {
		t.Fatalf("ParseTarget(%q, %q) = %+v (url %#v); old: %+v (url %#v)", raw, protocol, got, got.URL, want, want.URL)
	}
	for _, tp := range [][]string{{"access_key"}, nil} {
		gotC, gotErr := creds.FromRawQuery(got.RawQ, tp...)
		wantC, wantErr := creds.FromQuery(want.Query, tp...)
		if gotC != wantC || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("credentials of %q: %+v, %v; old: %+v, %v", raw, gotC, gotErr, wantC, wantErr)
		}
	}
}

var targetSeeds = []string{
	"rtmp://127.0.0.1:1935/live/cam?user=testuser&pass=testpass",
	"rtmp://h/app/stream", "RTMP://H:1/a/b?", "https://h:3333/app/stream/llhls.m3u8?token=a.b.c",
	"wss://h/app/stream/ts:playlist.m3u8", "rtmp://u:p@h/a/b", "rtmp://h/a/b#f", "rtmp://h/a%2Fb/c",
	"srt://h:9999?streamid=srt%3A%2F%2Fh%3A9999%2Flive%2Fcam", "rtmp://h/a/b?x=%zz", "rtmp://h/a/b?x;y",
	"rtmp://h:/a/b", "rtmp://h:1:2/a/b", "rtmp://[::1]:1935/a/b", "rtmp://h/a/b?x=rtmp://h/c/d?y",
	"rtmp://h/a/../b", "rtmp://h//a/b", "a+b.c-d://h/a/b", "1a://h/a/b", "rtmp://h/a/b/c/d", "rtmp://h?x/a/b",
	"rtmp://h/a/b?access_key=k&access_key=j", "rtmp://h/a/b?user=a&user=b", "rtmp:///a/b", "rtmp://:1/a/b",
}

func TestParseTargetMatchesOld(t *testing.T) {
	for _, raw := range targetSeeds {
		for _, proto := range []string{"RTMP", "LLHLS", "SRT"} {
			checkTargetMatchesOld(t, raw, proto)
		}
	}
}

// FuzzParseTargetMatchesOld holds ParseTarget (its own URL reading included) to the old code,
// which asked url.Parse and url.ParseQuery on every URL.
func FuzzParseTargetMatchesOld(f *testing.F) {
	for _, s := range targetSeeds {
		f.Add(s, "RTMP")
		f.Add(s, "WebRTC")
	}
	f.Fuzz(func(t *testing.T, raw, protocol string) {
		checkTargetMatchesOld(t, raw, protocol)
	})
}

// FuzzParseURLFastMatchesParse holds parseURLFast to url.Parse wherever it answers.
func FuzzParseURLFastMatchesParse(f *testing.F) {
	for _, s := range targetSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := new(url.URL)
		if !parseURLFast(raw, got) {
			return
		}
		want, err := url.Parse(raw)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("parseURLFast(%q) = %#v; url.Parse: %#v, %v", raw, got, want, err)
		}
	})
}

// TestReplyJSONMatchesMarshal: writeJSON's body is json.Marshal's (the old writeJSON) plus '\n'.
func TestReplyJSONMatchesMarshal(t *testing.T) {
	ms := uint64(3_600_000)
	zero := uint64(0)
	for _, r := range []reply{
		{}, {Reason: "use POST"}, {Allowed: true, Reason: "internal", Lifetime: &ms},
		{Allowed: true, Lifetime: &zero, NewURL: "rtmp://h:1935/live/public?x=1&y=<2>"},
		{Reason: "quote \" backslash \\ tab \t nl \n del \x7f é \u2028 \xff"},
	} {
		checkReplyJSON(t, r)
	}
}

func checkReplyJSON(t *testing.T, r reply) {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.appendJSON(nil)); got != string(want)+"\n" {
		t.Fatalf("appendJSON(%+v) = %q, want %q", r, got, string(want)+"\n")
	}
}

func FuzzReplyJSONMatchesMarshal(f *testing.F) {
	f.Add(true, "ok", uint64(1), true, "rtmp://h/a/b")
	f.Add(false, "<&>\"\\\x00\u2029\xff", uint64(0), false, "")
	f.Fuzz(func(t *testing.T, allowed bool, reason string, ms uint64, withLifetime bool, newURL string) {
		r := reply{Allowed: allowed, Reason: reason, NewURL: newURL}
		if withLifetime {
			r.Lifetime = &ms
		}
		checkReplyJSON(t, r)
	})
}

// oldProtocol is Protocol as it was.
func oldProtocol(name string) string {
	p := strings.ToLower(strings.TrimSpace(name))
	switch p {
	case "llhls", "hlsv3", "hls", "tshls":
		return "hls"
	case "rtsppull", "rtsp":
		return "rtsp"
	case "lldash", "dash", "cmaf":
		return "dash"
	case "whip":
		return "webrtc"
	}
	return p
}

func FuzzProtocolMatchesOld(f *testing.F) {
	for _, s := range []string{"RTMP", "WebRTC", " LLHLS ", "HLSv3", "Thumbnail", "ovt", "\u212aey", "hlſv3", "SRT", "averyveryverylongname", "WHIP"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := Protocol(name), oldProtocol(name); got != want {
			t.Fatalf("Protocol(%q) = %q, want %q", name, got, want)
		}
	})
}

func FuzzCleanURLMatchesOld(f *testing.F) {
	for _, s := range []string{"rtmp://h/a/b", "a\x7fb", "a\x1fb", "é", "\xff", "~ "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		want := utf8.ValidString(raw) && !strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f })
		if got := cleanURL(raw); got != want {
			t.Fatalf("cleanURL(%q) = %v, want %v", raw, got, want)
		}
		if got, want := lastSchemeSep(raw), strings.LastIndex(raw, "://"); got != want {
			t.Fatalf("lastSchemeSep(%q) = %d, want %d", raw, got, want)
		}
	})
}
