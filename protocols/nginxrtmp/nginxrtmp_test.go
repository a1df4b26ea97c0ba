package nginxrtmp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

// sendRaw writes a captured request to srv over TCP exactly as nginx-rtmp does and reads the reply
// until the server closes the connection (nginx-rtmp acts only on EOF).
func sendRaw(t *testing.T, srv *httptest.Server, raw []byte) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(c) // returns at EOF: the server must close
	if err != nil {
		t.Fatalf("reading until the server closes: %v (an HTTP/1.0 reply must end with a close)", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(all)), nil)
	if err != nil {
		t.Fatalf("parse reply %q: %v", all, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if len(all) < 10 {
		t.Fatalf("reply %q is shorter than nginx-rtmp's 10-byte status check", all)
	}
	return resp, all
}

func readCaptured(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "captured", name+".http"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCapturedRequests(t *testing.T) {
	auth := &fakeAuth{}
	rec := newRecorder()
	srv := httptest.NewServer(New(Config{AllowGET: true}, auth, rec, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	tests := []struct {
		file   string
		status int
		asked  bool          // whether the engine is consulted
		want   authz.Request // checked when asked
		event  live.EventType
		path   string
	}{
		{file: "connect_get", status: 200},
		{file: "connect_post", status: 200},
		{file: "publish", status: 200, asked: true, want: authz.Request{
			Action: authz.ActionPublish, Path: "live/stream1", Protocol: "rtmp", IP: netip.MustParseAddr("127.0.0.1"),
			User: "bob", Token: "abc", TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "token=abc&user=bob", ID: "1",
			UserAgent: "FMLE/3.0 (compatible; Lavf59.27", Source: "nginx-rtmp", CanRename: true, CanEndAt: true,
		}, event: live.Published, path: "live/stream1"},
		{file: "update_publish", status: 200, asked: true, want: authz.Request{
			Action: authz.ActionPublish, Path: "live/stream1", Protocol: "rtmp", IP: netip.MustParseAddr("127.0.0.1"),
			User: "bob", Token: "abc", TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "token=abc&user=bob", ID: "1",
			UserAgent: "FMLE/3.0 (compatible; Lavf59.27", Source: "nginx-rtmp", CanRename: true, CanEndAt: true, Kind: authz.KindRecheck,
		}, event: live.Alive, path: "live/stream1"},
		{file: "record_done", status: 200},
		{file: "publish_done", status: 200, event: live.Unpublished, path: "live/stream1"},
		{file: "play", status: 200, asked: true, want: authz.Request{
			Action: authz.ActionRead, Path: "live/stream1", Protocol: "rtmp", IP: netip.MustParseAddr("127.0.0.1"),
			Query: "ptok=p1", ID: "4", UserAgent: "LNX 9,0,124,2", Source: "nginx-rtmp", CanRename: true, CanEndAt: true,
		}, event: live.Joined, path: "live/stream1"},
		{file: "update_play", status: 200, asked: true, want: authz.Request{
			Action: authz.ActionRead, Path: "live/stream1", Protocol: "rtmp", IP: netip.MustParseAddr("127.0.0.1"),
			Query: "ptok=p1", ID: "4", UserAgent: "LNX 9,0,124,2", Source: "nginx-rtmp", CanRename: true, CanEndAt: true, Kind: authz.KindRecheck,
		}, event: live.Alive, path: "live/stream1"},
		{file: "play_done", status: 200, event: live.Left, path: "live/stream1"},
		{file: "done", status: 200}, // play_done already closed clientid 4
		{file: "disconnect_get", status: 200},
		{file: "fork_publish", status: 200, asked: true, want: authz.Request{
			Action: authz.ActionPublish, Path: "live/stream1", Protocol: "rtmp", IP: netip.MustParseAddr("127.0.0.1"),
			User: "bob", Token: "abc", TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "token=abc&user=bob", ID: "1",
			UserAgent: "FMLE/3.0 (compatible; Lavf59.27", Source: "nginx-rtmp", CanRename: true, CanEndAt: true,
		}, event: live.Published, path: "live/stream1"},
	}
	for _, tt := range tests { // in order: the session table carries state between steps
		t.Run(tt.file, func(t *testing.T) {
			asked, events := auth.count(), len(rec.Events())
			resp, all := sendRaw(t, srv, readCaptured(t, tt.file))
			if resp.StatusCode != tt.status {
				t.Errorf("got status %d, want %d", resp.StatusCode, tt.status)
			}
			if resp.ContentLength < 0 || resp.Header.Get("Content-Length") == "" || len(resp.TransferEncoding) > 0 {
				t.Errorf("got reply %q, want a Content-Length and no chunking", all)
			}
			if got := auth.count() > asked; got != tt.asked {
				t.Fatalf("engine consulted: got %v, want %v", got, tt.asked)
			}
			if tt.asked {
				if got := auth.last(t); got != tt.want {
					t.Errorf("got request\n%+v\nwant\n%+v", got, tt.want)
				}
			}
			evs := rec.Events()[events:]
			switch {
			case tt.event == 0 && len(evs) != 0:
				t.Errorf("got events %s, want none", describe(evs))
			case tt.event != 0 && (len(evs) != 1 || evs[0].Type != tt.event || evs[0].Path != tt.path):
				t.Errorf("got events %s, want one %s %s", describe(evs), typeNames[tt.event], tt.path)
			}
		})
	}
	t.Run("session ids pair up", func(t *testing.T) {
		evs := rec.Events()
		if len(evs) < 3 || evs[0].Session == "" || evs[0].Session != evs[2].Session {
			t.Errorf("got %s, want Published and Unpublished with one non-empty session", describe(evs))
		}
	})
}

// hookPost answers one POST body through an httptest recorder.
func hookPost(h http.Handler, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/hooks/nginx-rtmp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func hookGet(h http.Handler, query string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/hooks/nginx-rtmp?"+query, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const sessionPrefix = "app=live&flashver=FMLE/3.0%20(compatible%3B%20Lavf59.27&swfurl=&tcurl=rtmp://127.0.0.1:1935/live&pageurl=&addr=127.0.0.1&clientid=7"

func TestRejects(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		reason string // substring of the reply
	}{
		{"injected name (arut: client args last)", sessionPrefix + "&call=publish&name=cam&type=live&user=a&name=other", 400, `"name"`},
		{"injected call (fork: client args first)", "call=play&name=x&call=publish&name=cam&type=live&addr=127.0.0.1&clientid=7&app=live", 400, `"call"`},
		{"injected app", sessionPrefix + "&call=publish&name=cam&type=live&app=admin", 400, `"app"`},
		{"injected addr", sessionPrefix + "&call=publish&name=cam&type=live&addr=10.0.0.1", 400, `"addr"`},
		{"injected clientid", sessionPrefix + "&call=publish&name=cam&type=live&clientid=1", 400, `"clientid"`},
		{"injected tcurl", sessionPrefix + "&call=publish&name=cam&type=live&tcurl=x", 400, `"tcurl"`},
		{"repeated user", sessionPrefix + "&call=publish&name=cam&type=live&user=a&user=b", 400, `"user"`},
		{"repeated token", sessionPrefix + "&call=publish&name=cam&type=live&token=a&token=b", 400, `"token"`},
		{"repeated jwt", sessionPrefix + "&call=publish&name=cam&type=live&jwt=a&jwt=b", 400, `"jwt"`},
		{"repeated key", sessionPrefix + "&call=publish&name=cam&type=live&key=a&key=b", 400, `"key"`},
		{"repeated pass", sessionPrefix + "&call=publish&name=cam&type=live&pass=a&pass=b", 400, `"pass"`},
		{"disconnect with two different apps", sessionPrefix + "&call=disconnect&app=other", 400, `"app"`},
		{"unknown call", sessionPrefix + "&call=explode&name=cam", 400, "unknown call"},
		{"no call", sessionPrefix + "&name=cam", 400, "no call"},
		{"no name", sessionPrefix + "&call=publish&type=live", 400, "no stream name"},
		{"no app", "addr=127.0.0.1&clientid=7&call=publish&name=cam", 400, "no app"},
		{"dot-dot name", sessionPrefix + "&call=publish&name=../etc&type=live", 400, `".."`},
		{"control character", sessionPrefix + "&call=publish&name=a%0Ab&type=live", 400, "control"},
		{"bad percent-encoding", sessionPrefix + "&call=publish&name=cam&type=live&token=%zz", 400, "percent-encoding"},
		{"long name", sessionPrefix + "&call=publish&type=live&name=" + strings.Repeat("n", 256), 400, "longer than 255"},
		{"empty body", "", 400, "no call"},
		{"oversize", sessionPrefix + "&call=publish&name=cam&type=live&pad=" + strings.Repeat("x", DefaultMaxBody), 413, "exceeds"},
		{"disconnect with its double app", sessionPrefix + "&call=disconnect&app=live&conntok=c1", 200, "ok"},
		{"fork playlist", "call=playlist&module=hls&name=cam&path=/tmp/cam.m3u8&addr=127.0.0.1&clientid=7&app=live", 200, "ok"},
		{"fork record_started", "call=record_started&recorder=&name=cam&path=/tmp/cam.flv&addr=127.0.0.1&clientid=7&app=live", 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := &fakeAuth{}
			h := New(Config{}, auth, newRecorder(), nil)
			w := hookPost(h, tt.body)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.reason) {
				t.Errorf("got %d %q, want %d containing %q", w.Code, w.Body.String(), tt.status, tt.reason)
			}
			if tt.status != 200 && auth.count() != 0 {
				t.Errorf("the engine was asked about a rejected callback")
			}
			if strings.Contains(w.Body.String(), "%zz") || strings.Contains(w.Body.String(), "other") {
				t.Errorf("reply %q echoes a parameter value", w.Body.String())
			}
		})
	}
}

func TestMethods(t *testing.T) {
	body := sessionPrefix + "&call=publish&name=cam&type=live&user=u&pass=p"
	auth := &fakeAuth{}
	h := New(Config{AllowGET: true}, auth, nil, nil)

	post := hookPost(h, body)
	postReq := auth.last(t)
	get := hookGet(h, body)
	getReq := auth.last(t)
	if post.Code != 200 || get.Code != 200 {
		t.Fatalf("got POST %d, GET %d; want 200, 200", post.Code, get.Code)
	}
	if postReq != getReq {
		t.Errorf("GET and POST differ:\n%+v\n%+v", getReq, postReq)
	}
	t.Run("POST ignores the configured URL's query", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/hooks/nginx-rtmp?call=play&name=x", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := auth.last(t); w.Code != 200 || got.Action != authz.ActionPublish || got.Path != "live/cam" {
			t.Errorf("got %d %+v, want 200 publish live/cam", w.Code, got)
		}
	})
	t.Run("PUT", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPut, "/hooks/nginx-rtmp", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") == "" {
			t.Errorf("got %d Allow=%q, want 405 with Allow", w.Code, w.Header().Get("Allow"))
		}
	})
	t.Run("GET is off by default", func(t *testing.T) {
		auth := &fakeAuth{}
		w := hookGet(New(Config{}, auth, nil, nil), body)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" || !strings.Contains(w.Body.String(), "allow_get") {
			t.Errorf("got %d Allow=%q %q, want 405 Allow=POST naming allow_get", w.Code, w.Header().Get("Allow"), w.Body.String())
		}
		if auth.count() != 0 {
			t.Errorf("the engine was asked about a refused GET")
		}
	})
	t.Run("GET with a query in the configured URL", func(t *testing.T) {
		// nginx-rtmp's GET mode then sends "?static=1?app=...": app is swallowed, so deny.
		w := hookGet(h, "static=1?"+body)
		if w.Code != 400 {
			t.Errorf("got %d, want 400", w.Code)
		}
	})
}

