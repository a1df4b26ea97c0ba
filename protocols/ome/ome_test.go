package ome

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

const testSecret = "1234" // the key the reference signatures were computed with

// recorder is an in-memory Recorder that also keeps a registry keyed by Session, applying
// events idempotently as the real registry must.
type recorder struct {
	mu     sync.Mutex
	events []live.Event
	live   map[string]live.Event
}

func (r *recorder) Record(ev live.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.live == nil {
		r.live = map[string]live.Event{}
	}
	switch ev.Type {
	case live.Published, live.Joined:
		r.live[ev.Session] = ev
	case live.Unpublished, live.Left:
		delete(r.live, ev.Session)
	}
}

func (r *recorder) snapshot() ([]live.Event, map[string]live.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]live.Event, len(r.live))
	for k, v := range r.live {
		m[k] = v
	}
	return append([]live.Event(nil), r.events...), m
}

// backend accepts token "abc" (alice, publish), "viewer-xyz" (bob, read) and user/pass
// carol/secret (both), and remembers the last request it saw.
type backend struct {
	mu     sync.Mutex
	last   authz.Request
	calls  int
	expire time.Time
	rename string
}

func (b *backend) Authorize(_ context.Context, req *authz.Request) (authz.Decision, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = *req
	b.calls++
	var d authz.Decision
	switch {
	case req.Token == "abc" && req.Action == authz.ActionPublish:
		d = authz.Allowing("alice", b.expire)
		d.Rename = b.rename
	case req.Token == "viewer-xyz" && req.Action == authz.ActionRead:
		d = authz.Allowing("bob", b.expire)
	case req.User == "carol" && req.Pass == "secret":
		d = authz.Allowing("carol", b.expire)
	case req.Token == "forbidden":
		d = authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted on this path")
	default:
		d = authz.Decision{} // abstain: the chain answers unauthenticated
	}
	return d, nil
}

func (b *backend) lastRequest() (authz.Request, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.calls
}

func newHandler(t testing.TB, cfg Config) (*Handler, *backend, *recorder) {
	t.Helper()
	be := &backend{}
	var h *Handler
	// OME forwards a URL, never headers: LL-HLS and WebRTC clients can send a token only in the
	// query, so these tests accept query tokens over HTTP as an OME operator must
	// (jwt.query_token_on_http). The default policy is proven by the conformance suite. The
	// engine refuses expired grants by the handler's (test) clock.
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: be}).WithPolicy(authz.Policy{QueryTokenOnHTTP: true}), nil,
		authz.WithClock(func() time.Time { return h.now() }))
	rec := &recorder{}
	h = New(cfg, eng, rec, keyFreeLog(t))
	return h, be, rec
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

// readReference loads a raw HTTP request from testdata (reference §2.2–2.4, exact bytes).
func readReference(t *testing.T, name string) (header http.Header, body []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	body, err = io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return req.Header, body
}

type wireReply struct {
	Allowed  *bool   `json:"allowed"`
	Reason   string  `json:"reason"`
	Lifetime *uint64 `json:"lifetime"`
	NewURL   string  `json:"new_url"`
}

func post(t *testing.T, url string, header http.Header, body []byte) (int, wireReply, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var rep wireReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("reply %q is not JSON: %v", raw, err)
	}
	return resp.StatusCode, rep, string(raw)
}

