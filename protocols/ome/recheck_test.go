package ome

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/revoke"
)

// TestReloadEndsRemovedPublishers: OME never asks again about a running session, so the adapter
// remembers the request that admitted each publisher; after a reload that removes alice's grant
// the revoker's re-check ends her stream through OME's API (an httptest OME), and leaves carol's
// (still allowed) and a publisher that already closed alone. Viewers are not remembered: OME
// cannot end one.
func TestReloadEndsRemovedPublishers(t *testing.T) {
	var (
		mu      sync.Mutex
		deletes []string
	)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		deletes = append(deletes, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"statusCode":200,"message":"OK"}`))
	}))
	defer api.Close()

	h, _, _ := newHandler(t, Config{})
	eng := h.auth.(*authz.Engine)
	for _, d := range [][]byte{
		doc("opening", "incoming", "RTMP", "rtmp://ome.example:1935/app/alice?token=abc"),
		doc("opening", "incoming", "SRT", "srt://ome.example:9999/app/carol?user=carol&pass=secret"),
		doc("opening", "incoming", "WebRTC", "ws://ome.example:3333/app/gone?token=abc"),
		doc("opening", "outgoing", "WebRTC", "ws://ome.example:3333/app/alice?token=viewer-xyz"),
	} {
		if code, rep := postDoc(h, d); code != 200 || rep.Allowed == nil || !*rep.Allowed {
			t.Fatalf("opening %s: %d %+v, want allowed", d, code, rep)
		}
	}
	postDoc(h, doc("closing", "incoming", "WebRTC", "ws://ome.example:3333/app/gone?token=abc"))
	if n := h.publishers.Len(); n != 2 {
		t.Fatalf("remembered %d sessions, want 2 (running publishers only)", n)
	}

	// The reload: token abc (alice) is no longer accepted; carol's password still is.
	eng.Swap(authz.NewChain(authz.Method{Name: "test", Backend: authz.BackendFunc(
		func(_ context.Context, r *authz.Request) (authz.Decision, error) {
			if r.User == "carol" && r.Pass == "secret" {
				return authz.Allowing("carol", time.Time{}), nil
			}
			return authz.Decision{}, nil
		})}).WithPolicy(authz.Policy{QueryTokenOnHTTP: true}))

	rv := revoke.New(revoke.Config{}, map[string]revoke.Kicker{
		Source: NewKicker(conf.Endpoint{URL: api.URL}, "", nil, revoke.ErrGone, revoke.ErrUnsupported),
	}, nil, nil, nil, revoke.WithRecheckers(h))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rv.RecheckAll()

	want := "DELETE /v1/vhosts/default/apps/app/streams/alice"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got := strings.Join(deletes, "\n")
		mu.Unlock()
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OME API got %q, want only %q", got, want)
		}
	}
	if n := h.publishers.Len(); n != 1 {
		t.Errorf("after the re-check: %d remembered, want 1 (carol's)", n)
	}
}

// postDoc answers one unsigned admission body.
func postDoc(h http.Handler, body []byte) (int, wireReply) {
	r := httptest.NewRequest(http.MethodPost, "/hooks/ome", strings.NewReader(string(body)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var rep wireReply
	_ = json.Unmarshal(w.Body.Bytes(), &rep)
	return w.Code, rep
}
