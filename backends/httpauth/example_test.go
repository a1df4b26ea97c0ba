package httpauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"gatehouse/authz"
	"gatehouse/backends/httpauth"
)

// An auth service written for MediaMTX's authHTTPAddress works unchanged; it may also name the
// identity and bound the grant.
func ExampleNew() {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ User, Password, Action, Path string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if r.Header.Get("X-Gatehouse-Secret") != "shared" || in.User != "alice" || in.Password != "wonderland" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = fmt.Fprint(w, `{"identity":"alice@example.com","expires_in":3600}`)
	}))
	defer svc.Close()

	b, err := httpauth.New(httpauth.Config{
		Address: svc.URL + "/auth",
		Headers: map[string]string{"X-Gatehouse-Secret": "shared"},
		Cache:   httpauth.DefaultCache(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	req := &authz.Request{Action: authz.ActionPublish, Path: "live/cam1", Protocol: "rtmp",
		IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Pass: "wonderland"}
	d, err := b.Authorize(context.Background(), req)
	fmt.Println(d.Outcome, d.Identity, !d.Expires.IsZero(), err)

	req.Pass = "guess"
	d, err = b.Authorize(context.Background(), req)
	fmt.Println(d.Outcome, d.Reason, err)
	// Output:
	// allow alice@example.com true <nil>
	// unauthenticated bad_credentials <nil>
}
