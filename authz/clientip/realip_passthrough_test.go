package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

// A trusted same-host nginx that sets only `proxy_set_header X-Real-IP $remote_addr;` (the
// "(or X-Real-IP)" setup the docs name) passes the client's own X-Forwarded-For through
// unchanged. The client must not be able to choose its address with it.
func TestRealIPProxyPassesClientXFF(t *testing.T) {
	p := Proxies{netip.MustParsePrefix("127.0.0.1/32")}
	peer := netip.MustParseAddr("127.0.0.1")
	for _, xff := range []string{"127.0.0.1", "garbage", "10.0.0.5"} {
		h := http.Header{}
		h.Set("X-Real-Ip", "203.0.113.9") // what nginx set from $remote_addr
		h.Set("X-Forwarded-For", xff)     // what the client sent
		if got := p.From(peer, h); got.IsValid() && got != netip.MustParseAddr("203.0.113.9") {
			t.Errorf("client-sent X-Forwarded-For %q: got client %v (loopback=%v), want 203.0.113.9 or unknown", xff, got, got.IsLoopback())
		}
	}
}