func TestReferenceExchanges(t *testing.T) {
	h, be, rec := newHandler(t, Config{Secret: testSecret})
	var clock atomic.Int64 // the reference bodies' request.time, within the allowed skew
	clock.Store(time.Date(2026, 5, 12, 13, 45, 0, 0, time.UTC).UnixNano())
	h.now = func() time.Time { return time.Unix(0, clock.Load()) }
	srv := httptest.NewServer(h)
	defer srv.Close()

	t.Run("rtmp opening", func(t *testing.T) {
		hdr, body := readReference(t, "opening_rtmp.http")
		status, rep, raw := post(t, srv.URL, hdr, body)
		if status != http.StatusOK || rep.Allowed == nil || !*rep.Allowed {
			t.Fatalf("got %d %s, want 200 allowed:true", status, raw)
		}
		if rep.Lifetime == nil || *rep.Lifetime != 0 {
			t.Errorf("got lifetime %v, want 0 (unlimited)", rep.Lifetime)
		}
		got, _ := be.lastRequest()
		want := authz.Request{Action: authz.ActionPublish, Path: "app/stream", Protocol: "rtmp",
			IP: netip.MustParseAddr("203.0.113.7"), Token: "abc", TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "token=abc", Source: Source, ID: got.ID, CanRename: true, CanEndAt: true}
		if got != want {
			t.Errorf("got request %+v, want %+v", got, want)
		}
		if !strings.HasPrefix(got.ID, "ome-") || strings.Contains(got.ID, "abc") {
			t.Errorf("got session id %q, want a hash prefixed ome-", got.ID)
		}
	})
	t.Run("rtmp closing", func(t *testing.T) {
		clock.Store(time.Date(2026, 5, 12, 14, 45, 0, 0, time.UTC).UnixNano())
		hdr, body := readReference(t, "closing_rtmp.http")
		status, _, raw := post(t, srv.URL, hdr, body)
		if status != http.StatusOK || strings.TrimSpace(raw) != "{}" {
			t.Fatalf("got %d %q, want 200 {}", status, raw)
		}
		events, reg := rec.snapshot()
		if len(events) != 2 {
			t.Fatalf("got %d events, want 2 (published, unpublished)", len(events))
		}
		pub, unpub := events[0], events[1]
		if pub.Type != live.Published || unpub.Type != live.Unpublished {
			t.Errorf("got types %v, %v, want Published, Unpublished", pub.Type, unpub.Type)
		}
		if pub.Session != unpub.Session {
			t.Errorf("got sessions %q and %q, want equal", pub.Session, unpub.Session)
		}
		if unpub.Path != "app/user42" { // from new_url, the backend URL after a redirect
			t.Errorf("got closing path %q, want app/user42", unpub.Path)
		}
		if want := time.Date(2026, 5, 12, 14, 45, 0, 456e6, time.UTC); !unpub.Time.Equal(want) {
			t.Errorf("got time %v, want %v", unpub.Time, want)
		}
		if len(reg) != 0 {
			t.Errorf("got %d live sessions after closing, want 0", len(reg))
		}
	})
	t.Run("llhls opening", func(t *testing.T) {
		clock.Store(time.Date(2026, 5, 12, 13, 46, 0, 0, time.UTC).UnixNano())
		hdr, body := readReference(t, "opening_llhls.http")
		status, rep, raw := post(t, srv.URL, hdr, body)
		if status != http.StatusOK || rep.Allowed == nil || !*rep.Allowed || rep.Lifetime == nil {
			t.Fatalf("got %d %s, want 200 allowed:true with lifetime", status, raw)
		}
		got, _ := be.lastRequest()
		if got.Action != authz.ActionRead || got.Path != "app/stream" || got.Protocol != "hls" || got.Token != "viewer-xyz" {
			t.Errorf("got %+v, want read app/stream hls token viewer-xyz", got)
		}
		if want := netip.MustParseAddr("198.51.100.20"); got.IP != want { // client.address, not real_ip
			t.Errorf("got ip %v, want %v", got.IP, want)
		}
		if !strings.HasPrefix(got.UserAgent, "Mozilla/5.0") {
			t.Errorf("got user agent %q", got.UserAgent)
		}
	})
}

