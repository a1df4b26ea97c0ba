package forwardauth

import (
	"context"
	"testing"
	"time"

	"gatehouse/authz"
)

// forward-auth only ever sees HTTP requests, but whether the query-token policy applies
// is decided from the rule's free-form protocol override. A rule `protocol: flv` (HTTP-FLV) or
// `mp4` must not make ?token=<JWT> acceptable with query_token_on_http off (it did).
func TestRuleProtocolCannotBypassQueryTokenPolicy(t *testing.T) {
	tokenOK := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		if r.Token == "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig" {
			return authz.Allowing("viewer", time.Time{}), nil
		}
		return authz.Decision{}, nil
	})
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "jwt", Backend: tokenOK}), nil) // zero Policy: query tokens refused over HTTP
	for _, proto := range []string{"", "flv"} {
		h := New(Config{Rules: []Rule{{Prefix: "/", StripSuffix: true, Protocol: proto}}}, eng, nil, nil)
		w := serve(h, ask("/live/cam/index.m3u8?token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"))
		if w.Code/100 == 2 {
			t.Errorf("rule protocol %q: query token accepted over HTTP (status %d)", proto, w.Code)
		}
	}
}
