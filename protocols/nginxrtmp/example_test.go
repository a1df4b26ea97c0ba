package nginxrtmp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"gatehouse/authz"
	"gatehouse/protocols/nginxrtmp"
)

// nginx-rtmp posts on_publish for a stream whose name is a secret key; the engine allows it with a
// rename, and the handler answers 302 with the bare public stream name.
func Example() {
	engine := authz.NewEngine(authz.NewChain(authz.Method{Name: "keys", Backend: authz.BackendFunc(
		func(_ context.Context, r *authz.Request) (authz.Decision, error) {
			if r.Path == "live/0f1e2d3c4b5a69788796a5b4c3d2e1f0" {
				d := authz.Allowing("alice", time.Time{})
				d.Rename = "live/alice"
				return d, nil
			}
			return authz.Decision{}, nil
		})}), nil)
	h := nginxrtmp.New(nginxrtmp.Config{}, engine, nil, nil)

	for _, name := range []string{"0f1e2d3c4b5a69788796a5b4c3d2e1f0", "guess"} {
		body := "app=live&flashver=FMLE/3.0&swfurl=&tcurl=rtmp://127.0.0.1/live&pageurl=&addr=192.0.2.7&clientid=3&call=publish&name=" + name + "&type=live"
		r := httptest.NewRequest(http.MethodPost, "/hooks/nginx-rtmp", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d %q\n", w.Code, w.Header().Get("Location"))
	}
	// Output:
	// 302 "alice"
	// 403 ""
}