func TestSignature(t *testing.T) {
	hdr, body := readReference(t, "opening_rtmp.http")
	good := hdr.Get(SignatureHeader)
	tampered := bytes.Replace(body, []byte("203.0.113.7"), []byte("203.0.113.8"), 1)
	std := strings.NewReplacer("-", "+", "_", "/").Replace(good) + "="
	tests := []struct {
		name   string
		secret string
		sig    string
		body   []byte
		want   int
	}{
		{"valid", testSecret, good, body, http.StatusOK},
		{"padded std alphabet", testSecret, std, body, http.StatusOK},
		{"missing", testSecret, "", body, http.StatusUnauthorized},
		{"wrong key", "4321", good, body, http.StatusUnauthorized},
		{"tampered body", testSecret, good, tampered, http.StatusUnauthorized},
		{"garbage", testSecret, "!!!", body, http.StatusUnauthorized},
		{"truncated", testSecret, good[:20], body, http.StatusUnauthorized},
		{"no secret configured", "", "", body, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, rec := newHandler(t, Config{Secret: tt.secret})
			h.now = func() time.Time { return time.Date(2026, 5, 12, 13, 45, 0, 0, time.UTC) } // the body's request.time
			r := httptest.NewRequest(http.MethodPost, "/hooks/ome", bytes.NewReader(tt.body))
			if tt.sig != "" {
				r.Header.Set(SignatureHeader, tt.sig)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("got status %d, want %d (%s)", w.Code, tt.want, w.Body)
			}
			var rep wireReply
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || rep.Allowed == nil {
				t.Fatalf("got body %q, want JSON with allowed", w.Body)
			}
			if tt.want != http.StatusOK && (*rep.Allowed || len(rec.events) != 0) {
				t.Errorf("refused request: got allowed=%v, %d events; want false, 0", *rep.Allowed, len(rec.events))
			}
		})
	}
	t.Run("forged closing is not recorded", func(t *testing.T) {
		h, _, rec := newHandler(t, Config{Secret: testSecret})
		_, cbody := readReference(t, "closing_rtmp.http")
		r := httptest.NewRequest(http.MethodPost, "/hooks/ome", bytes.NewReader(cbody))
		r.Header.Set(SignatureHeader, Sign([]byte("guess"), cbody))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized || len(rec.events) != 0 {
			t.Errorf("got %d with %d events, want 401 with none", w.Code, len(rec.events))
		}
	})
}

// doc builds an admission body.
func doc(status, direction, protocol, rawURL string) []byte {
	var a Admission
	a.Client.Address, a.Client.Port = "203.0.113.7", "51234"
	a.Request.Direction, a.Request.Protocol, a.Request.Status = direction, protocol, status
	a.Request.Time, a.Request.URL = "2026-05-12T13:45:00.123+09:00", rawURL
	b, _ := json.Marshal(a)
	return b
}

