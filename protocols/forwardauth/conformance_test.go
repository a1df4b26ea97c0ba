package forwardauth

import (
	"log/slog"
	"net/http"
	"testing"

	"net/http/httptest"

	"gatehouse/authz"
	"gatehouse/authz/conformance"
)

// TestConformance runs the seam's table (authz/conformance) through the forward-auth endpoint:
// HLS reads only, a token in the Authorization header, no rename (a proxy serves the URL asked).
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Adapter{
		Name: "forward-auth",
		Handler: func(_ *testing.T, eng *authz.Engine, log *slog.Logger) http.Handler {
			return New(Config{}, eng, nil, log)
		},
		Encode: func(_ *testing.T, a conformance.Ask) (*http.Request, bool) {
			if a.Action != authz.ActionRead || a.NonHTTP {
				return nil, false
			}
			uri := "/" + a.Path() + "/index.m3u8"
			if a.Query != "" {
				uri += "?" + a.Query
			}
			var hdr []string
			if a.Token != "" {
				hdr = []string{"Authorization", "Bearer " + a.Token}
			}
			return ask(uri, hdr...), true
		},
		Decode: func(_ *testing.T, _ conformance.Ask, w *httptest.ResponseRecorder) conformance.Answer {
			return conformance.Answer{Verdict: conformance.Status(w.Code)}
		},
	})
}
