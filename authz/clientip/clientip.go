// Package clientip finds the address of the client behind an HTTP request: the TCP peer, or,
// when the peer is a trusted reverse proxy, the address the proxies forwarded. One Proxies.Handler
// in front of the public listener resolves it once per request and every route reads it with Addr,
// so the SFU, the streams API and the admin endpoints all see the same client.
package clientip

import (
	"context"
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

// Of returns the client address of r; see From.
func (p Proxies) Of(r *http.Request) netip.Addr { return p.From(Parse(r.RemoteAddr), r.Header) }

// From returns the client address of a request from peer with headers h, or the zero Addr
// (unknown) whenever the headers leave any doubt:
//
//   - peer is a trusted proxy: the right-most X-Forwarded-For hop that is not itself trusted
//     (proxies append what they saw, so hops further left may be forged), or the left-most hop
//     when every hop is trusted; X-Real-IP when no X-Forwarded-For was sent. A malformed hop or
//     X-Real-IP is unknown. When both headers name an untrusted client and disagree, the client is
//     unknown: a proxy sets one of them and passes the other through from its client, and which
//     one it sets cannot be told from here (nginx with only `X-Real-IP $remote_addr` passes the
//     client's own X-Forwarded-For: 127.0.0.1 through).
//   - peer is not trusted: its forwarding headers are ignored and peer is the client, except
//     that a loopback, private or link-local peer that sent forwarding headers gives the zero
//     Addr: it is a reverse proxy on this host or network (a container bridge) that nobody
//     listed in the trusted proxies, its clients are anywhere, and calling them by its address
//     would hand them every grant meant for local or LAN clients.
//
// The zero Addr matches no IP-restricted grant and is never loopback.
func (p Proxies) From(peer netip.Addr, h http.Header) netip.Addr {
	if !p.Trusts(peer) {
		if (peer.IsLoopback() || peer.IsPrivate() || peer.IsLinkLocalUnicast()) && forwarded(h) {
			return netip.Addr{}
		}
		return peer
	}
	var (
		real   netip.Addr
		hasXRI bool
	)
	// Header keys here are canonical (TestHeaderKeysCanonical): indexing h is what h.Values does
	// after canonicalising the key, which costs more than the lookup on every request.
	if v := h["X-Real-Ip"]; len(v) > 0 {
		a, err := netip.ParseAddr(strings.TrimSpace(v[0]))
		if len(v) > 1 || err != nil || a.Zone() != "" {
			return netip.Addr{}
		}
		real, hasXRI = a.Unmap(), true
	}
	var hops []string
	for _, v := range h["X-Forwarded-For"] {
		hops = append(hops, strings.Split(v, ",")...)
	}
	if len(hops) == 0 {
		if hasXRI {
			return real
		}
		return peer
	}
	fwd := netip.Addr{}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil || a.Zone() != "" {
			return netip.Addr{}
		}
		fwd = a.Unmap()
		if !p.Trusts(fwd) {
			break
		}
	}
	if hasXRI && !p.Trusts(real) && real != fwd {
		return netip.Addr{}
	}
	return fwd
}

// Key groups addresses that one client controls, for per-client counters and caps: an IPv4
// address, or an IPv6 /64 (one subscriber's allocation; counting single IPv6 addresses would give
// each client 2^64 slots). IPv4-mapped addresses count as IPv4; unknown addresses share one key.
func Key(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return netip.Prefix{}
	case a.Is4():
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.WithZone("").Prefix(64)
	return p
}

// forwarded reports whether h carries a header that reverse proxies add for their client.
func forwarded(h http.Header) bool {
	for _, k := range []string{"X-Forwarded-For", "X-Real-Ip", "Forwarded"} {
		if len(h[k]) > 0 {
			return true
		}
	}
	return false
}

type ctxKey struct{}

// Handler returns next behind a middleware that resolves the client address of every request
// once (Of) and stores it in the request context, where Addr finds it. Mount it in front of a
// whole listener so every route answers the same client the same way. It starts no goroutines.
func (p Proxies) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p.Of(r))))
	})
}

// Addr returns the client address that Handler stored for r. Without Handler in front it applies
// the same rules trusting no proxy (Proxies(nil).Of): the TCP peer, or the zero Addr for a
// loopback peer that forwarded headers. The zero Addr means the address is unknown.
func Addr(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(ctxKey{}).(netip.Addr); ok {
		return a
	}
	return Proxies(nil).Of(r)
}
