package hookio

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestGuard: the hooks listener refuses what only a browser sends (a cross-site form post to
// 127.0.0.1:8090 carries Origin and Sec-Fetch-*; a DNS-rebound page carries its own name in
// Host) and lets through every Host a streaming server sends: an IP literal (nginx-rtmp sends it
// without the port), localhost, none (HTTP/1.0), or a name the operator listed.
func TestGuard(t *testing.T) {
	allowed := []string{"gatehouse"}
	for _, tt := range []struct {
		name   string
		host   string
		header []string
		want   int
	}{
		{"nginx-rtmp: IP literal without port", "127.0.0.1", nil, 200},
		{"MediaMTX, SRS: IP with port", "127.0.0.1:8090", nil, 200},
		{"IPv6 literal", "[::1]:8090", nil, 200},
		{"localhost", "localhost:8090", nil, 200},
		{"under .localhost", "gatehouse.localhost", nil, 200},
		{"no Host (HTTP/1.0)", "", nil, 200},
		{"listed name (a container network)", "Gatehouse:8090", nil, 200},
		{"listed name with a trailing dot", "gatehouse.:8090", nil, 200},
		{"DNS-rebound page's name", "evil.example:8090", nil, 421},
		{"cross-site form post", "127.0.0.1:8090", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"}, 403},
		{"Origin alone", "127.0.0.1:8090", []string{"Origin", "null"}, 403},
		{"fetch no-cors", "127.0.0.1:8090", []string{"Sec-Fetch-Mode", "no-cors"}, 403},
		{"same-origin fetch after rebinding", "evil.example:8090", []string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"}, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), allowed, nil)
			r := httptest.NewRequest(http.MethodPost, "/hooks/nginx-rtmp", nil)
			r.Host = tt.host
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Set(tt.header[i], tt.header[i+1])
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("got %d, want %d", w.Code, tt.want)
			}
		})
	}
}

// TestGuardHeaderKeysCanonical: FromBrowser indexes the header map directly, which equals
// http.Header.Get only for keys already in canonical form.
func TestGuardHeaderKeysCanonical(t *testing.T) {
	for _, k := range []string{"Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode"} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}

// fromBrowserRef is FromBrowser as it was before its map lookups were inlined: the reference.
func fromBrowserRef(h http.Header) bool {
	return h.Get("Origin") != "" || h.Get("Sec-Fetch-Site") != "" || h.Get("Sec-Fetch-Mode") != ""
}

// hostAllowedRef is HostAllowed without its IPv4 fast path: the reference.
func hostAllowedRef(allowed []string, hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")), ".")
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || slices.Contains(allowed, host)
}

func TestHostAllowedMatchesReference(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "127.0.0.1:8090", "127.0.0.1:", "0.0.0.0:1", "255.255.255.255", "256.0.0.1",
		"01.2.3.4", "1.2.3", "1.2.3.4.5", "1.2.3.4:x", "1.2.3.4:80:90", "[::1]:80", "1.2.3.400", "1.2.3.4a", ":80", "", "1..2.3"} {
		if got, want := HostAllowed(nil, s), hostAllowedRef(nil, s); got != want {
			t.Errorf("HostAllowed(%q) = %v, reference %v", s, got, want)
		}
		if got, want := HostAllowed([]string{"1.2.3.400"}, s), hostAllowedRef([]string{"1.2.3.400"}, s); got != want {
			t.Errorf("HostAllowed(listed, %q) = %v, reference %v", s, got, want)
		}
	}
}

// FuzzIPv4Host: the fast path answers true only where the general path does, and HostAllowed
// as a whole answers as the reference does.
func FuzzIPv4Host(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8090", "1.2.3.4", "01.1.1.1:1", "1.1.1.256", "[::1]:1", "localhost:1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ipv4Host(s) && !hostAllowedRef(nil, s) {
			t.Fatalf("ipv4Host(%q) but the general path refuses it", s)
		}
		allowed := []string{"gatehouse", strings.ToLower(s)}
		if got, want := HostAllowed(allowed, s), hostAllowedRef(allowed, s); got != want {
			t.Fatalf("HostAllowed(%q) = %v, reference %v", s, got, want)
		}
	})
}

// FuzzFromBrowser: FromBrowser answers as http.Header.Get would, whatever the map holds.
func FuzzFromBrowser(f *testing.F) {
	f.Add("Origin", "x", "Sec-Fetch-Mode", "")
	f.Add("origin", "x", "Sec-Fetch-Site", "y")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := http.Header{}
		h[k1] = []string{v1}
		h[k2] = append(h[k2], v2)
		if got, want := FromBrowser(h), fromBrowserRef(h); got != want {
			t.Fatalf("FromBrowser(%v) = %v, reference %v", h, got, want)
		}
	})
}
