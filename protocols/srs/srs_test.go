package srs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
	"gatehouse/authz/live/livetest"
)

type recorder = livetest.Recorder

// backend accepts token abc (alice, publish), viewer-xyz or xxx (bob, read and publish),
// user/pass carol/secret; token forbidden is Forbidden; anything else abstains.
type backend struct {
	mu     sync.Mutex
	last   authz.Request
	calls  int
	rename string
}

func (b *backend) Authorize(_ context.Context, req *authz.Request) (authz.Decision, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.calls = *req, b.calls+1
	switch {
	case req.Token == "abc" && req.Action == authz.ActionPublish:
		d := authz.Allowing("alice", time.Time{})
		d.Rename = b.rename
		return d, nil
	case req.Token == "viewer-xyz" || req.Token == "xxx":
		return authz.Allowing("bob", time.Time{}), nil
	case req.User == "carol" && req.Pass == "secret":
		return authz.Allowing("carol", time.Time{}), nil
	case req.Token == "forbidden":
		return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted on this path"), nil
	}
	return authz.Decision{}, nil
}

func (b *backend) lastRequest() (authz.Request, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.calls
}

func newHandler(t testing.TB, cfg Config) (*Handler, *backend, *recorder) {
	t.Helper()
	be := &backend{}
	// SRS forwards a WHIP/WHEP client's token only in param (a query): these tests accept query
	// tokens over webrtc, as an operator serving SRS's WebRTC must (jwt.query_token_on_http).
	// The default policy is proven by the conformance suite.
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: be}).WithPolicy(authz.Policy{QueryTokenOnHTTP: true}), nil)
	rec := &recorder{}
	return New(cfg, eng, rec, keyFreeLog(t)), be, rec
}

// testKey is the secret stream key the rename cases present as the stream name.
const testKey = "s3cret"

// keyFreeLog returns a logger (all levels) that fails t if any line names testKey.
func keyFreeLog(t testing.TB) *slog.Logger {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if strings.Contains(buf.String(), testKey) {
			t.Errorf("the log names the stream key:\n%s", buf.String())
		}
	})
	return log
}

// srsAccepts is SrsHttpHooks::do_post's success test (reference §3.2, identical in 3.0–7.0):
// status 200 or 201, a non-empty body that parses as JSON, and either exactly "0" or an object
// with an integer code equal to 0.
func srsAccepts(status int, body []byte) bool {
	if status != 200 && status != 201 || len(body) == 0 {
		return false
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return false
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return string(body) == "0"
	}
	n, isNum := obj["code"].(json.Number)
	if !isNum {
		return false
	}
	code, err := n.Int64()
	return err == nil && code == 0
}

func TestSRSAcceptsModel(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   bool
	}{
		{200, `{"code":0}`, true}, {201, `{"code":0,"data":1}`, true}, {200, `0`, true},
		{200, "0\n", false}, {200, "", false}, {204, `{"code":0}`, false}, {200, `{"code":403}`, false},
		{200, `{"code":"0"}`, false}, {403, `{"code":0}`, false},
	} {
		if got := srsAccepts(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("srsAccepts(%d, %q): got %v, want %v", tt.status, tt.body, got, tt.want)
		}
	}
}