func TestDecisions(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		call     string
		decision authz.Decision
		status   int
		location string
		event    live.EventType
		path     string
	}{
		{"publish allowed", "publish", authz.Allowing("u", time.Time{}), 200, "", live.Published, "live/cam"},
		{"play allowed", "play", authz.Allowing("u", now.Add(time.Hour)), 200, "", live.Joined, "live/cam"},
		{"publish unauthenticated", "publish", authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no"), 403, "", 0, ""},
		{"play forbidden", "play", authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "no"), 403, "", 0, ""},
		// An already expired grant is the engine's to refuse (authz/conformance).
		{"rename", "publish", authz.Decision{Outcome: authz.Allow, Identity: "alice", Rename: "live/alice"}, 302, "alice", live.Published, "live/alice"},
		{"rename on play", "play", authz.Decision{Outcome: authz.Allow, Rename: "live/alice"}, 302, "alice", live.Joined, "live/alice"},
		{"rename keeps sub-paths", "publish", authz.Decision{Outcome: authz.Allow, Rename: "live/team/alice"}, 302, "team/alice", live.Published, "live/team/alice"},
		{"rename to the same path", "publish", authz.Decision{Outcome: authz.Allow, Rename: "live/cam"}, 200, "", live.Published, "live/cam"},
		{"rename into another app", "publish", authz.Decision{Outcome: authz.Allow, Rename: "other/alice"}, 403, "", 0, ""},
		{"rename to a relay", "publish", authz.Decision{Outcome: authz.Allow, Rename: "live/RTMP://192.0.2.1/x/y"}, 403, "", 0, ""},
		{"rename with a newline", "publish", authz.Decision{Outcome: authz.Allow, Rename: "live/a\r\nX-Evil: 1"}, 403, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			h := New(Config{Now: func() time.Time { return now }}, &fakeAuth{decide: func(*authz.Request) authz.Decision { return tt.decision }}, rec, nil)
			w := hookPost(h, sessionPrefix+"&call="+tt.call+"&name=cam&type=live")
			if w.Code != tt.status {
				t.Errorf("got status %d, want %d", w.Code, tt.status)
			}
			if got := w.Header().Get("Location"); got != tt.location {
				t.Errorf("got Location %q, want %q", got, tt.location)
			}
			evs := rec.Events()
			switch {
			case tt.event == 0 && len(evs) != 0:
				t.Errorf("got events %s, want none", describe(evs))
			case tt.event != 0 && (len(evs) != 1 || evs[0].Type != tt.event || evs[0].Path != tt.path):
				t.Errorf("got events %s, want %s %s", describe(evs), typeNames[tt.event], tt.path)
			}
		})
	}
}

