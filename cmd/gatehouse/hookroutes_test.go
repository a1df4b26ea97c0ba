package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// routesPair builds the hooks routes as hooksMux does (newHookRoutes), with handlers that say
// who answered, and the ServeMux they stand in for (its registrations, without the fast path).
func routesPair() (got, want http.Handler) {
	marker := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Which", name)
			w.WriteHeader(http.StatusTeapot)
		})
	}
	adapters := map[string]http.Handler{}
	for _, p := range []string{"/hooks/mediamtx", "/hooks/nginx-rtmp", "/hooks/ome", "/hooks/srs", "/hooks/forward-auth"} {
		adapters[p] = marker(p)
	}
	got = newHookRoutes(adapters, marker("healthz"))
	return got, got.(hookRoutes).mux // the same registrations, through ServeMux alone
}

func sameRoute(t *testing.T, got, want http.Handler, raw string) {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return // net/http would have refused it before any handler
	}
	req2, _ := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	got.ServeHTTP(a, req)
	want.ServeHTTP(b, req2)
	if a.Code != b.Code || a.Header().Get("X-Which") != b.Header().Get("X-Which") || a.Header().Get("Location") != b.Header().Get("Location") {
		t.Errorf("%q: hookRoutes answered %d %q %q, ServeMux %d %q %q", raw, a.Code, a.Header().Get("X-Which"), a.Header().Get("Location"),
			b.Code, b.Header().Get("X-Which"), b.Header().Get("Location"))
	}
}

// TestHookRoutesAnswerAsServeMux: the adapters' fast routes choose what ServeMux chooses, for the
// exact paths and every near miss (escapes, dots, slashes, case, methods, CONNECT, hosts).
func TestHookRoutesAnswerAsServeMux(t *testing.T) {
	got, want := routesPair()
	targets := []string{"/hooks/mediamtx", "/hooks/srs", "/hooks/forward-auth", "/hooks/mediamtx/", "/hooks//mediamtx",
		"/hooks/./mediamtx", "/hooks/x/../ome", "/hooks%2Fmediamtx", "/hooks/%6dediamtx", "/HOOKS/mediamtx", "/hooks/mediamtx?x=1",
		"/healthz", "/healthz/", "/", "/hooks", "/hooks/", "//hooks/mediamtx", "/hooks/mediamtx%00", "/hooks/ome#f",
		"http://other.example/hooks/srs", "*"}
	for _, method := range []string{"GET", "POST", "PUT", "HEAD", "OPTIONS", "CONNECT"} {
		for _, target := range targets {
			for _, host := range []string{"127.0.0.1:8090", "gatehouse.internal"} {
				sameRoute(t, got, want, method+" "+target+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
			}
		}
	}
}

// FuzzHookRoutes holds the fast routes to ServeMux on arbitrary request lines.
func FuzzHookRoutes(f *testing.F) {
	for _, s := range []string{"/hooks/mediamtx", "/hooks%2Fsrs", "/hooks/./ome", "/healthz"} {
		f.Add("POST", s)
	}
	got, want := routesPair()
	f.Fuzz(func(t *testing.T, method, target string) {
		if strings.ContainsAny(method+target, " \r\n") {
			return
		}
		sameRoute(t, got, want, method+" "+target+" HTTP/1.1\r\nHost: h\r\n\r\n")
	})
}