func TestOpening(t *testing.T) {
	now := time.Date(2026, 5, 12, 4, 45, 0, 0, time.UTC)
	tests := []struct {
		name                 string
		cfg                  Config
		direction, protocol  string
		url                  string
		expire               time.Time
		rename               string
		wantAllowed          bool
		wantAction           authz.Action
		wantProto, wantPath  string
		wantLifetime         uint64
		wantNewURL           string
		wantReason           string
		wantUser, wantToken  string
		wantBackendNotCalled bool
	}{
		{name: "webrtc publish via whip", direction: "incoming", protocol: "WebRTC", url: "https://h:3333/live/cam?direction=whip&token=abc",
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "webrtc", wantPath: "live/cam", wantToken: "abc"},
		{name: "srt publish", direction: "incoming", protocol: "srt", url: "srt://h:9999/live/cam?token=abc",
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "srt", wantPath: "live/cam", wantToken: "abc"},
		{name: "srt streamid form", direction: "incoming", protocol: "SRT", url: "srt://h:9999?streamid=" + "srt%3A%2F%2Fh%3A9999%2Flive%2Fcam%3Ftoken%3Dabc",
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "srt", wantPath: "live/cam", wantToken: "abc"},
		{name: "hlsv3 read", direction: "outgoing", protocol: "HLSv3", url: "http://h:3334/live/cam/playlist.m3u8?token=viewer-xyz",
			wantAllowed: true, wantAction: authz.ActionRead, wantProto: "hls", wantPath: "live/cam", wantToken: "viewer-xyz"},
		{name: "thumbnail read", direction: "outgoing", protocol: "Thumbnail", url: "http://h:20080/live/cam/thumb.jpg?user=carol&pass=secret",
			wantAllowed: true, wantAction: authz.ActionRead, wantProto: "thumbnail", wantPath: "live/cam", wantUser: "carol"},
		{name: "access_key is a token", direction: "incoming", protocol: "WebRTC", url: "https://h:3333/live/cam?direction=whip&access_key=abc",
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "webrtc", wantPath: "live/cam", wantToken: "abc"},
		{name: "token wins over access_key", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/cam?access_key=zzz&token=abc",
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "rtmp", wantPath: "live/cam", wantToken: "abc"},
		{name: "access_key disabled", cfg: Config{TokenParams: []string{}}, direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/cam?access_key=abc",
			wantAllowed: false, wantAction: authz.ActionPublish, wantProto: "rtmp", wantPath: "live/cam", wantReason: "credentials required"},
		{name: "custom token param", cfg: Config{TokenParams: []string{"key"}}, direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/cam?key=abc",
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "rtmp", wantPath: "live/cam", wantToken: "abc"},
		{name: "repeated token", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/cam?token=abc&token=abc",
			wantReason: "repeated credential parameter", wantBackendNotCalled: true},
		{name: "repeated access_key", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/cam?access_key=a&access_key=b",
			wantReason: "repeated credential parameter", wantBackendNotCalled: true},
		{name: "no stream in url", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live?token=abc",
			wantReason: badURL, wantBackendNotCalled: true},
		{name: "dot-dot segment", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/../cam?token=abc",
			wantReason: badURL, wantBackendNotCalled: true},
		{name: "forbidden", direction: "outgoing", protocol: "WebRTC", url: "ws://h:3333/live/cam?token=forbidden",
			wantAction: authz.ActionRead, wantProto: "webrtc", wantPath: "live/cam", wantToken: "forbidden", wantReason: "not permitted on this path"},
		{name: "lifetime in ms", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/cam?token=abc", expire: now.Add(90 * time.Minute),
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "rtmp", wantPath: "live/cam", wantToken: "abc", wantLifetime: 5400000},
		{name: "sub-ms lifetime is not unlimited", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/cam?token=abc", expire: now.Add(300 * time.Microsecond),
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "rtmp", wantPath: "live/cam", wantToken: "abc", wantLifetime: 1},
		{name: "expired grant", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/cam?token=abc", expire: now.Add(-time.Second),
			wantAction: authz.ActionPublish, wantProto: "rtmp", wantPath: "live/cam", wantToken: "abc", wantReason: "the grant has already expired"},
		{name: "rename stream", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/s3cret?token=abc", rename: "live/alice",
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "rtmp", wantPath: "live/s3cret", wantToken: "abc", wantNewURL: "rtmp://h:1935/live/alice?token=abc"},
		{name: "rename keeps file and app", direction: "incoming", protocol: "WebRTC", url: "https://h:3333/live/s3cret/whip?token=abc", rename: "alice",
			wantAllowed: true, wantAction: authz.ActionPublish, wantProto: "webrtc", wantPath: "live/s3cret", wantToken: "abc", wantNewURL: "https://h:3333/live/alice/whip?token=abc"},
		{name: "rename with three segments fails closed", direction: "incoming", protocol: "RTMP", url: "rtmp://h:1935/live/s3cret?token=abc", rename: "a/b/c",
			wantAction: authz.ActionPublish, wantProto: "rtmp", wantPath: "live/s3cret", wantToken: "abc", wantReason: "rename not supported for this url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, be, rec := newHandler(t, tt.cfg)
			h.now = func() time.Time { return now }
			be.expire, be.rename = tt.expire, tt.rename
			r := httptest.NewRequest(http.MethodPost, "/hooks/ome", bytes.NewReader(doc("opening", tt.direction, tt.protocol, tt.url)))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200 (OME accepts only 200)", w.Code)
			}
			var rep wireReply
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || rep.Allowed == nil {
				t.Fatalf("got body %q, want JSON with a bool allowed", w.Body)
			}
			if *rep.Allowed != tt.wantAllowed {
				t.Errorf("got allowed %v (%s), want %v", *rep.Allowed, rep.Reason, tt.wantAllowed)
			}
			if tt.wantReason != "" && rep.Reason != tt.wantReason {
				t.Errorf("got reason %q, want %q", rep.Reason, tt.wantReason)
			}
			if rep.NewURL != tt.wantNewURL {
				t.Errorf("got new_url %q, want %q", rep.NewURL, tt.wantNewURL)
			}
			if tt.wantAllowed {
				if rep.Lifetime == nil || *rep.Lifetime != tt.wantLifetime {
					t.Errorf("got lifetime %v, want %d", rep.Lifetime, tt.wantLifetime)
				}
			} else if rep.Lifetime != nil {
				t.Errorf("got lifetime %d on a denial, want none", *rep.Lifetime)
			}
			got, calls := be.lastRequest()
			if tt.wantBackendNotCalled {
				if calls != 0 {
					t.Errorf("got %d backend calls, want 0", calls)
				}
				return
			}
			if got.Action != tt.wantAction || got.Protocol != tt.wantProto || got.Path != tt.wantPath || got.Token != tt.wantToken || got.User != tt.wantUser {
				t.Errorf("got %s %s %s token=%q user=%q, want %s %s %s token=%q user=%q",
					got.Action, got.Protocol, got.Path, got.Token, got.User, tt.wantAction, tt.wantProto, tt.wantPath, tt.wantToken, tt.wantUser)
			}
			events, _ := rec.snapshot()
			if tt.wantAllowed != (len(events) == 1) {
				t.Fatalf("got %d events, want one per allowed opening", len(events))
			}
			if tt.wantAllowed && tt.wantNewURL != "" && !strings.Contains(tt.wantNewURL, events[0].Path) {
				t.Errorf("got event path %q, want the renamed path", events[0].Path)
			}
		})
	}
}

