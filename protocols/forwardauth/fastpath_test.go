package forwardauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path"
	"reflect"
	"strings"
	"testing"

	"gatehouse/authz"
)

// originalRef is Original as it was before its fast path: every header read through
// Header.Values, url.ParseRequestURI. The reference of FuzzOriginal.
func originalRef(r *http.Request) (method string, u *url.URL, err error) {
	var uris []string
	if v := r.Header.Values("X-Forwarded-Uri"); len(v) > 0 {
		uris = append(uris, v...)
	}
	if v := r.Header.Values("X-Original-Uri"); len(v) > 0 {
		uris = append(uris, v...)
	}
	for _, v := range r.Header.Values("X-Original-Url") {
		full, err := url.Parse(v)
		if err != nil {
			return "", nil, fmt.Errorf("%w: X-Original-URL is not a URL", ErrAmbiguous)
		}
		uris = append(uris, full.RequestURI())
	}
	if len(uris) == 0 {
		return "", nil, ErrNoTarget
	}
	for _, v := range uris[1:] {
		if v != uris[0] {
			return "", nil, fmt.Errorf("%w: original URI", ErrAmbiguous)
		}
	}
	u, err = url.ParseRequestURI(uris[0])
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "", nil, fmt.Errorf("%w: original URI is not a path", ErrAmbiguous)
	}
	methods := append(r.Header.Values("X-Forwarded-Method"), r.Header.Values("X-Original-Method")...)
	method = r.Method
	if len(methods) > 0 {
		method = methods[0]
		for _, m := range methods[1:] {
			if !strings.EqualFold(m, method) {
				return "", nil, fmt.Errorf("%w: original method", ErrAmbiguous)
			}
		}
	}
	return strings.ToUpper(method), u, nil
}

// TestHeaderKeysCanonical: the handler indexes header maps directly, which equals Header.Get,
// Values and Set only for keys already in canonical form.
func TestHeaderKeysCanonical(t *testing.T) {
	for _, k := range []string{"X-Forwarded-Uri", "X-Original-Uri", "X-Original-Url", "X-Forwarded-Method",
		"X-Original-Method", "Authorization", "User-Agent", HeaderUser, HeaderStream} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}

// FuzzParseRequestURI: parseRequestURI answers exactly as url.ParseRequestURI.
func FuzzParseRequestURI(f *testing.F) {
	for _, s := range []string{"/hls/live/cam/index.m3u8", "/a/b.m3u8?token=x", "/a?", "/a??", "/a?b?", "//evil/x", "/a%2fb",
		"/a b", "/a\x7f", "/a?\x01", "*", "", "http://h/a", "/a#f", "/a:b@c;d=e,f+g$h&i~", "/é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gerr := parseRequestURI(s)
		want, werr := url.ParseRequestURI(s)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%q: error %v, url.ParseRequestURI %v", s, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %#v, url.ParseRequestURI %#v", s, got, want)
		}
	})
}

