package ome

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"gatehouse/authz"
)

// TestRecheckForgetsReplacedPublisher (from an outside review): OME loses closings (the table keeps entries 24 h for that reason). A publisher whose closing
// was lost stays in the table after a newer, still-allowed publisher took the same stream; a
// reload that denies the old one makes Recheck return it, and the Kicker deletes the stream by
// name: the current, allowed publisher is cut.
func TestRecheckForgetsReplacedPublisher(t *testing.T) {
	h, _, _ := newHandler(t, Config{})
	eng := h.auth.(*authz.Engine)
	old := doc("opening", "incoming", "RTMP", "rtmp://ome.example:1935/app/show?token=abc")
	var a Admission
	_ = json.Unmarshal(doc("opening", "incoming", "RTMP", "rtmp://ome.example:1935/app/show?user=carol&pass=secret"), &a)
	a.Client.Port = "40000" // another connection
	next, _ := json.Marshal(a)
	for _, d := range [][]byte{old, next} {
		if code, rep := postDoc(h, d); code != 200 || rep.Allowed == nil || !*rep.Allowed {
			t.Fatalf("opening: %d %+v", code, rep)
		}
	}
	// alice's closing never came; carol publishes app/show now. Reload: abc no longer valid.
	eng.Swap(authz.NewChain(authz.Method{Name: "test", Backend: authz.BackendFunc(
		func(_ context.Context, r *authz.Request) (authz.Decision, error) {
			if r.User == "carol" && r.Pass == "secret" {
				return authz.Allowing("carol", time.Time{}), nil
			}
			return authz.Decision{}, nil
		})}).WithPolicy(authz.Policy{QueryTokenOnHTTP: true}))
	for _, s := range h.Recheck(context.Background()) {
		t.Errorf("Recheck returns %s (%s) to kick: the Kicker deletes stream %q, which carol (allowed) publishes now", s.ID, s.Identity, s.Path)
	}
}