// TestIdempotentSessions replays OME's known reorderings (issues #1909 and #1991): the session ids
// must line up so an idempotent registry ends consistent.
func TestIdempotentSessions(t *testing.T) {
	const u = "rtmp://h:1935/live/cam?token=abc"
	open := func(port string) []byte { return withPort(doc("opening", "incoming", "RTMP", u), port) }
	closing := func(port string) []byte { return withPort(doc("closing", "incoming", "RTMP", u), port) }
	tests := []struct {
		name     string
		seq      [][]byte
		wantLive []string // ports of sessions left live
	}{
		{"open close", [][]byte{open("1"), closing("1")}, nil},
		{"duplicate closing", [][]byte{open("1"), closing("1"), closing("1")}, nil},
		{"duplicate opening", [][]byte{open("1"), open("1"), closing("1")}, nil},
		{"closing before opening of another connection", [][]byte{open("1"), open("2"), closing("1")}, []string{"2"}},
		{"stray closing", [][]byte{closing("9")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, rec := newHandler(t, Config{})
			for _, b := range tt.seq {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/ome", bytes.NewReader(b)))
				if w.Code != http.StatusOK {
					t.Fatalf("got status %d, want 200", w.Code)
				}
			}
			_, reg := rec.snapshot()
			var want []string
			for _, p := range tt.wantLive {
				a, _ := Decode(open(p))
				want = append(want, a.SessionID())
			}
			if len(reg) != len(want) {
				t.Fatalf("got %d live sessions, want %d", len(reg), len(want))
			}
			for _, id := range want {
				if _, ok := reg[id]; !ok {
					t.Errorf("session %s missing from registry", id)
				}
			}
		})
	}
}

func withPort(b []byte, port string) []byte {
	return bytes.Replace(b, []byte(`"port":51234`), []byte(`"port":`+port), 1)
}