func reference(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Ext(name) != ".http" {
		return raw
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	return body
}

func post(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestReferenceExchanges(t *testing.T) {
	h, be, rec := newHandler(t, Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	stop := bytes.Replace(reference(t, "on_unpublish_v6.json"), []byte(`"on_unpublish"`), []byte(`"on_stop"`), 1) // "the same shape"
	playClient := bytes.Replace(stop, []byte(`"341w361a"`), []byte(`"7y0m3e5s"`), 1)

	tests := []struct {
		name      string
		body      []byte
		wantReq   *authz.Request // nil: the engine must not be asked
		wantEvent *live.Event
	}{
		{name: "on_publish v6", body: reference(t, "on_publish_v6.http"),
			wantReq:   &authz.Request{Action: authz.ActionPublish, Path: "live/livestream", Protocol: "", IP: netip.MustParseAddr("203.0.113.7"), Token: "abc", TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "token=abc", ID: "vid-0xk989d/341w361a", Source: Source},
			wantEvent: &live.Event{Type: live.Published, Path: "live/livestream", Source: Source, Session: "vid-0xk989d/341w361a", Identity: "alice", Protocol: "", Remote: "203.0.113.7"}},
		{name: "on_play whep v6", body: reference(t, "on_play_whep_v6.json"),
			wantReq:   &authz.Request{Action: authz.ActionRead, Path: "live/livestream", Protocol: "webrtc", IP: netip.MustParseAddr("198.51.100.20"), Token: "viewer-xyz", TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "app=live&stream=livestream&token=viewer-xyz", ID: "vid-0xk989d/7y0m3e5s", Source: Source},
			wantEvent: &live.Event{Type: live.Joined, Path: "live/livestream", Source: Source, Session: "vid-0xk989d/7y0m3e5s", Identity: "bob", Protocol: "webrtc", Remote: "198.51.100.20"}},
		{name: "on_unpublish v6", body: reference(t, "on_unpublish_v6.json"),
			wantEvent: &live.Event{Type: live.Unpublished, Path: "live/livestream", Source: Source, Session: "vid-0xk989d/341w361a", Protocol: "", Remote: "203.0.113.7"}},
		{name: "on_stop v6", body: playClient,
			wantEvent: &live.Event{Type: live.Left, Path: "live/livestream", Source: Source, Session: "vid-0xk989d/7y0m3e5s", Protocol: "", Remote: "203.0.113.7"}},
		{name: "on_dvr v6", body: reference(t, "on_dvr_v6.json")},
		{name: "on_connect v4", body: reference(t, "on_connect_v4.json")},
		{name: "on_publish v3", body: reference(t, "on_publish_v3.json"),
			wantReq:   &authz.Request{Action: authz.ActionPublish, Path: "live/livestream", Protocol: "", IP: netip.MustParseAddr("192.168.1.10"), Token: "xxx", TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "token=xxx", ID: "1985", Source: Source},
			wantEvent: &live.Event{Type: live.Published, Path: "live/livestream", Source: Source, Session: "1985", Identity: "bob", Protocol: "", Remote: "192.168.1.10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, callsBefore := be.lastRequest()
			nBefore := len(rec.Events())
			status, body := post(t, srv.URL, tt.body)
			if status != http.StatusOK || string(body) != `{"code":0}` || !srsAccepts(status, body) {
				t.Fatalf("got %d %q, want 200 {\"code\":0}", status, body)
			}
			got, calls := be.lastRequest()
			if tt.wantReq == nil {
				if calls != callsBefore {
					t.Errorf("engine asked for %s, want not asked", tt.name)
				}
			} else if got != *tt.wantReq {
				t.Errorf("got request %+v, want %+v", got, *tt.wantReq)
			}
			events := rec.Events()[nBefore:]
			switch {
			case tt.wantEvent == nil && len(events) != 0:
				t.Errorf("got events %+v, want none", events)
			case tt.wantEvent != nil && (len(events) != 1 || events[0] != *tt.wantEvent):
				t.Errorf("got events %+v, want [%+v]", events, *tt.wantEvent)
			}
		})
	}
}

func hookBody(action, vhost, app, stream, param, tcURL string) []byte {
	b, _ := json.Marshal(map[string]any{
		"server_id": "vid-1", "action": action, "client_id": "c1", "ip": "::ffff:203.0.113.7",
		"vhost": vhost, "app": app, "stream": stream, "param": param, "tcUrl": tcURL,
	})
	return b
}

func TestDecisions(t *testing.T) {
	const rtmp = "rtmp://h/live"
	tests := []struct {
		name                  string
		cfg                   Config
		body                  []byte
		rename                string
		wantStatus            int
		wantPath, wantProto   string
		wantToken, wantUser   string
		wantIP                string
		wantEngineNotConsumed bool
	}{
		{name: "param with ?", body: hookBody("on_publish", DefaultVhost, "live", "cam", "?token=abc", rtmp),
			wantStatus: 200, wantPath: "live/cam", wantProto: "", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "param without ?", body: hookBody("on_publish", DefaultVhost, "live", "cam", "token=abc", ""),
			wantStatus: 200, wantPath: "live/cam", wantProto: "webrtc", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "user and pass", body: hookBody("on_play", DefaultVhost, "live", "cam", "?user=carol&pass=secret", rtmp),
			wantStatus: 200, wantPath: "live/cam", wantProto: "", wantUser: "carol", wantIP: "203.0.113.7"},
		{name: "legacy rtc api", body: hookBody("on_play", DefaultVhost, "live", "cam", "?token=viewer-xyz&upstream=rtc", ""),
			wantStatus: 200, wantPath: "live/cam", wantProto: "webrtc", wantToken: "viewer-xyz", wantIP: "203.0.113.7"},
		{name: "srt", body: hookBody("on_publish", DefaultVhost, "live", "cam", "?token=abc", "srt://h:10080/live"),
			wantStatus: 200, wantPath: "live/cam", wantProto: "", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "no credentials", body: hookBody("on_publish", DefaultVhost, "live", "cam", "", rtmp),
			wantStatus: 401, wantPath: "live/cam", wantProto: "", wantIP: "203.0.113.7"},
		{name: "wrong token", body: hookBody("on_play", DefaultVhost, "live", "cam", "?token=nope", rtmp),
			wantStatus: 401, wantPath: "live/cam", wantProto: "", wantToken: "nope", wantIP: "203.0.113.7"},
		{name: "forbidden", body: hookBody("on_play", DefaultVhost, "live", "cam", "?token=forbidden", rtmp),
			wantStatus: 403, wantPath: "live/cam", wantProto: "", wantToken: "forbidden", wantIP: "203.0.113.7"},
		{name: "repeated token", body: hookBody("on_publish", DefaultVhost, "live", "cam", "?token=abc&token=abc", rtmp),
			wantStatus: 401, wantEngineNotConsumed: true},
		{name: "malformed param", body: hookBody("on_publish", DefaultVhost, "live", "cam", "?token=%zz", rtmp),
			wantStatus: 401, wantEngineNotConsumed: true},
		{name: "custom token param", cfg: Config{TokenParams: []string{"secret"}}, body: hookBody("on_publish", DefaultVhost, "live", "cam", "?secret=abc", rtmp),
			wantStatus: 200, wantPath: "live/cam", wantProto: "", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "vhost ignored by default", body: hookBody("on_publish", "v.example.com", "live", "cam", "?token=abc", rtmp),
			wantStatus: 200, wantPath: "live/cam", wantProto: "", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "vhost included", cfg: Config{IncludeVhost: true}, body: hookBody("on_publish", "v.example.com", "live", "cam", "?token=abc", rtmp),
			wantStatus: 200, wantPath: "v.example.com/live/cam", wantProto: "", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "default vhost never included", cfg: Config{IncludeVhost: true}, body: hookBody("on_publish", DefaultVhost, "live", "cam", "?token=abc", rtmp),
			wantStatus: 200, wantPath: "live/cam", wantProto: "", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "rename fails closed", rename: "live/alice", body: hookBody("on_publish", DefaultVhost, "live", "s3cret", "?token=abc", rtmp),
			wantStatus: 403, wantPath: "live/s3cret", wantProto: "", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "rename to itself is fine", rename: "/live/cam", body: hookBody("on_publish", DefaultVhost, "live", "cam", "?token=abc", rtmp),
			wantStatus: 200, wantPath: "live/cam", wantProto: "", wantToken: "abc", wantIP: "203.0.113.7"},
		{name: "missing stream", body: hookBody("on_publish", DefaultVhost, "live", "", "?token=abc", rtmp),
			wantStatus: 400, wantEngineNotConsumed: true},
		{name: "dot-dot stream", body: hookBody("on_play", DefaultVhost, "live", "..", "?token=abc", rtmp),
			wantStatus: 400, wantEngineNotConsumed: true},
		{name: "unknown action", body: hookBody("on_teleport", DefaultVhost, "live", "cam", "?token=abc", rtmp),
			wantStatus: 400, wantEngineNotConsumed: true},
		{name: "on_close accepted", body: hookBody("on_close", DefaultVhost, "live", "", "", rtmp),
			wantStatus: 200, wantEngineNotConsumed: true},
		{name: "on_hls accepted", body: hookBody("on_hls", DefaultVhost, "live", "cam", "", rtmp),
			wantStatus: 200, wantEngineNotConsumed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, be, rec := newHandler(t, tt.cfg)
			be.rename = tt.rename
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/srs", bytes.NewReader(tt.body)))
			if w.Code != tt.wantStatus {
				t.Fatalf("got status %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			if accepted := srsAccepts(w.Code, w.Body.Bytes()); accepted != (tt.wantStatus == 200) {
				t.Errorf("SRS would accept %d %q: %v, want %v", w.Code, w.Body, accepted, tt.wantStatus == 200)
			}
			if tt.wantStatus != 200 {
				var rep reply
				if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || rep.Code != tt.wantStatus {
					t.Errorf("got body %q, want code %d", w.Body, tt.wantStatus)
				}
			}
			got, calls := be.lastRequest()
			if tt.wantEngineNotConsumed {
				if calls != 0 {
					t.Errorf("got %d backend calls, want 0", calls)
				}
				return
			}
			if got.Path != tt.wantPath || got.Protocol != tt.wantProto || got.Token != tt.wantToken || got.User != tt.wantUser || got.IP.String() != tt.wantIP {
				t.Errorf("got %s %s token=%q user=%q ip=%s, want %s %s token=%q user=%q ip=%s",
					got.Path, got.Protocol, got.Token, got.User, got.IP, tt.wantPath, tt.wantProto, tt.wantToken, tt.wantUser, tt.wantIP)
			}
			if n := len(rec.Events()); (tt.wantStatus == 200) != (n == 1) {
				t.Errorf("got %d events, want one per allowed request", n)
			}
		})
	}
}

func TestRefusedRequests(t *testing.T) {
	ok := hookBody("on_publish", DefaultVhost, "live", "cam", "?token=abc", "rtmp://h/live")
	tests := []struct {
		name   string
		method string
		body   []byte
		want   int
	}{
		{"get", http.MethodGet, nil, http.StatusMethodNotAllowed},
		{"too large", http.MethodPost, append(ok[:len(ok)-1], []byte(`,"pad":"`+strings.Repeat("x", MaxBody)+`"}`)...), http.StatusRequestEntityTooLarge},
		{"not json", http.MethodPost, []byte("action=on_publish"), http.StatusBadRequest},
		{"no action", http.MethodPost, []byte(`{"app":"live","stream":"cam"}`), http.StatusBadRequest},
		{"wrong type", http.MethodPost, []byte(`{"action":"on_publish","app":7}`), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, be, _ := newHandler(t, Config{})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, "/hooks/srs", bytes.NewReader(tt.body)))
			if w.Code != tt.want {
				t.Fatalf("got status %d, want %d", w.Code, tt.want)
			}
			if tt.want == http.StatusMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
				t.Errorf("got Allow %q, want POST", w.Header().Get("Allow"))
			}
			if srsAccepts(w.Code, w.Body.Bytes()) {
				t.Errorf("SRS would accept %d %q", w.Code, w.Body)
			}
			if _, calls := be.lastRequest(); calls != 0 {
				t.Errorf("got %d backend calls, want 0", calls)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		switch filepath.Ext(name) {
		case ".json":
			b, _ := os.ReadFile(filepath.Join("testdata", name))
			f.Add(b)
		case ".http":
			b, _ := os.ReadFile(filepath.Join("testdata", name))
			_, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
			f.Add(body)
		}
	}
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: &backend{}}), nil)
	h := New(Config{IncludeVhost: true, TokenParams: []string{"secret"}}, eng, &recorder{}, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		hook, err := Decode(body)
		if err == nil {
			_ = hook.SessionID()
			_ = hook.Protocol()
			if p, ok := hook.Path(true); ok && (strings.Contains(p, "//") || strings.HasPrefix(p, "/")) {
				t.Fatalf("Path returned %q", p)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/srs", bytes.NewReader(body)))
		if err != nil && w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("Decode failed (%v) but got status %d", err, w.Code)
		}
		if srsAccepts(w.Code, w.Body.Bytes()) != (w.Code == http.StatusOK) {
			t.Fatalf("status %d with body %q: SRS would read it differently", w.Code, w.Body)
		}
	})
}