// TestStreamKeyLifecycle follows a publisher that used a secret key as its stream name: nginx-rtmp
// keeps sending the secret name in update and done callbacks, but every event names the public path.
func TestStreamKeyLifecycle(t *testing.T) {
	const secret = "s3cretkey0123456789abcdef"
	revoked := false
	auth := &fakeAuth{decide: func(r *authz.Request) authz.Decision {
		if r.Path == "live/"+secret && !revoked {
			return authz.Decision{Outcome: authz.Allow, Identity: "alice", Rename: "live/alice"}
		}
		return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no")
	}}
	rec := newRecorder()
	h := New(Config{}, auth, rec, nil)
	steps := []struct {
		call   string
		status int
		event  live.EventType
	}{
		{"publish", 302, live.Published},
		{"update_publish", 200, live.Alive},
		{"update_publish", 200, live.Alive},
		{"publish_done", 200, live.Unpublished},
		{"done", 200, 0},
		{"publish", 302, live.Published},
		{"revoke", 403, 0},
		{"done", 200, live.Unpublished},
	}
	for i, s := range steps {
		call := s.call
		if call == "revoke" {
			revoked, call = true, "update_publish"
		}
		n := len(rec.Events())
		w := hookPost(h, sessionPrefix+"&call="+call+"&name="+secret+"&type=live")
		if w.Code != s.status {
			t.Fatalf("step %d %s: got %d, want %d", i, s.call, w.Code, s.status)
		}
		evs := rec.Events()[n:]
		if (s.event == 0) != (len(evs) == 0) || (s.event != 0 && (len(evs) != 1 || evs[0].Type != s.event)) {
			t.Fatalf("step %d %s: got events %s, want %s", i, s.call, describe(evs), typeNames[s.event])
		}
	}
	for _, e := range rec.Events() {
		if e.Path != "live/alice" || strings.Contains(e.Session+e.Identity+e.Remote, secret) {
			t.Errorf("event %+v names something other than the public path", e)
		}
	}
}