func TestRefusedRequests(t *testing.T) {
	okBody := doc("opening", "incoming", "RTMP", "rtmp://h/live/cam?token=abc")
	tests := []struct {
		name   string
		method string
		body   []byte
		want   int
	}{
		{"get", http.MethodGet, nil, http.StatusMethodNotAllowed},
		{"put", http.MethodPut, okBody, http.StatusMethodNotAllowed},
		{"too large", http.MethodPost, append(okBody[:len(okBody)-1], []byte(`,"pad":"`+strings.Repeat("x", MaxBody)+`"}`)...), http.StatusRequestEntityTooLarge},
		{"not json", http.MethodPost, []byte("allowed=true"), http.StatusBadRequest},
		{"array", http.MethodPost, []byte("[]"), http.StatusBadRequest},
		{"wrong type", http.MethodPost, []byte(`{"request":{"url":1}}`), http.StatusBadRequest},
		{"unknown direction", http.MethodPost, doc("opening", "sideways", "RTMP", "rtmp://h/live/cam"), http.StatusBadRequest},
		{"unknown status", http.MethodPost, doc("open", "incoming", "RTMP", "rtmp://h/live/cam"), http.StatusBadRequest},
		{"empty url", http.MethodPost, doc("opening", "incoming", "RTMP", ""), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, be, _ := newHandler(t, Config{})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, "/hooks/ome", bytes.NewReader(tt.body)))
			if w.Code != tt.want {
				t.Fatalf("got status %d, want %d", w.Code, tt.want)
			}
			if tt.want == http.StatusMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
				t.Errorf("got Allow %q, want POST", w.Header().Get("Allow"))
			}
			var rep wireReply
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || rep.Allowed == nil || *rep.Allowed {
				t.Errorf("got body %q, want allowed:false", w.Body)
			}
			if _, calls := be.lastRequest(); calls != 0 {
				t.Errorf("got %d backend calls, want 0", calls)
			}
		})
	}
}

func TestProtocol(t *testing.T) {
	for in, want := range map[string]string{
		"RTMP": "rtmp", "WebRTC": "webrtc", "webrtc": "webrtc", "SRT": "srt", "LLHLS": "hls", "HLSv3": "hls",
		"hlsv3": "hls", "MPEGTS": "mpegts", "RTSPPull": "rtsp", "Thumbnail": "thumbnail", "OVT": "ovt", "": "",
	} {
		if got := Protocol(in); got != want {
			t.Errorf("Protocol(%q): got %q, want %q", in, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"opening_rtmp.http", "closing_rtmp.http", "opening_llhls.http"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		f.Add(body)
	}
	be := &backend{}
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: be}), nil)
	h := New(Config{}, eng, &recorder{}, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := Decode(body)
		if err == nil {
			if _, err := ParseTarget(a.Request.URL, a.Request.Protocol); err == nil {
				_ = a.SessionID()
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/ome", bytes.NewReader(body)))
		switch {
		case err != nil && w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge:
			t.Fatalf("Decode failed (%v) but got status %d", err, w.Code)
		case err == nil && w.Code != http.StatusOK:
			t.Fatalf("Decode succeeded but got status %d", w.Code)
		}
		var rep map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
			t.Fatalf("reply %q is not JSON", w.Body)
		}
		if a != nil && a.Request.Status == "opening" {
			if _, ok := rep["allowed"].(bool); !ok {
				t.Fatalf("opening reply %q lacks a bool allowed", w.Body)
			}
		}
	})
}