func BenchmarkHandler(b *testing.B) {
	body := hookBody("on_publish", DefaultVhost, "live", "livestream", "?token=abc", "rtmp://live.example.com/live")
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"code":0}`)
	})
	h, _, _ := newHandler(b, Config{})
	h.rec = nil
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"srs", h}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/srs", bytes.NewReader(body)))
				if w.Code != http.StatusOK {
					b.Fatalf("got %d", w.Code)
				}
			}
		})
	}
}

// TestDecodeTcURL pins what Decode reads from tcUrl in one pass (it decoded the body twice to
// learn whether the field was there): present and empty is webrtc, absent or null is unknown.
func TestDecodeTcURL(t *testing.T) {
	tests := []struct {
		name, field   string // field: the tcUrl member with its leading comma, or ""
		wantTcURL     string
		wantProtocol  string
		wantMalformed bool
	}{
		{"absent", "", "", "", false},
		{"empty", `,"tcUrl":""`, "", "webrtc", false},
		{"null", `,"tcUrl":null`, "", "", false},
		{"rtmp", `,"tcUrl":"rtmp://h/live"`, "rtmp://h/live", "", false},
		{"case-insensitive key", `,"TCURL":""`, "", "webrtc", false},
		{"last of two wins", `,"tcUrl":"rtmp://h/live","tcUrl":""`, "", "webrtc", false},
		{"not a string", `,"tcUrl":1`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Decode([]byte(`{"action":"on_play","app":"live","stream":"cam"` + tt.field + `}`))
			if tt.wantMalformed {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.TcURL != tt.wantTcURL || h.Protocol() != tt.wantProtocol || h.App != "live" || h.Action != "on_play" {
				t.Errorf("got tcUrl %q protocol %q (%+v), want %q %q", h.TcURL, h.Protocol(), h, tt.wantTcURL, tt.wantProtocol)
			}
		})
	}
}

// TestProtocolNotForgeable: a permission restricted to webrtc must not be met by an RTMP (or SRT,
// HTTP-FLV) client whatever tcUrl and param it writes; only SRS's WHIP/WHEP documents, whose
// tcUrl SRS leaves empty, are webrtc.
func TestProtocolNotForgeable(t *testing.T) {
	webrtcOnly := authz.BackendFunc(func(_ context.Context, req *authz.Request) (authz.Decision, error) {
		if req.Protocol != "webrtc" {
			return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "webrtc only"), nil
		}
		return authz.Allowing("anyone", time.Time{}), nil
	})
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "webrtc-only", Backend: webrtcOnly}), nil)
	h := New(Config{}, eng, nil, keyFreeLog(t))
	v4Play := func(param string) []byte { // v3/v4 on_play: no tcUrl field
		b, _ := json.Marshal(map[string]any{"action": "on_play", "client_id": "c1", "ip": "203.0.113.7",
			"vhost": DefaultVhost, "app": "live", "stream": "cam", "param": param})
		return b
	}
	tests := []struct {
		name string
		body []byte
		want int
	}{
		{"rtmp tcUrl webrtc://", hookBody("on_publish", DefaultVhost, "live", "cam", "?token=abc", "webrtc://h/live"), 403},
		{"rtmp tcUrl webrtc:// with port", hookBody("on_play", DefaultVhost, "live", "cam", "", "webrtc://h:1985/live"), 403},
		{"rtmp param upstream=rtc", hookBody("on_publish", DefaultVhost, "live", "cam", "?upstream=rtc", "rtmp://h/live"), 403},
		{"rtmp tcUrl without scheme, upstream=rtc", hookBody("on_publish", DefaultVhost, "live", "cam", "?upstream=rtc", "h/live"), 403},
		{"v4 on_play, param without ?", v4Play("#token=abc"), 403},
		{"v4 on_play, WHEP-like param", v4Play("app=live&stream=cam"), 403},
		{"whep (tcUrl empty)", reference(t, "on_play_whep_v6.json"), 200},
		{"whip (tcUrl empty)", hookBody("on_publish", DefaultVhost, "live", "cam", "app=live&stream=cam", ""), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/srs", bytes.NewReader(tt.body)))
			if w.Code != tt.want {
				t.Errorf("got %d %s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
}