func TestUpdateRecoversUntrackedSession(t *testing.T) {
	rec := newRecorder()
	h := New(Config{}, &fakeAuth{decide: func(*authz.Request) authz.Decision {
		return authz.Decision{Outcome: authz.Allow, Rename: "live/alice"}
	}}, rec, nil)
	// No publish seen (gatehouse restarted mid-stream): the update re-creates the session.
	if w := hookPost(h, sessionPrefix+"&call=update_publish&time=30&timestamp=1&name=secretname"); w.Code != 200 {
		t.Fatalf("got %d, want 200", w.Code)
	}
	hookPost(h, sessionPrefix+"&call=done&name=secretname")
	if got := describe(rec.Events()); got != "[published live/alice 7@127.0.0.1, alive live/alice 7@127.0.0.1, unpublished live/alice 7@127.0.0.1]" {
		t.Errorf("got %s", got)
	}
	if w := hookPost(h, sessionPrefix+"&call=update&time=30&timestamp=1"); w.Code != 403 {
		t.Errorf("bare update: got %d, want 403", w.Code)
	}
}

// An untracked session whose key maps to a path nginx-rtmp cannot rename to is dropped, not
// reported under the presented (secret) name.
func TestUpdateUntrackedUnusableRenameFailsClosed(t *testing.T) {
	for _, tt := range []struct {
		name, rename string
		wantStatus   int
		wantEvents   string
	}{
		{"usable rename", "live/alice", 200, "[published live/alice 7@127.0.0.1, alive live/alice 7@127.0.0.1]"},
		{"rename into another app", "other/alice", 403, "[]"},
		{"rename to a relay", "live/rtmp://192.0.2.1/x/y", 403, "[]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			h := New(Config{}, &fakeAuth{decide: func(*authz.Request) authz.Decision {
				return authz.Decision{Outcome: authz.Allow, Rename: tt.rename}
			}}, rec, nil)
			w := hookPost(h, sessionPrefix+"&call=update_publish&time=30&timestamp=1&name=secretname")
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d, want %d", w.Code, tt.wantStatus)
			}
			hookPost(h, sessionPrefix+"&call=publish_done&name=secretname")
			got := describe(rec.Events())
			if tt.wantStatus == 200 {
				tt.wantEvents = strings.TrimSuffix(tt.wantEvents, "]") + ", unpublished live/alice 7@127.0.0.1]"
			}
			if got != tt.wantEvents {
				t.Errorf("got events %s, want %s", got, tt.wantEvents)
			}
			if strings.Contains(got, "secretname") {
				t.Errorf("events %s name the presented key", got)
			}
		})
	}
}

