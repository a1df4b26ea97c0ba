// Package web embeds gatehouse's browser pages: a WHEP player (/watch/{path}) and a WHIP camera
// publisher (/publish/{path}). Both are single static HTML files with inline JavaScript; they
// read the stream path from their own URL and a bearer token from the URL fragment
// (#token=...), which browsers never send to the server, or from an input field. Neither
// trickles ICE: each waits for gathering to finish and sends one offer.
package web

import (
	_ "embed"
	"net/http"
)

//go:embed watch.html
var watchHTML []byte

//go:embed publish.html
var publishHTML []byte

// WatchHandler serves the WHEP player page for GET /watch/{path...}. It posts to
// /whep/{path} on the same origin with Authorization: Bearer <token>, retries while the
// stream is not live (409) or after the connection drops, and deletes its session on unload.
// For automated tests the page exposes its state in document.body.dataset.state
// ("idle", "connecting", "waiting", "playing", "error") and window.gatehouse.
func WatchHandler() http.Handler { return page(watchHTML) }

// PublishHandler serves the WHIP publish page for GET /publish/{path...}: getUserMedia
// (camera and microphone) sent to /whip/{path} with the bearer token. State is exposed like
// WatchHandler's ("idle", "connecting", "publishing", "error").
func PublishHandler() http.Handler { return page(publishHTML) }

func page(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "+
			"connect-src 'self'; media-src 'self' blob: mediastream:; img-src 'self' data:; base-uri 'none'; form-action 'none'")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
