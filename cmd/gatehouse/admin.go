package main

import (
	"net/http"
	"net/http/pprof"

	"gatehouse/authz"
	"gatehouse/authz/guard"
)

// guarded serves h only to clients the engine allows action a (credentials from the
// Authorization header, client address as the public listener's clientip.Handler resolved it).
// 401 asks for Basic credentials.
func (s *server) guarded(a authz.Action, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := guard.Check(w, r, s.engine, a, "gatehouse"); !ok {
			http.Error(w, d.Message, d.HTTPStatus())
			return
		}
		h.ServeHTTP(w, r)
	})
}

// pprofHandler is net/http/pprof's index and profiles, mounted explicitly (no DefaultServeMux).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
