package sfu

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
)

func TestProblemJSONErrors(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	tests := []struct {
		name, method, path, token, ctype, body string
		want                                   int
	}{
		{"wrong content type", http.MethodPost, "/whip/live/x", tokPub, "text/plain", "v=0", http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, "/whep/live/cam", tokView, "", "v=0", http.StatusUnsupportedMediaType},
		{"body too large", http.MethodPost, "/whip/live/x", tokPub, typeSDP, strings.Repeat("a", DefaultMaxBody+1), http.StatusRequestEntityTooLarge},
		{"empty body", http.MethodPost, "/whip/live/x", tokPub, typeSDP, "", http.StatusBadRequest},
		{"not SDP", http.MethodPost, "/whip/live/x", tokPub, typeSDP, "hello", http.StatusBadRequest},
		{"SDP without media", http.MethodPost, "/whip/live/x", tokPub, typeSDP, "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", http.StatusBadRequest},
		{"dot-dot path", http.MethodPost, "/whip/live/../x", tokPub, typeSDP, "v=0", http.StatusBadRequest},
		{"reserved path", http.MethodPost, "/whip/session/abc", tokPub, typeSDP, "v=0", http.StatusBadRequest},
		{"repeated query credential", http.MethodPost, "/whip/live/x?token=a&token=b", "", typeSDP, "v=0", http.StatusBadRequest},
		{"second publisher", http.MethodPost, "/whip/live/cam", tokPub2, typeSDP, offerSDP(t, e), http.StatusConflict},
		{"viewer before publisher", http.MethodPost, "/whep/live/none", tokView, typeSDP, offerSDP(t, e), http.StatusConflict},
		{"patch unknown session", http.MethodPatch, "/whip/session/ffff", tokPub, typeFrag, "a=end-of-candidates", http.StatusNotFound},
		{"patch wrong content type", http.MethodPatch, pub.location, tokPub, "text/plain", "x", http.StatusUnsupportedMediaType},
		{"patch bad fragment", http.MethodPatch, pub.location, tokPub, typeFrag, "a=candidate:garbage", http.StatusBadRequest},
		{"patch other credential", http.MethodPatch, pub.location, tokPub2, typeFrag, "a=end-of-candidates", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(tt.method, tt.path, tt.token, tt.ctype, tt.body)
			body := mustStatus(t, res, tt.want)
			if got := res.Header.Get("Content-Type"); got != typeProblem {
				t.Errorf("Content-Type: got %q, want %q", got, typeProblem)
			}
			var p problemBody
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatalf("body is not JSON: %v (%q)", err, body)
			}
			if p.Status != tt.want || p.Title != http.StatusText(tt.want) || p.Type != "about:blank" {
				t.Errorf("problem: got %+v, want status %d", p, tt.want)
			}
		})
	}
	if got := e.sessionCount(); got != 1 {
		t.Errorf("sessions: got %d, want 1", got)
	}
}

// offerSDP is a valid client offer (video + audio, receive only).
func offerSDP(t *testing.T, e *env) string {
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

func TestLinkHeadersAndLocation(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.ICEServers = []ICEServer{
			{URLs: []string{"stun:stun.example.net:3478"}},
			{URLs: []string{"turn:turn.example.net:3478?transport=udp", "turn:turn.example.net:3478?transport=tcp"}, Username: "u1", Credential: "s3cret"},
		}
	})
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	want := []string{
		`<stun:stun.example.net:3478>; rel="ice-server"`,
		`<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="u1"; credential="s3cret"; credential-type="password"`,
		`<turn:turn.example.net:3478?transport=tcp>; rel="ice-server"; username="u1"; credential="s3cret"; credential-type="password"`,
	}
	got := res.Header.Values("Link")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Link headers:\ngot  %q\nwant %q", got, want)
	}
	for _, l := range got {
		if strings.Contains(l, ",") {
			t.Errorf("Link header %q has a comma; OBS splits on commas", l)
		}
	}
	loc := res.Header.Get("Location")
	if !strings.HasPrefix(loc, "/whip/session/") || len(strings.TrimPrefix(loc, "/whip/session/")) != 32 {
		t.Errorf("Location: got %q, want /whip/session/ + 128 random bits in hex", loc)
	}
	if res.Header.Get("ETag") == "" {
		t.Error("no ETag on 201")
	}
	if got := res.Header.Get("Content-Type"); got != typeSDP {
		t.Errorf("Content-Type: got %q, want %q", got, typeSDP)
	}
}

func TestCORS(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		origin  string
		want    string
	}{
		{"any origin", []string{"*"}, "https://player.example", "*"},
		{"listed origin", []string{"https://player.example"}, "https://player.example", "https://player.example"},
		{"unlisted origin", []string{"https://player.example"}, "https://evil.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.AllowedOrigins = tt.origins })
			res := e.do(http.MethodOptions, "/whep/live/cam", "", "", "",
				"Origin", tt.origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
			mustStatus(t, res, http.StatusNoContent)
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != tt.want {
				t.Errorf("Allow-Origin: got %q, want %q", got, tt.want)
			}
			for h, want := range map[string]string{
				"Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
				"Accept-Post":                  typeSDP,
			} {
				if got := res.Header.Get(h); got != want {
					t.Errorf("%s: got %q, want %q", h, got, want)
				}
			}
			if tt.want == "" {
				return
			}
			res = e.do(http.MethodPost, "/whep/live/cam", "nope", typeSDP, "v=0", "Origin", tt.origin)
			mustStatus(t, res, http.StatusUnauthorized)
			if got := res.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Location") || !strings.Contains(got, "ETag") || !strings.Contains(got, "Link") {
				t.Errorf("Expose-Headers: got %q, want Location, ETag and Link", got)
			}
		})
	}
}

