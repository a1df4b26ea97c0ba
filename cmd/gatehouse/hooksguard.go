package main

import (
	"log/slog"
	"net/http"

	"gatehouse/authz/hookio"
)

// forwardAuthPath is exempt from the hooks listener's guard (hookio.Guard: no browsers, no
// foreign DNS names in Host): nginx's auth_request passes the client's own headers (Origin and
// Sec-Fetch-* of a browser's HLS player) into its subrequest, and Caddy's forward_auth keeps the
// proxied site's Host. That endpoint answers only peers in hooks.forward_auth.trusted_proxies,
// and needs a header a cross-site page cannot send without a CORS preflight (X-Original-URI).
// Not covered: a DNS-rebound page is same-origin and sends any header; in a browser on a
// trusted proxy's host (loopback by default) it can set X-Forwarded-For to any address. Refusing
// unknown Host names here would not help: the real proxies send the site's Host from that same
// address (docs/security.md, "Host names").
const forwardAuthPath = "/hooks/forward-auth"

// hooksGuard wraps the hooks listener's mux in hookio.Guard, except for forwardAuthPath.
func hooksGuard(allowed hostList, log *slog.Logger, mux http.Handler) http.Handler {
	guarded := hookio.Guard(mux, allowed, log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == forwardAuthPath {
			mux.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}
