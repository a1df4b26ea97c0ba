package ome

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
)

// OME's thumbnail publisher is served over HTTP (http://host:20080/app/stream/thumb.jpg),
// and OME sends protocol "Thumbnail" for it. A token in ?access_key= (or ?token=) on a thumbnail
// URL must be refused while auth.query_token_on_http is false (the default), like LL-HLS; it was
// accepted while HTTPBorne listed HTTP protocols instead of failing closed on unknown names.
func TestThumbnailQueryTokenOverHTTP(t *testing.T) {
	tokenOK := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		if r.Token == "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig" {
			return authz.Allowing("viewer", time.Time{}), nil
		}
		return authz.Decision{}, nil
	})
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "jwt", Backend: tokenOK}), nil)
	h := New(Config{}, eng, nil, nil)
	for _, tc := range []struct{ proto, url string }{
		{"LLHLS", "https://h:3333/live/cam/llhls.m3u8?access_key=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"},
		{"Thumbnail", "http://h:20080/live/cam/thumb.jpg?access_key=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"},
	} {
		b, _ := json.Marshal(map[string]any{
			"client":  map[string]any{"address": "192.0.2.1", "port": 5000},
			"request": map[string]any{"direction": "outgoing", "protocol": tc.proto, "status": "opening", "url": tc.url, "time": "2026-01-01T00:00:00+00:00"},
		})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/ome", strings.NewReader(string(b))))
		if strings.Contains(w.Body.String(), `"allowed":true`) {
			t.Errorf("%s over http: query token accepted with query_token_on_http off: %s", tc.proto, w.Body.String())
		}
	}
}
