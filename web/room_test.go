package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"gatehouse/authz/live"
)

// TestRoomEventsPrefix: /events?prefix= narrows every message to one room's paths, and still
// only to the streams the visitor may read.
func TestRoomEventsPrefix(t *testing.T) {
	_, reg, srv := newApp(t)
	reg.Record(live.Event{Type: live.Published, Path: "public/room/a/x", Source: "sfu", Session: "s0"})
	reg.Record(live.Event{Type: live.Published, Path: "public/room/a-b/y", Source: "sfu", Session: "s1"})
	reg.Record(live.Event{Type: live.Published, Path: "public/room/a/z", Source: "sfu", Session: "s2"})
	res, err := http.Get(srv.URL + "/events?prefix=public/room/a/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := readEvents(t, res.Body)
	ev := next(t, events)
	if ev.event != "streams" || !strings.Contains(ev.data, `"public/room/a/x"`) || !strings.Contains(ev.data, `"public/room/a/z"`) || strings.Contains(ev.data, "a-b") {
		t.Errorf("first event: got %+v, want a/x and a/z only", ev)
	}
	reg.Record(live.Event{Type: live.Published, Path: "public/room/other/w", Source: "sfu", Session: "s3"})
	reg.Record(live.Event{Type: live.Published, Path: "private/room/a/v", Source: "sfu", Session: "s4"})
	reg.Record(live.Event{Type: live.Unpublished, Path: "public/room/a/x", Source: "sfu", Session: "s0"})
	if ev = next(t, events); ev.event != "offline" || !strings.Contains(ev.data, `"public/room/a/x"`) {
		t.Errorf("next event: got %+v, want a/x offline (other rooms and unreadable paths skipped)", ev)
	}
	res2, err := http.Get(srv.URL + "/events?prefix=" + strings.Repeat("a", 2000))
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusBadRequest {
		t.Errorf("a 2000-byte prefix: got %d, want 400", res2.StatusCode)
	}
}

// TestRoomPage: the page renders for anyone with its name escaped; bad names are 404; without a
// login, joining as a speaker is refused.
func TestRoomPage(t *testing.T) {
	_, _, srv := newApp(t)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/room/standup", http.StatusOK},
		{"/room/Team_1.b-2", http.StatusOK},
		{"/room/%3Cscript%3E", http.StatusNotFound},
		{"/room/a*", http.StatusNotFound},
		{"/room/~re", http.StatusNotFound},
		{"/room/.hidden", http.StatusNotFound},
	} {
		res, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s: got %d, want %d", tc.path, res.StatusCode, tc.want)
		}
		if strings.Contains(string(b), "<script>") || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: unescaped script or no CSP", tc.path)
		}
		if tc.want == http.StatusOK && !strings.Contains(string(b), `src="/assets/room.js"`) {
			t.Errorf("%s: room.js not loaded", tc.path)
		}
	}
	res, err := http.Post(srv.URL+"/room/standup/join", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || strings.Contains(string(b), "token\":\"e") || !strings.Contains(string(b), `"publish":false`) {
		t.Errorf("anonymous join: got %d %s, want 401 without a token", res.StatusCode, b)
	}
}
