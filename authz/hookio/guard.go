package hookio

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Guard keeps browsers off a hooks listener, which trusts whoever reaches it. No streaming server
// sends an Origin or Sec-Fetch-* header, and a browser sends them on every cross-site request (an
// HTML form posting to 127.0.0.1:8090 included): such requests get 403. A page that re-points its
// own DNS name at this machine (DNS rebinding) could read the answers; it carries that name in
// Host, so a Host that is a DNS name gets 421 unless it is localhost (or under .localhost, which
// browsers resolve themselves) or in allowed (lower-case names, such as the name a server calls
// gatehouse by in a container network). IP literals and an absent Host (HTTP/1.0) always pass.
// Each refusal is logged at WARN to log (nil: discard).
//
// What it does not cover: a browser sends Sec-Fetch-* only to secure origins (https://,
// localhost) and Origin not on a plain GET, so a cross-site GET (an <img>, a link) to an http://
// hooks address on an IP literal (http://10.0.0.5:8090) carries neither and passes. Handlers must
// not let a GET do anything a page may not (nginx-rtmp answers GET only with
// hooks.nginx_rtmp.allow_get); such a page cannot read the answer, but it can make the request.
func Guard(next http.Handler, allowed []string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if FromBrowser(r.Header) {
			log.Warn("hooks: request from a browser refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "gatehouse: the hooks listener does not answer browsers", http.StatusForbidden)
			return
		}
		if !HostAllowed(allowed, r.Host) {
			log.Warn("hooks: Host not allowed (add it to hooks.allowed_hosts if a streaming server calls gatehouse by this name)",
				"host", Truncate(r.Host), "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "gatehouse: this host name is not served here (hooks.allowed_hosts)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// FromBrowser reports whether h carries a header that browsers add and streaming servers never
// send: Origin (on every cross-origin request and every POST), or Fetch Metadata.
func FromBrowser(h http.Header) bool {
	// The keys are in canonical form, so indexing the map is what h.Get does after
	// canonicalising them, without the per-byte scan (every hook request passes here).
	return first(h["Origin"]) != "" || first(h["Sec-Fetch-Site"]) != "" || first(h["Sec-Fetch-Mode"]) != ""
}

// first is http.Header.Get's answer for a key's values.
func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// HostAllowed reports whether a Host header value (host or host:port) may reach the hooks: an IP
// literal, none, localhost or a name under .localhost, or a name in allowed.
func HostAllowed(allowed []string, hostport string) bool {
	if ipv4Host(hostport) { // what streaming servers send: decided without SplitHostPort and ParseAddr
		return true
	}
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

// ipv4Host reports whether s is a dotted-quad IPv4 address in netip.ParseAddr's form (four
// decimal octets up to 255, no leading zeros), optionally followed by ':' and decimal digits. Such
// a Host is always allowed; false only means "not this shape" (FuzzIPv4Host holds it to
// HostAllowed's general path).
func ipv4Host(s string) bool {
	i := 0
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= len(s) || s[i] != '.' {
				return false
			}
			i++
		}
		start, v := i, 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' && i-start < 3 {
			v = v*10 + int(s[i]-'0')
			i++
		}
		if i == start || v > 255 || (s[start] == '0' && i-start > 1) {
			return false
		}
	}
	if i == len(s) {
		return true
	}
	if s[i] != ':' {
		return false
	}
	for i++; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
