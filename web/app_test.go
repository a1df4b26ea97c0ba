package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
	"gatehouse/web"
)

// publicOnly allows reading paths under public/ to anyone, nothing else.
type publicOnly struct{}

func (publicOnly) Authorize(_ context.Context, req *authz.Request) authz.Decision {
	if req.Action == authz.ActionRead && strings.HasPrefix(req.Path, "public/") {
		return authz.Decision{Outcome: authz.Allow}
	}
	return authz.Decision{Outcome: authz.Forbidden}
}

func newApp(t *testing.T) (*web.App, *live.Registry, *httptest.Server) {
	t.Helper()
	reg := live.NewRegistry()
	app := web.New(web.Options{Registry: reg, Auth: publicOnly{}, Playable: func(s live.Stream) bool { return s.Source == "sfu" }})
	mux := http.NewServeMux()
	h := app.Handler()
	for _, p := range app.Paths() {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { app.Close(); srv.Close() })
	return app, reg, srv
}

type sse struct {
	event string
	data  string
}

func readEvents(t *testing.T, body io.Reader) <-chan sse {
	out := make(chan sse, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.event != "":
				out <- ev
				ev = sse{}
			}
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan sse) sse {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return sse{}
}

// TestEventsPerViewer: the event stream tells a viewer only about streams it may read, never a
// publisher's address or session, and ends when the app closes.
func TestEventsPerViewer(t *testing.T) {
	app, reg, srv := newApp(t)
	reg.Record(live.Event{Type: live.Published, Path: "public/old", Source: "sfu", Session: "s0", Remote: "192.0.2.9:5000"})
	reg.Record(live.Event{Type: live.Published, Path: "private/old", Source: "sfu", Session: "s1"})
	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := readEvents(t, res.Body)
	ev := next(t, events)
	if ev.event != "streams" || !strings.Contains(ev.data, `"public/old"`) || strings.Contains(ev.data, "private") ||
		strings.Contains(ev.data, "192.0.2.9") || strings.Contains(ev.data, "s0") {
		t.Errorf("first event: %+v", ev)
	}
	reg.Record(live.Event{Type: live.Published, Path: "private/new", Source: "sfu", Session: "s2"})
	reg.Record(live.Event{Type: live.Published, Path: "public/new", Source: "nginx-rtmp", Session: "s3", Identity: "<b>eve</b>"})
	ev = next(t, events)
	var live1 struct{ Stream live.PublicStream }
	if err := json.Unmarshal([]byte(ev.data), &live1); err != nil || ev.event != "live" || live1.Stream.Path != "public/new" || live1.Stream.Identity != "<b>eve</b>" {
		t.Errorf("live event: %+v %v", ev, err)
	}
	reg.Record(live.Event{Type: live.Unpublished, Path: "private/new", Source: "sfu", Session: "s2"})
	reg.Record(live.Event{Type: live.Unpublished, Path: "public/new", Source: "nginx-rtmp", Session: "s3"})
	ev = next(t, events)
	if ev.event != "offline" || !strings.Contains(ev.data, `"public/new"`) || !strings.Contains(ev.data, `"reason":"unpublished"`) {
		t.Errorf("offline event: %+v", ev)
	}
	app.Close()
	for range events { // the stream ends
	}
}

func TestPagesHeadersAndEscaping(t *testing.T) {
	_, _, srv := newApp(t)
	for _, path := range []string{"/", "/watch/live/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/manage"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		body := string(b)
		if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
			t.Errorf("%s: inline script or style (the CSP forbids it):\n%s", path, body)
		}
		if !strings.Contains(body, `href="/favicon.svg"`) {
			t.Errorf("%s: no favicon", path)
		}
	}
	res, err := http.Get(srv.URL + "/favicon.svg")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("favicon: %d", res.StatusCode)
	}
	// Without a login, /manage says how to turn it on; its API refuses.
	res, err = http.Post(srv.URL+"/manage/api/keys", "application/json", strings.NewReader(`{"path":"live/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("manage API without login: %d, want 401", res.StatusCode)
	}
}

// TestEventsRemoteStreams: other nodes' streams reach the grid's event stream with their node,
// filtered per visitor by the same probe as this node's own.
func TestEventsRemoteStreams(t *testing.T) {
	_, reg, srv := newApp(t)
	reg.SetRemote([]live.Stream{{Path: "public/a", Node: "gh-a", Source: "sfu"}, {Path: "private/a", Node: "gh-a", Source: "sfu"}}, time.Time{})
	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := readEvents(t, res.Body)
	ev := next(t, events)
	if ev.event != "streams" || !strings.Contains(ev.data, `{"path":"public/a","source":"sfu","started":"0001-01-01T00:00:00Z","viewers":0,"node":"gh-a"}`) ||
		strings.Contains(ev.data, "private") {
		t.Errorf("first event: %+v", ev)
	}
	reg.SetRemote([]live.Stream{{Path: "private/b", Node: "gh-b", Source: "sfu"}, {Path: "public/b", Node: "gh-b", Source: "srs"}}, time.Time{})
	seen := map[string]bool{}
	for range 2 { // public/a offline, public/b live, in either order; never private/*
		ev = next(t, events)
		if strings.Contains(ev.data, "private") {
			t.Fatalf("event for a stream the visitor may not read: %+v", ev)
		}
		seen[ev.event+" "+ev.data[strings.Index(ev.data, `"path":`):strings.Index(ev.data, `,"source"`)]] = true
	}
	if !seen[`offline "path":"public/a"`] || !seen[`live "path":"public/b"`] {
		t.Errorf("events: %v", seen)
	}
}
