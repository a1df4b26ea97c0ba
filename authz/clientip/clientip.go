// Package clientip finds the address of the client behind an HTTP request: the TCP peer, or,
// when the peer is a trusted reverse proxy, the address the proxies forwarded. The SFU, the
// forward-auth adapter, the streams API and the admin endpoints all use it, so they agree.
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Parse returns the address in a net/http RemoteAddr ("ip:port", "[ip]:port" or a bare IP), with
// IPv4-mapped IPv6 addresses unmapped; the zero Addr when s is none of those.
func Parse(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// Proxies lists the networks of reverse proxies whose forwarding headers are believed. The zero
// value trusts nobody.
type Proxies []netip.Prefix

// Trusts reports whether a is in one of the networks.
func (p Proxies) Trusts(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, n := range p {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// Of returns the client address of r; see From.
func (p Proxies) Of(r *http.Request) netip.Addr { return p.From(Parse(r.RemoteAddr), r.Header) }

// From returns the client address of a request from peer with headers h: peer itself unless it
// is a trusted proxy; then the right-most X-Forwarded-For hop that is not itself trusted
// (proxies append what they saw, so hops further left may be forged; a malformed hop stops the
// walk at the last trusted address), or X-Real-IP when no X-Forwarded-For was sent.
func (p Proxies) From(peer netip.Addr, h http.Header) netip.Addr {
	if !p.Trusts(peer) {
		return peer
	}
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	if len(hops) == 0 {
		if a, err := netip.ParseAddr(strings.TrimSpace(h.Get("X-Real-Ip"))); err == nil {
			return a.Unmap()
		}
		return peer
	}
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return last
		}
		a = a.Unmap()
		if !p.Trusts(a) {
			return a
		}
		last = a
	}
	return last
}