func TestSessionTableBound(t *testing.T) {
	rec := newRecorder()
	h := New(Config{MaxSessions: 1}, &fakeAuth{}, rec, nil)
	for _, id := range []string{"1", "2"} {
		if w := hookPost(h, "app=live&addr=127.0.0.1&clientid="+id+"&call=publish&name=s"+id); w.Code != 200 {
			t.Fatalf("publish %s: got %d, want 200 (the table bound never denies)", id, w.Code)
		}
	}
	hookPost(h, "app=live&addr=127.0.0.1&clientid=1&call=done&name=s1")
	hookPost(h, "app=live&addr=127.0.0.1&clientid=2&call=done&name=s2")
	if got, want := describe(rec.Events()), "[published live/s1 1@127.0.0.1, published live/s2 2@127.0.0.1, unpublished live/s1 1@127.0.0.1]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestSessionTableFullUpdate: with the table full, a session already in it is still updated
// (its re-check is tracked, nothing is logged), and only a new one is left out (logged).
func TestSessionTableFullUpdate(t *testing.T) {
	var logs bytes.Buffer
	rec := newRecorder()
	h := New(Config{MaxSessions: 1}, &fakeAuth{}, rec, slog.New(slog.NewTextHandler(&logs, nil)))
	hookPost(h, "app=live&addr=127.0.0.1&clientid=1&call=publish&name=s1")
	if w := hookPost(h, "app=live&addr=127.0.0.1&clientid=1&call=update_publish&name=s1"); w.Code != 200 {
		t.Fatalf("update: got %d, want 200", w.Code)
	}
	if strings.Contains(logs.String(), "table full") {
		t.Fatalf("update of a tracked session logged a full table: %s", logs.String())
	}
	hookPost(h, "app=live&addr=127.0.0.1&clientid=2&call=publish&name=s2")
	if !strings.Contains(logs.String(), "table full") {
		t.Errorf("a new session in a full table was not logged: %s", logs.String())
	}
	if got, want := describe(rec.Events()), "[published live/s1 1@127.0.0.1, alive live/s1 1@127.0.0.1, published live/s2 2@127.0.0.1]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestTimeout(t *testing.T) {
	var deadline time.Time
	h := New(Config{Timeout: conf.Duration(time.Second)}, authFunc(func(ctx context.Context, _ *authz.Request) authz.Decision {
		deadline, _ = ctx.Deadline()
		return authz.Allowing("", time.Time{})
	}), nil, nil)
	start := time.Now()
	hookPost(h, sessionPrefix+"&call=publish&name=cam")
	end := time.Now()
	// The deadline was set between start and end, 1s ahead: exact bounds, no dependence on speed.
	if deadline.IsZero() || deadline.Before(start.Add(time.Second)) || deadline.After(end.Add(time.Second)) {
		t.Errorf("got deadline %v after start (call took %v), want 1s after the call began", deadline.Sub(start), end.Sub(start))
	}
}

// TestTimeoutEndsWait: a method that waits on the decision's context is released by the
// handler's timeout, with DeadlineExceeded (the timer is armed when it waits).
func TestTimeoutEndsWait(t *testing.T) {
	var err error
	h := New(Config{Timeout: conf.Duration(time.Millisecond)}, authFunc(func(ctx context.Context, _ *authz.Request) authz.Decision {
		<-ctx.Done()
		err = ctx.Err()
		return authz.Decision{Outcome: authz.Forbidden, Undecided: true, Reason: authz.ReasonTimeout}
	}), nil, nil)
	if w := hookPost(h, sessionPrefix+"&call=publish&name=cam"); w.Code != http.StatusForbidden {
		t.Errorf("got %d, want 403", w.Code)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want context.DeadlineExceeded", err)
	}
}

type authFunc func(context.Context, *authz.Request) authz.Decision

func (f authFunc) Authorize(ctx context.Context, r *authz.Request) authz.Decision { return f(ctx, r) }

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // "" = no error
	}{
		{"defaults", "nginx_rtmp: {}\n", ""},
		{"all keys", "nginx_rtmp:\n  timeout: 3s\n  max_body: 4096\n  max_sessions: 10\n", ""},
		{"unknown key", "nginx_rtmp:\n  timout: 3s\n", `t.yml:2: nginx_rtmp.timout: unknown key "timout"`},
		{"negative", "nginx_rtmp:\n  max_body: -1\n", "t.yml:2: "},
		{"bad duration", "nginx_rtmp:\n  timeout: soon\n", "t.yml:2: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct {
				C Config `yaml:"nginx_rtmp"`
			}
			err := conf.Decode("t.yml", []byte(tt.src), nil, &v)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (!errors.Is(err, conf.ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// FuzzDecode feeds arbitrary callback bodies to the decoder and the handler: nothing panics, a
// decoded callback never carries a reserved key twice or a server field in the client's args,
// and the handler answers only with statuses nginx-rtmp understands.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"publish", "play", "update_publish", "fork_publish", "record_done"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "captured", name+".http"))
		if err != nil {
			f.Fatal(err)
		}
		_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		f.Add(string(body))
	}
	f.Add(sessionPrefix + "&call=disconnect&app=live")
	f.Add("call=publish&name=%00&app=/&addr=::ffff:1.2.3.4&user=%&pass")
	h := New(Config{}, &fakeAuth{decide: func(r *authz.Request) authz.Decision {
		return authz.Decision{Outcome: authz.Allow, Rename: r.Path + "x"}
	}}, newRecorder(), nil)
	f.Fuzz(func(t *testing.T, raw string) {
		hk, err := decode(raw)
		if err == nil {
			if hk.call == "" {
				t.Fatalf("decoded %q without a call", raw)
			}
			for _, pair := range strings.Split(hk.args, "&") {
				k, _, _ := strings.Cut(pair, "=")
				if server, _ := keyKind(k); server {
					t.Fatalf("server key %q in args %q", k, hk.args)
				}
			}
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDuplicate) {
			t.Fatalf("got error %v, want ErrMalformed or ErrDuplicate", err)
		}
		w := hookPost(h, raw)
		switch w.Code {
		case 200, 302, 400, 403, 413:
		default:
			t.Fatalf("got status %d for %q", w.Code, raw)
		}
		if w.Code == 302 && w.Header().Get("Location") == "" {
			t.Fatalf("302 without Location for %q", raw)
		}
	})
}

// BenchmarkHandler compares an on_publish through the handler and a real engine with a bare
// handler that answers 200; report the ratio of the two ns/op.
func BenchmarkHandler(b *testing.B) {
	body := sessionPrefix + "&call=publish&name=cam&type=live&user=u&pass=p"
	engine := authz.NewEngine(authz.NewChain(authz.Method{Name: "users", Backend: authz.BackendFunc(
		func(_ context.Context, r *authz.Request) (authz.Decision, error) {
			if r.User == "u" && r.Pass == "p" {
				return authz.Allowing("u", time.Time{}), nil
			}
			return authz.Decision{}, nil
		})}), slog.New(slog.DiscardHandler))
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"bare", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			reply(w, http.StatusOK, "ok")
		})},
		{"on_publish", New(Config{}, engine, discardRecorder{}, nil)},
	}
	for _, hc := range handlers {
		b.Run(hc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if w := hookPost(hc.h, body); w.Code != 200 {
					b.Fatalf("got %d", w.Code)
				}
			}
		})
	}
}