// FuzzOriginal: Original answers exactly as originalRef for any combination of the headers it
// reads (absent, once or twice each).
func FuzzOriginal(f *testing.F) {
	f.Add("GET", "", "/hls/live/cam/index.m3u8", "", "", "GET", "", uint8(0))
	f.Add("GET", "/a/b.ts", "/a/b.ts", "https://h/a/b.ts", "head", "HEAD", "x", uint8(7))
	f.Add("POST", "/a", "/b", "%zz", "", "", "", uint8(2))
	f.Fuzz(func(t *testing.T, method, fwdURI, origURI, origURL, fwdMethod, origMethod, extra string, twice uint8) {
		r, err := http.NewRequest(http.MethodGet, "http://h/hooks/forward-auth", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Method = method
		for i, kv := range [][2]string{{"X-Forwarded-Uri", fwdURI}, {"X-Original-Uri", origURI}, {"X-Original-Url", origURL},
			{"X-Forwarded-Method", fwdMethod}, {"X-Original-Method", origMethod}} {
			if kv[1] == "" && twice&(1<<i) == 0 {
				continue // absent
			}
			r.Header[kv[0]] = []string{kv[1]}
			if twice&(1<<i) != 0 {
				r.Header[kv[0]] = append(r.Header[kv[0]], extra)
			}
		}
		m, u, err := Original(r)
		wm, wu, werr := originalRef(r)
		if (err == nil) != (werr == nil) || (err != nil && (err.Error() != werr.Error() || !errors.Is(err, ErrAmbiguous) && !errors.Is(err, ErrNoTarget))) {
			t.Fatalf("error %v, reference %v", err, werr)
		}
		if m != wm || !reflect.DeepEqual(u, wu) {
			t.Fatalf("got %q %#v, reference %q %#v", m, u, wm, wu)
		}
	})
}

// TestAllowHeaders: allow's reply headers are those Header().Set gave, with and without a user
// (and a user with a line break, never sent).
func TestAllowHeaders(t *testing.T) {
	h := New(Config{}, &backendGen{}, nil, nil)
	tg := Target{Path: "live/cam", Protocol: "hls", Playlist: true, Dir: "/hls/live/cam/"}
	for _, id := range []string{"bob", "", "a\nb"} {
		w := httptest.NewRecorder()
		h.allow(w, tg, netip.Addr{}, id, "")
		want := http.Header{}
		if id != "" && !strings.ContainsAny(id, "\r\n") {
			want.Set(HeaderUser, id)
		}
		want.Set(HeaderStream, tg.Path)
		if w.Code != http.StatusNoContent || !reflect.DeepEqual(w.Result().Header, want) {
			t.Errorf("identity %q: got %d %v, want 204 %v", id, w.Code, w.Result().Header, want)
		}
	}
}

// backendGen is an Authorizer that is never asked (allow does not decide).
type backendGen struct{}

func (backendGen) Authorize(context.Context, *authz.Request) authz.Decision { return authz.Decision{} }
func (backendGen) Generation() uint64                                       { return 1 }

// mapPathRef is mapPath's cleaning as it was before isClean: the reference of FuzzMapPath.
func mapPathRef(rules []Rule, urlPath string) (Target, bool) {
	if !strings.HasPrefix(urlPath, "/") || strings.ContainsAny(urlPath, "\x00\r\n\\") {
		return Target{}, false
	}
	clean := path.Clean(urlPath)
	if strings.HasSuffix(urlPath, "/") && clean != "/" {
		clean += "/"
	}
	return mapPath(rules, clean) // a clean path maps as itself
}

// FuzzMapPath: mapPath with its clean-path shortcut maps every URL path as path.Clean first.
func FuzzMapPath(f *testing.F) {
	for _, s := range []string{"/hls/live/cam/index.m3u8", "/hls/live/cam/", "/", "//", "/hls//a/b.ts", "/hls/./a/b.ts",
		"/hls/a/../b/x.ts", "/hls/a/..", "/hls/a/.", "/.../a.ts", "/hls/a/b.ts/", "/dash/cam-1.m4s", "/a/.b/c.mpd"} {
		f.Add(s)
	}
	rules := []Rule{{Prefix: "/hls/", StripSuffix: true}, {Prefix: "/dash/", PathPrefix: "d/", SegmentSeparator: "-"}, {Prefix: "/"}}
	f.Fuzz(func(t *testing.T, p string) {
		got, gok := mapPath(rules, p)
		want, wok := mapPathRef(rules, p)
		if got != want || gok != wok {
			t.Fatalf("%q: %+v %v, reference %+v %v", p, got, gok, want, wok)
		}
		if strings.HasPrefix(p, "/") && isClean(p) {
			c := path.Clean(p)
			if strings.HasSuffix(p, "/") && c != "/" {
				c += "/"
			}
			if c != p {
				t.Fatalf("isClean(%q) but path.Clean gives %q", p, c)
			}
		}
	})
}
