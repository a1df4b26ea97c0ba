package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:1234", "127.0.0.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"192.0.2.9", "192.0.2.9"},
		{"::ffff:192.0.2.9", "192.0.2.9"},
		{"@", "invalid IP"},
		{"", "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Parse(tt.in).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFrom(t *testing.T) {
	p := Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name, peer string
		xff        []string
		realIP     string
		want       string
	}{
		{"untrusted peer is the client", "203.0.113.5", []string{"198.51.100.1"}, "198.51.100.2", "203.0.113.5"},
		{"trusted peer, one hop", "10.1.1.1", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"forged left hops ignored", "10.1.1.1", []string{"1.2.3.4, 198.51.100.1, 10.2.2.2"}, "", "198.51.100.1"},
		{"repeated headers", "10.1.1.1", []string{"1.2.3.4", "198.51.100.7"}, "", "198.51.100.7"},
		{"malformed hop is unknown, never the trusted proxy", "10.1.1.1", []string{"198.51.100.1, junk, 10.2.2.2"}, "", "invalid IP"},
		{"malformed only hop is unknown", "127.0.0.1", []string{"garbage"}, "", "invalid IP"},
		{"all hops trusted", "10.1.1.1", []string{"10.3.3.3"}, "", "10.3.3.3"},
		{"x-real-ip without xff", "127.0.0.1", nil, "198.51.100.9", "198.51.100.9"},
		{"xff and x-real-ip disagree: unknown (one was passed through from the client)", "127.0.0.1", []string{"203.0.113.7"}, "1.2.3.4", "invalid IP"},
		{"client xff 127.0.0.1 passed through a proxy that sets x-real-ip", "127.0.0.1", []string{"127.0.0.1"}, "203.0.113.9", "invalid IP"},
		{"client xff passed through a proxy that sets x-real-ip", "127.0.0.1", []string{"10.0.0.5"}, "203.0.113.9", "invalid IP"},
		{"xff and x-real-ip agree", "127.0.0.1", []string{"1.2.3.4, 203.0.113.7"}, "203.0.113.7", "203.0.113.7"},
		{"x-real-ip names a trusted hop: xff decides", "127.0.0.1", []string{"203.0.113.7, 10.2.2.2"}, "10.2.2.2", "203.0.113.7"},
		{"malformed x-real-ip is unknown", "127.0.0.1", nil, "nope", "invalid IP"},
		{"mapped hop", "127.0.0.1", []string{"::ffff:203.0.113.7"}, "", "203.0.113.7"},
		{"nothing forwarded", "127.0.0.1", nil, "", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				h.Set("X-Real-Ip", tt.realIP)
			}
			if got := p.From(netip.MustParseAddr(tt.peer), h).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if got := (Proxies{}).Trusts(netip.Addr{}); got {
		t.Error("the zero Addr is trusted")
	}
}

func FuzzFrom(f *testing.F) {
	f.Add("10.1.1.1:1", "1.2.3.4, 10.2.2.2", "")
	f.Add("[::1]:9", "", "2001:db8::1")
	f.Fuzz(func(t *testing.T, remote, xff, realIP string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}, "X-Real-Ip": {realIP}}}
		got := Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}.Of(r)
		if got.Is4In6() {
			t.Fatalf("mapped address %s returned", got)
		}
	})
}

// TestUntrustedLoopbackProxy: a same-host proxy that is not listed hides its clients; they must not
// inherit the loopback address (and so loopback-only grants); nor do those of an unlisted proxy
// on a private network (a container bridge), whose address LAN grants would match.
func TestUntrustedLoopbackProxy(t *testing.T) {
	p := Proxies{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, peer string
		h          http.Header
		want       string
	}{
		{"loopback, nothing forwarded", "127.0.0.1", http.Header{}, "127.0.0.1"},
		{"loopback with xff", "127.0.0.1", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "invalid IP"},
		{"loopback claims loopback", "::1", http.Header{"X-Forwarded-For": {"127.0.0.1"}}, "invalid IP"},
		{"loopback with x-real-ip", "127.0.0.5", http.Header{"X-Real-Ip": {"203.0.113.9"}}, "invalid IP"},
		{"loopback with forwarded", "127.0.0.1", http.Header{"Forwarded": {"for=203.0.113.9"}}, "invalid IP"},
		{"remote untrusted peer stays itself", "203.0.113.5", http.Header{"X-Forwarded-For": {"127.0.0.1"}}, "203.0.113.5"},
		{"container-bridge proxy with xff", "172.17.0.1", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "invalid IP"},
		{"LAN proxy with x-real-ip", "192.168.1.10", http.Header{"X-Real-Ip": {"203.0.113.9"}}, "invalid IP"},
		{"ULA proxy with xff", "fd00::2", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "invalid IP"},
		{"LAN client, nothing forwarded", "192.168.1.10", http.Header{}, "192.168.1.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.From(netip.MustParseAddr(tt.peer), tt.h).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestHandlerStoresOneAddress: routes behind Handler read the address it resolved; without it Addr
// trusts nobody.
func TestHandlerStoresOneAddress(t *testing.T) {
	var got netip.Addr
	h := Proxies{netip.MustParsePrefix("127.0.0.2/32")}.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = Addr(r)
	}))
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.2:4000"
	r.Header.Set("X-Forwarded-For", "127.0.0.1, 203.0.113.9")
	h.ServeHTTP(nil, r)
	if got.String() != "203.0.113.9" {
		t.Errorf("behind Handler: got %s, want 203.0.113.9", got)
	}
	if a := Addr(r); a.IsValid() {
		t.Errorf("without Handler, a loopback peer with X-Forwarded-For: got %s, want unknown", a)
	}
}

// TestHeaderKeysCanonical: From indexes the header map with these keys, which equals
// Header.Values only for keys already in canonical form.
func TestHeaderKeysCanonical(t *testing.T) {
	for _, k := range []string{"X-Real-Ip", "X-Forwarded-For", "Forwarded"} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}