func BenchmarkHandler(b *testing.B) {
	body := doc("opening", "incoming", "RTMP", "rtmp://live.example.com:1935/app/stream?token=abc")
	sig := Sign([]byte(testSecret), body)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"allowed":true}`)
	})
	h, _, _ := newHandler(b, Config{Secret: testSecret})
	// doc's request.time: the benchmark must not fail as the real clock moves past it.
	h.now = func() time.Time { return time.Date(2026, 5, 12, 4, 45, 0, 0, time.UTC) }
	h.rec = nil // measure the adapter, not the fake registry's growing slice
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"ome", h}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/hooks/ome", bytes.NewReader(body))
				r.Header.Set(SignatureHeader, sig)
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("got %d", w.Code)
				}
			}
		})
	}
}

// badURL is the reason of an opening whose url is refused before the engine is asked.
const badURL = "stream url must be scheme://host[:port]/app/stream[/file]"

// TestTargetIsTheStreamOMEUses sends the exact request.url values OME produces (or a client can
// make it produce) and checks that the path decided is the stream OME publishes or plays, and that
// a url OME could read as another stream is refused rather than truncated.
func TestTargetIsTheStreamOMEUses(t *testing.T) {
	tests := []struct {
		name, direction, protocol, url string
		wantPath                       string // "": refused before the engine is asked
	}{
		{"rtmp app/stream", "incoming", "RTMP", "rtmp://h:1935/live/bob?token=abc", "live/bob"},
		// ffmpeg rtmp://h/live/bob/anything/more: app live, publish name "bob/anything/more";
		// OBS server rtmp://h/live/x/more, key bob: the same url, stream "bob". Ambiguous.
		{"rtmp extra segments", "incoming", "RTMP", "rtmp://h:1935/live/bob/anything/more?token=abc", ""},
		{"rtmp one extra segment", "incoming", "RTMP", "rtmp://h:1935/live/bob/anything?token=abc", ""},
		{"rtmp trailing slash", "incoming", "RTMP", "rtmp://h:1935/live/bob/?token=abc", ""},
		{"whip", "incoming", "WebRTC", "https://h:3334/live/bob?direction=whip&token=abc", "live/bob"},
		{"llhls master playlist", "outgoing", "LLHLS", "https://h:3334/live/bob/llhls.m3u8?token=viewer-xyz", "live/bob"},
		{"llhls abr playlist", "outgoing", "LLHLS", "https://h:3334/live/bob/abr.m3u8?token=viewer-xyz", "live/bob"},
		{"hlsv3 ts playlist", "outgoing", "HLSv3", "http://h:3333/live/bob/ts:playlist.m3u8?token=viewer-xyz", "live/bob"},
		{"webrtc abr playlist", "outgoing", "WebRTC", "wss://h:3334/live/bob/abr?token=viewer-xyz", "live/bob"},
		{"srt playlist", "outgoing", "SRT", "srt://h:9998/live/bob/playlist?token=viewer-xyz", "live/bob"},
		{"llhls beyond file", "outgoing", "LLHLS", "https://h:3334/live/bob/llhls.m3u8/more?token=viewer-xyz", ""},
		{"webrtc beyond file", "outgoing", "WebRTC", "wss://h:3334/live/bob/abr/extra?token=viewer-xyz", ""},
		{"dot-dot file", "outgoing", "Thumbnail", "http://h:20080/live/bob/..?token=viewer-xyz", ""},
		{"empty stream", "outgoing", "WebRTC", "wss://h:3334/live//abr?token=viewer-xyz", ""},
		// OME's grammar takes the last "://": it would publish live/alice.
		{"second scheme in query", "incoming", "RTMP", "rtmp://h:1935/live/bob?x=rtmp://h/live/alice&token=abc", ""},
		// OME's grammar reads "h:1935/live/bob?u=x" as a user name: live/alice again.
		{"user info in query", "incoming", "RTMP", "rtmp://h:1935/live/bob?token=abc&u=x:y@h/live/alice", ""},
		{"fragment", "outgoing", "WebRTC", "ws://h:3333/live/bob#/live/alice?token=viewer-xyz", ""},
		{"percent-encoded stream", "incoming", "RTMP", "rtmp://h:1935/live/bo%62?token=abc", ""},
		{"second question mark", "incoming", "RTMP", "rtmp://h:1935/live/bob?token=abc?token=zzz", ""},
		{"user info", "incoming", "RTMP", "rtmp://u:p@h:1935/live/bob?token=abc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, be, _ := newHandler(t, Config{})
			r := httptest.NewRequest(http.MethodPost, "/hooks/ome", bytes.NewReader(doc("opening", tt.direction, tt.protocol, tt.url)))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var rep wireReply
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || rep.Allowed == nil || w.Code != http.StatusOK {
				t.Fatalf("got %d %q, want 200 with a bool allowed", w.Code, w.Body)
			}
			got, calls := be.lastRequest()
			if tt.wantPath == "" {
				if *rep.Allowed || calls != 0 || rep.Reason != badURL {
					t.Errorf("got allowed=%v reason %q after %d backend calls (path %q), want refused before the engine", *rep.Allowed, rep.Reason, calls, got.Path)
				}
				return
			}
			if !*rep.Allowed || got.Path != tt.wantPath {
				t.Errorf("got allowed=%v (%s) path %q, want allowed path %q", *rep.Allowed, rep.Reason, got.Path, tt.wantPath)
			}
		})
	}
}

// omeURL is OME's URL grammar as OME writes it (ov::Url, src/base/ovlibrary/url.cpp): the oracle
// matchOMEURL is held to. Go's regexp picks the same leftmost-first submatches as PCRE2.
var omeURL = regexp.MustCompile(`(?P<scheme>.*)://((?P<id>.+):(?P<password>.+)@)?` +
	`(?P<host>(\[[0-9A-Za-z:.]+\]|[^:/?#]*))(:(?P<port>[0-9]+))?` +
	`(?P<path>/([^?]+)?)?(\?(?P<qs>[^?]+)?(.+)?)?`)

