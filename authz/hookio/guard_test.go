package hookio

import (
	"net/http"
	"net/http/httptest"
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