type discardRecorder struct{}

func (discardRecorder) Record(live.Event) {}

// TestUpdateKeepsSessionsWhenUndecided: an on_update while the backend cannot decide (key set or
// upstream unavailable) keeps the running session until the grant it last had expires; a real
// denial still ends it, and new publishes and plays are refused meanwhile.
func TestUpdateKeepsSessionsWhenUndecided(t *testing.T) {
	t0 := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	for _, reason := range []string{"jwks_unavailable", authz.ReasonUpstream} {
		t.Run(reason, func(t *testing.T) {
			var (
				now     = t0
				down    bool
				revoked bool
			)
			be := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
				switch {
				case down:
					return authz.Decision{}, &authz.ReasonError{Reason: reason, Message: "cannot reach it"}
				case revoked || r.Token != "good":
					return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "no"), nil
				}
				return authz.Allowing("alice", now.Add(time.Minute)), nil
			})
			clock := func() time.Time { return now }
			eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "idp", Backend: be}), nil, authz.WithClock(clock))
			rec := newRecorder()
			h := New(Config{Now: clock}, eng, rec, nil)
			call := func(clientID, call string) int {
				return hookPost(h, "app=live&addr=127.0.0.1&clientid="+clientID+"&call="+call+"&name=cam&token=good").Code
			}
			steps := []struct {
				name       string
				at         time.Duration
				down, deny bool
				client     string
				call       string
				want       int
			}{
				{"publish", 0, false, false, "1", "publish", 200},
				{"play", 0, false, false, "2", "play", 200},
				{"update while down keeps the publisher", 30 * time.Second, true, false, "1", "update_publish", 200},
				{"update while down keeps the player", 30 * time.Second, true, false, "2", "update_play", 200},
				{"new publish while down is refused", 30 * time.Second, true, false, "3", "publish", 403},
				{"new play while down is refused", 30 * time.Second, true, false, "4", "play", 403},
				{"untracked session while down is kept", 30 * time.Second, true, false, "5", "update_play", 200},
				{"allowed update renews the expiry", 50 * time.Second, false, false, "1", "update_publish", 200},
				{"still down within the renewed grant", 100 * time.Second, true, false, "1", "update_publish", 200},
				{"a real denial ends it", 105 * time.Second, false, true, "1", "update_publish", 403},
				{"down past the grant's expiry ends it", 2 * time.Minute, true, false, "2", "update_play", 403},
			}
			for _, s := range steps {
				now, down, revoked = t0.Add(s.at), s.down, s.deny
				if got := call(s.client, s.call); got != s.want {
					t.Errorf("%s: got %d, want %d", s.name, got, s.want)
				}
			}
			for _, e := range rec.Events() {
				if e.Session == "5@127.0.0.1" {
					t.Errorf("an untracked session kept while undecided was reported: %+v", e)
				}
			}
		})
	}
}