func TestTrickleAndICERestart(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	etag := res.Header.Get("ETag")
	ufrag := remoteUfrag(pub.pc) // the server's ufrag, as the client sees it
	cand := "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"
	trickle := "a=ice-ufrag:" + localUfrag(pub.pc) + "\r\na=ice-pwd:" + localPwd(pub.pc) + "\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n" + cand + "\r\na=end-of-candidates\r\n"
	restart := "a=ice-ufrag:newufrag\r\na=ice-pwd:newpasswordnewpasswordnew\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n" + cand + "\r\n"

	mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, trickle), http.StatusNoContent)
	mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, trickle, "If-Match", etag), http.StatusNoContent)
	mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, trickle, "If-Match", `"stale"`), http.StatusPreconditionFailed)
	mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, restart), http.StatusPreconditionRequired)

	res = e.do(http.MethodPatch, pub.location, tokPub, typeFrag, restart, "If-Match", "*")
	body := mustStatus(t, res, http.StatusOK)
	if got := res.Header.Get("Content-Type"); got != typeFrag {
		t.Errorf("Content-Type: got %q, want %q", got, typeFrag)
	}
	if got := res.Header.Get("ETag"); got == "" || got == etag {
		t.Errorf("ETag after restart: got %q, want a new one (old %q)", got, etag)
	}
	f, err := parseSDPFrag(body)
	if err != nil {
		t.Fatalf("restart answer is not a valid fragment: %v\n%s", err, body)
	}
	if f.Ufrag == "" || f.Ufrag == ufrag || f.Pwd == "" {
		t.Errorf("restart answer ufrag: got %q, want new credentials (old %q)", f.Ufrag, ufrag)
	}
	if len(f.Candidates) == 0 || !f.End {
		t.Errorf("restart answer: got %d candidates, end=%v; want all candidates", len(f.Candidates), f.End)
	}
	mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, trickle, "If-Match", etag), http.StatusPreconditionFailed)
}

func localUfrag(pc *webrtc.PeerConnection) string {
	return sdpValue(pc.LocalDescription().SDP, "a=ice-ufrag:")
}

func localPwd(pc *webrtc.PeerConnection) string {
	return sdpValue(pc.LocalDescription().SDP, "a=ice-pwd:")
}

func sdpValue(desc, prefix string) string {
	for line := range strings.SplitSeq(desc, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return v
		}
	}
	return ""
}

// TestClientIP: the SFU reads the address the listener's clientip.Handler resolved, so it agrees
// with every other route (it used to walk X-Forwarded-For with a list of its own).
func TestClientIP(t *testing.T) {
	s := &SFU{}
	proxies := clientip.Proxies{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct", "203.0.113.5:1234", nil, "203.0.113.5"},
		{"untrusted peer's XFF ignored", "203.0.113.5:1234", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted proxy", "10.1.1.1:1234", []string{"198.51.100.1"}, "198.51.100.1"},
		{"untrusted local proxy: unknown, not loopback", "127.0.0.1:1234", []string{"198.51.100.1"}, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			var got netip.Addr
			proxies.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = s.clientIP(r) })).ServeHTTP(nil, r)
			if got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestCleanPath: the SFU's path rule is the engine's (authz.CheckPath) after trimming slashes,
// plus its own URL characters; it never accepts a path the engine would refuse.
func TestCleanPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"live/cam", "live/cam"},
		{"/live/cam/", "live/cam"},
		{"live//cam", ""},
		{"live/../cam", ""},
		{"./cam", ""},
		{"live/.", ""},
		{"", ""},
		{"/", ""},
		{"live cam", ""},
		{"live\tcam", ""},
		{"live\x7fcam", ""},
		{"live/cam?x", ""},
		{"live/cam#x", ""},
		{"live/%2e%2e", ""},
		{"live/caméra", ""},
		{strings.Repeat("a", authz.MaxPathLen), strings.Repeat("a", authz.MaxPathLen)},
		{"/" + strings.Repeat("a", authz.MaxPathLen) + "/", strings.Repeat("a", authz.MaxPathLen)},
		{strings.Repeat("a", authz.MaxPathLen+1), ""},
	}
	for _, tt := range tests {
		got := cleanPath(tt.in)
		if got != tt.want {
			t.Errorf("cleanPath(%q): got %q, want %q", tt.in, got, tt.want)
		}
		if got != "" && authz.CheckPath(got) != nil {
			t.Errorf("cleanPath(%q) = %q, which authz.CheckPath refuses", tt.in, got)
		}
	}
	for c := range 256 { // every byte in a segment of its own: never more lenient than the engine
		p := "live/" + string([]byte{byte(c)}) + "/x"
		if got := cleanPath(p); got != "" && authz.CheckPath(got) != nil {
			t.Errorf("cleanPath accepts byte %#x, which authz.CheckPath refuses", c)
		}
	}
}

func TestPagesServed(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/watch/live/cam", "/publish/live/cam"} {
		res := e.do(http.MethodGet, p, "", "", "")
		body := mustStatus(t, res, http.StatusOK)
		if !strings.Contains(body, "<video") || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: not the player page", p)
		}
	}
}