// oracleMatch is omeURL's reading of raw in matchOMEURL's terms.
func oracleMatch(raw string) (omeMatch, bool) {
	m := omeURL.FindStringSubmatch(raw)
	if m == nil {
		return omeMatch{}, false
	}
	o := omeMatch{scheme: m[omeURL.SubexpIndex("scheme")]}
	o.userinfo = m[omeURL.SubexpIndex("id")] != "" || m[omeURL.SubexpIndex("password")] != ""
	o.path, o.qs = m[omeURL.SubexpIndex("path")], m[omeURL.SubexpIndex("qs")]
	return o, true
}

// TestOMEGrammar pins the reading of OME's URL grammar the refusals above rely on (where Go's
// parser sees live/bob, OME sees live/alice), and holds matchOMEURL to the expression on the
// forms it branches on.
func TestOMEGrammar(t *testing.T) {
	for _, raw := range []string{
		"rtmp://h:1935/live/bob?x=rtmp://h/live/alice",
		"rtmp://h:1935/live/bob?u=x:y@h/live/alice",
	} {
		if m, ok := matchOMEURL(raw); !ok || m.path != "/live/alice" {
			t.Errorf("%s: got OME path %q, want /live/alice", raw, m.path)
		}
	}
	for _, raw := range []string{
		"", "rtmp", "://", "rtmp://", "rtmp://h", "rtmp://h:", "rtmp://h:x/a", "rtmp://h:1935", "rtmp://h:1935/",
		"rtmp://h/a/b", "rtmp://h/a/b?", "rtmp://h/a/b??x", "rtmp://h/a/b?x?y", "rtmp://h?x", "rtmp://h#f/a",
		"rtmp://[::1]:1935/a/b", "rtmp://[::1/a/b", "rtmp://[]/a/b", "rtmp://[v1.x]x/a", "rtmp://[a-b]/a",
		"rtmp://u:p@h/a/b", "rtmp://:p@h/a/b", "rtmp://u:@h/a/b", "rtmp://u::@h/a", "rtmp://@h:/a", "rtmp://a:b:@",
		"rtmp://h/a/b?x=:y@z", "a://b://c/d/e", "rtmp:///a/b", "rtmp://h/a%2Fb/c", "SRT://h:9/a/b?streamid=x",
	} {
		got, gotOK := matchOMEURL(raw)
		want, wantOK := oracleMatch(raw)
		if got != want || gotOK != wantOK {
			t.Errorf("%q: got %+v %v, want %+v %v", raw, got, gotOK, want, wantOK)
		}
	}
}

// FuzzOMEURLGrammar holds the hand-written reading of OME's URL grammar to the expression, on
// every input ParseTarget gives it (valid UTF-8 without control characters).
func FuzzOMEURLGrammar(f *testing.F) {
	for _, s := range []string{"rtmp://u:p@[::1]:1935/live/bob?x=rtmp://h/live/alice?y", "srt://h:9?streamid=srt://h/a/b", "a://:@b::1/c?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return
		}
		got, gotOK := matchOMEURL(raw)
		want, wantOK := oracleMatch(raw)
		if got != want || gotOK != wantOK {
			t.Fatalf("%q: got %+v %v, want %+v %v", raw, got, gotOK, want, wantOK)
		}
	})
}

// TestNestedStreamIDRefusedNotNil: an SRT URL whose streamid holds a malformed inner URL is
// refused with an error; ParseTarget returned nil, nil for it (the inner error was shadowed)
// and the handler dereferenced the nil target. Found by the fuzzer.
func TestNestedStreamIDRefusedNotNil(t *testing.T) {
	tgt, err := ParseTarget("srt://h:9999?streamid=srt%3A%DC%DC%3A9999%2Flive%2Fcam", "SRT")
	if err == nil || tgt != nil {
		t.Errorf("got %+v, %v; want an error", tgt, err)
	}
}