// TestAnyGrantRecordsNoChosenName: under `user: any` the engine allows anonymously, whatever
// name the client sent (?user=the-owner&pass=x used to be listed in the registry as the-owner).
// The adapter records the decision's identity, never the name from the hook.
func TestAnyGrantRecordsNoChosenName(t *testing.T) {
	auth := &fakeAuth{decide: func(r *authz.Request) authz.Decision {
		return authz.Allowing("", time.Time{}) // what users.Backend answers for `user: any`
	}}
	rec := newRecorder()
	reg := live.NewRegistry()
	h := New(Config{}, auth, multiRecorder{rec, reg}, nil)
	creds := "&user=the-owner&pass=x&type=live"
	if w := hookPost(h, sessionPrefix+"&call=publish&name=cam"+creds); w.Code != 200 {
		t.Fatalf("publish: got %d, want 200", w.Code)
	}
	play := strings.Replace(sessionPrefix, "clientid=7", "clientid=8", 1)
	for _, call := range []string{"play", "update_play"} {
		if w := hookPost(h, play+"&call="+call+"&name=cam"+creds); w.Code != 200 {
			t.Fatalf("%s: got %d, want 200", call, w.Code)
		}
	}
	if got := auth.last(t); got.User != "the-owner" {
		t.Fatalf("the engine was asked as %q, want the name the client sent (the engine decides what it means)", got.User)
	}
	st, ok := reg.Get("live/cam")
	if !ok || st.Identity != "" || len(st.Readers) != 1 || st.Readers[0].Identity != "" {
		t.Errorf("got %+v %v, want live/cam with an anonymous publisher and one anonymous reader", st, ok)
	}
	for _, e := range rec.Events() {
		if e.Identity != "" {
			t.Errorf("event %s %s carries identity %q, want none", typeNames[e.Type], e.Path, e.Identity)
		}
	}
}

// multiRecorder sends every event to each recorder.
type multiRecorder []Recorder

func (m multiRecorder) Record(ev live.Event) {
	for _, r := range m {
		r.Record(ev)
	}
}
