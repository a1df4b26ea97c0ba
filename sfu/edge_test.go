package sfu

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/conf"
	"gatehouse/authz/tokens"
)

// movableOrigin is an Origins whose URL a test can change (an origin restarted elsewhere).
type movableOrigin struct {
	node string
	url  atomic.Pointer[string]
}

func (o *movableOrigin) set(u string) { o.url.Store(&u) }

func (o *movableOrigin) Origin(context.Context, string) (string, string, error) {
	u := o.url.Load()
	if u == nil {
		return "", "", ErrNoOrigin
	}
	return o.node, *u, nil
}

// front records what reaches a node's HTTP API: the pull requests and their Authorization.
type front struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pulls int
	auths []string
}

func newFront(t *testing.T, h http.Handler) *front {
	f := &front{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/whep/") {
			f.mu.Lock()
			f.pulls++
			f.auths = append(f.auths, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			f.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *front) seen() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pulls, append([]string(nil), f.auths...)
}

// testIssuer is a fleet's shared signing key: every node of a test loads the same directory.
func testIssuer(t *testing.T) *tokens.Issuer {
	t.Helper()
	iss, err := tokens.LoadIssuer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// edgeNode is one node of a test fleet: its env, the front that records its requests, and the
// Origins it pulls through.
type edgeNode struct {
	*env
	front   *front
	origins *movableOrigin
}

func newNode(t *testing.T, iss *tokens.Issuer, id string, mutate func(*Config)) *edgeNode {
	t.Helper()
	n := &edgeNode{origins: &movableOrigin{}}
	n.env = newEnv(t, func(c *Config) {
		c.Edge.NodeID = id
		c.Origins = n.origins
		c.PullTokens = iss
		if mutate != nil {
			mutate(c)
		}
	})
	n.front = newFront(t, n.sfu.Handler())
	return n
}

// pullFrom makes n pull every path from upstream.
func (n *edgeNode) pullFrom(upstream *edgeNode) { n.origins.set(upstream.front.srv.URL) }

// viewAtEdge publishes live/cam on origin, opens a viewer of it on edge and returns it once it
// has media: the start most edge tests share.
func viewAtEdge(t *testing.T, origin, edge *edgeNode) *testViewer {
	t.Helper()
	if pub, res := origin.publish("live/cam", tokPub, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	origin.waitLive("live/cam")
	v, res := edge.viewEdge("live/cam", tokView)
	if v == nil {
		t.Fatalf("viewer: got %d", res.StatusCode)
	}
	eventually(t, 15*time.Second, "media at the edge viewer", func() bool { return len(v.received(true, 1)) > 20 })
	return v
}

// viewEdge is env.view against the node's front.
func (n *edgeNode) viewEdge(path, token string) (*testViewer, *http.Response) {
	saved := n.srv
	n.srv = n.front.srv
	defer func() { n.srv = saved }()
	return n.view(path, token, true)
}

func pullSessions(e *env) []SessionInfo {
	var out []SessionInfo
	for _, s := range e.sfu.Sessions() {
		if strings.HasPrefix(s.Identity, identityPullPrefix) {
			out = append(out, s)
		}
	}
	return out
}

func (v *testViewer) keyframes() int {
	n := 0
	for _, p := range v.received(true, 0) {
		if p.key {
			n++
		}
	}
	return n
}

func TestEdgePullSharedByViewers(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", nil)
	edge.pullFrom(origin)
	pub, res := origin.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	origin.waitLive("live/cam")

	var viewers []*testViewer
	for i := range 3 {
		v, res := edge.viewEdge("live/cam", tokView)
		if v == nil {
			t.Fatalf("viewer %d: got %d: %s", i, res.StatusCode, readAll(t, res))
		}
		viewers = append(viewers, v)
	}
	for i, v := range viewers {
		eventually(t, 15*time.Second, "VP8 keyframes and audio at edge viewer", func() bool {
			return v.keyframes() > 0 && len(v.received(false, 1)) > 5 && len(v.received(true, 1)) > 20
		})
		_ = i
	}
	if got := len(pullSessions(origin.env)); got != 1 {
		t.Errorf("pull sessions on the origin: got %d, want 1", got)
	}
	pulls, auths := origin.front.seen()
	if pulls != 1 {
		t.Errorf("pull requests to the origin: got %d, want 1", pulls)
	}
	for _, a := range auths {
		if a == tokView || strings.Contains(a, tokView) {
			t.Errorf("a viewer's token reached the origin")
		}
		c, err := iss.VerifyPull(a)
		if err != nil {
			t.Errorf("the origin got a credential that is not a pull token: %v", err)
		}
		if c.Path != "live/cam" || c.Node != "edge" || c.Hop != 1 {
			t.Errorf("pull claims: got %+v, want path live/cam node edge hop 1", c)
		}
	}
	if st := edge.sfu.Stats(); st.PacketsForwarded == 0 {
		t.Errorf("edge forwarded no packets")
	}
}

func TestEdgeLingerClosesPullAfterLastViewer(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", func(c *Config) { c.Edge.Linger = conf.Duration(10 * time.Second) })
	edge.pullFrom(origin)
	v1 := viewAtEdge(t, origin, edge)
	v1.close()
	eventually(t, 10*time.Second, "the edge viewer's session to end", func() bool { return edge.sessionCount() == 0 })

	edge.clock.Advance(9 * time.Second)
	edge.sfu.sweep()
	if got := len(pullSessions(origin.env)); got != 1 {
		t.Fatalf("within the linger: pull sessions on the origin: got %d, want 1", got)
	}
	// A viewer who comes back within the linger joins the same pull.
	v2, res := edge.viewEdge("live/cam", tokView)
	if v2 == nil {
		t.Fatalf("second viewer: got %d", res.StatusCode)
	}
	eventually(t, 15*time.Second, "media at the second edge viewer", func() bool { return v2.keyframes() > 0 })
	if pulls, _ := origin.front.seen(); pulls != 1 {
		t.Errorf("pull requests: got %d, want 1 (the second viewer joins the lingering pull)", pulls)
	}
	v2.close()
	eventually(t, 10*time.Second, "the second viewer's session to end", func() bool { return edge.sessionCount() == 0 })
	edge.clock.Advance(10 * time.Second)
	edge.sfu.sweep()
	eventually(t, 10*time.Second, "the pull to close on the origin", func() bool { return len(pullSessions(origin.env)) == 0 })
	edge.sfu.mu.Lock()
	left := len(edge.sfu.streams)
	edge.sfu.mu.Unlock()
	if left != 0 {
		t.Errorf("edge streams after the linger: got %d, want 0", left)
	}
}

func TestEdgeReconnectKeepsViewer(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", nil)
	edge.pullFrom(origin)
	v := viewAtEdge(t, origin, edge)

	// Drop the pull on the origin side (as an origin restart would): the edge reconnects.
	ps := pullSessions(origin.env)
	if len(ps) != 1 {
		t.Fatalf("pull sessions: got %d, want 1", len(ps))
	}
	if err := origin.sfu.Kick(ps[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a second pull", func() bool {
		n, _ := origin.front.seen()
		return n >= 2 && len(pullSessions(origin.env)) == 1
	})
	before := len(v.received(true, 1))
	eventually(t, 20*time.Second, "media again at the same viewer", func() bool { return len(v.received(true, 1)) > before+20 })
	if st := v.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
		t.Errorf("viewer connection: got %s, want connected", st)
	}
	if got := edge.sessionCount(); got != 1 {
		t.Errorf("edge sessions: got %d, want the one viewer", got)
	}
	checkContinuous(t, v.received(true, 1))
}

// checkContinuous checks that a viewer's video sequence numbers and timestamps never jump
// (a reconnect upstream must not show as a gap or a new stream).
func checkContinuous(t *testing.T, pkts []rx) {
	t.Helper()
	ssrc := pkts[0].ssrc
	for i := 1; i < len(pkts); i++ {
		a, b := pkts[i-1], pkts[i]
		if b.ssrc != ssrc {
			t.Fatalf("packet %d: SSRC changed from %d to %d", i, ssrc, b.ssrc)
		}
		if d := int16(b.seq - a.seq); d > 50 || d < -50 {
			t.Fatalf("packet %d: sequence jumps by %d (%d -> %d)", i, d, a.seq, b.seq)
		}
		if d := int32(b.ts - a.ts); d > 90000*30 || d < -90000 {
			t.Fatalf("packet %d: timestamp jumps by %d", i, d)
		}
	}
}

func TestEdgeOriginRestart(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", nil)
	edge.pullFrom(origin)
	v := viewAtEdge(t, origin, edge)

	// The origin goes away; a new one (same fleet key) takes the stream over.
	origin.front.srv.Close()
	_ = origin.sfu.Close()
	origin2 := newNode(t, iss, "origin2", nil)
	if pub, res := origin2.publish("live/cam", tokPub, 2); pub == nil {
		t.Fatalf("publish on the new origin: got %d", res.StatusCode)
	}
	origin2.waitLive("live/cam")
	edge.pullFrom(origin2)
	eventually(t, 30*time.Second, "media from the new origin at the same viewer", func() bool { return len(v.received(true, 2)) > 20 })
	if st := v.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
		t.Errorf("viewer connection: got %s, want connected", st)
	}
	checkContinuous(t, v.received(true, 0))
}

func TestEdgeCycleRefused(t *testing.T) {
	iss := testIssuer(t)
	a := newNode(t, iss, "node-a", nil)
	b := newNode(t, iss, "node-b", nil)
	a.pullFrom(b)
	b.pullFrom(a) // misconfigured: each names the other as its origin; nobody publishes
	_, res := a.viewEdge("live/cam", tokView)
	if res.StatusCode != statusLoopDetected {
		t.Fatalf("viewer of a cycle: got %d, want %d (%s)", res.StatusCode, statusLoopDetected, readAll(t, res))
	}
	body := readAll(t, res)
	if !strings.Contains(body, "loop") {
		t.Errorf("reason: got %q, want it to name the loop", body)
	}
	if na, _ := a.front.seen(); na > 2 { // the viewer, then b's pull back (refused)
		t.Errorf("requests to a: got %d, want at most 2 (no storm)", na)
	}
	for _, n := range []*edgeNode{a, b} {
		eventually(t, 10*time.Second, "no stream left", func() bool {
			n.sfu.mu.Lock()
			defer n.sfu.mu.Unlock()
			return len(n.sfu.streams) == 0 && len(n.sfu.sessions) == 0
		})
	}
}

func TestEdgeDirectCycleRuleByNodeID(t *testing.T) {
	// A node that pulls P from X refuses X's pull of P, even without the chain (a token minted
	// by X for a first hop).
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", nil)
	edge.origins.node = "origin"
	edge.pullFrom(origin)
	if pub, res := origin.publish("live/cam", tokPub, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	origin.waitLive("live/cam")
	if v, res := edge.viewEdge("live/cam", tokView); v == nil {
		t.Fatalf("viewer: got %d", res.StatusCode)
	}
	tok, err := iss.IssuePull(tokens.PullClaims{Node: "origin", Path: "live/cam", Hop: 1, Via: []string{"origin"}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := edge.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	res := edge.do(http.MethodPost, "/whep/live/cam", tok, typeSDP, offer(t, pc), headerNode, "origin")
	body := mustStatus(t, res, statusLoopDetected)
	if !strings.Contains(body, "pulls the stream from the requesting node") {
		t.Errorf("reason: got %q", body)
	}
}

func TestEdgeHopLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxHops int
		want    int
	}{
		{"two hops allowed", 2, http.StatusCreated},
		{"one hop allowed", 1, statusLoopDetected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := testIssuer(t)
			hops := func(c *Config) { c.Edge.MaxHops = tc.maxHops }
			origin := newNode(t, iss, "origin", hops)
			mid := newNode(t, iss, "mid", hops)
			leaf := newNode(t, iss, "leaf", hops)
			// Closed first, so that when each node's leak check runs the chain above it is gone.
			t.Cleanup(func() { _ = mid.sfu.Close() })
			mid.pullFrom(origin)
			leaf.pullFrom(mid)
			if pub, res := origin.publish("live/cam", tokPub, 1); pub == nil {
				t.Fatalf("publish: got %d", res.StatusCode)
			}
			origin.waitLive("live/cam")
			v, res := leaf.viewEdge("live/cam", tokView)
			if res.StatusCode != tc.want {
				t.Fatalf("viewer at the leaf: got %d, want %d", res.StatusCode, tc.want)
			}
			if v != nil {
				eventually(t, 15*time.Second, "media two hops away", func() bool { return v.keyframes() > 0 })
				return
			}
			if body := readAll(t, res); !strings.Contains(body, "hop limit") {
				t.Errorf("reason: got %q, want the hop limit", body)
			}
			if got := len(pullSessions(origin.env)); got != 0 {
				t.Errorf("pull sessions on the origin: got %d, want 0", got)
			}
		})
	}
}

func TestEdgeViewerDeniedBeforePull(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", nil)
	edge.pullFrom(origin)
	if pub, res := origin.publish("live/cam", tokPub, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	origin.waitLive("live/cam")
	for _, tok := range []string{tokNoPerm, "", "wrong-token"} {
		_, res := edge.viewEdge("live/cam", tok)
		if res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusUnauthorized {
			t.Errorf("viewer with %q: got %d, want 401 or 403", tok, res.StatusCode)
		}
		res.Body.Close()
	}
	if n, _ := origin.front.seen(); n != 0 {
		t.Errorf("pull requests to the origin: got %d, want 0", n)
	}
}

func TestEdgePullTokenChecks(t *testing.T) {
	iss := testIssuer(t)
	other := testIssuer(t) // another fleet's key
	origin := newNode(t, iss, "origin", nil)
	if pub, res := origin.publish("live/cam", tokPub, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	origin.waitLive("live/cam")
	mint := func(i *tokens.Issuer, c tokens.PullClaims) string {
		tok, err := i.IssuePull(c, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	perm, err := tokens.ParseAllow("read:live/cam")
	if err != nil {
		t.Fatal(err)
	}
	viewerTok, err := iss.Issue("bob", []authz.Permission{perm}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	good := tokens.PullClaims{Node: "edge", Path: "live/cam", Hop: 1, Via: []string{"edge"}}
	tests := []struct {
		name  string
		token string
		node  string
		want  int
	}{
		{"test viewer token as pull", tokView, "edge", http.StatusUnauthorized},
		{"own viewer token as pull", viewerTok, "edge", http.StatusUnauthorized},
		{"another fleet's key", mint(other, good), "edge", http.StatusUnauthorized},
		{"another path", mint(iss, tokens.PullClaims{Node: "edge", Path: "live/other", Hop: 1}), "edge", http.StatusForbidden},
		{"another node", mint(iss, good), "mallory", http.StatusForbidden},
		{"hop over the limit", mint(iss, tokens.PullClaims{Node: "edge", Path: "live/cam", Hop: DefaultMaxHops + 1}), "edge", statusLoopDetected},
		{"chain names the origin", mint(iss, tokens.PullClaims{Node: "edge", Path: "live/cam", Hop: 2, Via: []string{"origin", "edge"}}), "edge", statusLoopDetected},
		{"no token", "", "edge", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := origin.sfu.pcs.Load()
			pc, err := origin.api.NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				t.Fatal(err)
			}
			res := origin.do(http.MethodPost, "/whep/live/cam", tc.token, typeSDP, offer(t, pc), headerNode, tc.node)
			mustStatus(t, res, tc.want)
			if got := origin.sfu.pcs.Load(); got != before {
				t.Errorf("a refused pull created %d PeerConnections", got-before)
			}
		})
	}
}

func TestEdgeInternalIPs(t *testing.T) {
	// Both nodes refuse private candidates (publishers and viewers still connect: their own
	// connectivity checks reach the SFU); Config.InternalIPs lets the nodes' pulls use them.
	iss := testIssuer(t)
	strict := func(c *Config) {
		c.AllowPrivateCandidates = false
		c.InternalIPs = clientip.Proxies{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	}
	origin := newNode(t, iss, "origin", strict)
	edge := newNode(t, iss, "edge", strict)
	edge.pullFrom(origin)
	viewAtEdge(t, origin, edge) // a pull through the internal networks works

	// The internal networks apply to pulls only.
	const sdpWith = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=candidate:1 1 udp 2130706431 10.1.2.3 5000 typ host\r\n" +
		"a=candidate:2 1 udp 2130706431 192.168.1.2 5000 typ host\r\n"
	for _, tc := range []struct {
		name   string
		policy candidatePolicy
		want   int
	}{
		{"viewers and publishers", edge.sfu.cands, 0},
		{"pulls", edge.sfu.pullCands, 1},
	} {
		_, set, err := tc.policy.filterOffer(sdpWith)
		if err != nil {
			t.Fatal(err)
		}
		if len(set) != tc.want {
			t.Errorf("%s: usable candidates: got %d, want %d (10.1.2.3 only for pulls)", tc.name, len(set), tc.want)
		}
	}
}

type authzNone struct{}

func (authzNone) Authorize(context.Context, *authz.Request) authz.Decision { return authz.Decision{} }

func TestEdgeConfigErrors(t *testing.T) {
	if _, err := New(Config{Origins: StaticOrigin{BaseURL: "http://x"}}, authzNone{}, nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("an edge without PullTokens: got %v, want ErrConfig", err)
	}
}

func TestEdgeConfigYAML(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the error; none: valid
	}{
		{"defaults", "udp_port: 0\n", nil},
		{"static origin", "edge:\n  origin: http://origin:8089/\n  node_id: edge-1\n  linger: 0s\ninternal_ips: [10.0.0.0/8, 192.168.1.7]\n", nil},
		{"unknown key", "edge:\n  origin: http://o\n  hops: 2\n", []string{"line 3", `unknown key "hops"`}},
		{"bad origin", "edge:\n  origin: ftp://o\n", []string{"line 2", "http://"}},
		{"origin with password", "edge:\n  origin: http://u:p@o\n", []string{"line 2", "user or password"}},
		{"max hops", "edge:\n  max_hops: 99\n", []string{"line 2", "max_hops 99"}},
		{"zero max hops", "edge:\n  max_hops: 0\n", []string{"line 2", "must not be 0"}},
		{"bad node id", "edge:\n  node_id: a b\n", []string{"line 2", "node_id"}},
		{"bad internal ip", "internal_ips: [10.0.0.0/33]\n", []string{"line 1", "10.0.0.0/33"}},
		{"all at once", "edge:\n  origin: x\n  max_hops: -1\n", []string{"line 2", "line 3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := yaml.Unmarshal([]byte(tc.src), &c)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if tc.name == "defaults" && (c.Edge.MaxHops != DefaultMaxHops || c.Edge.Linger.Std() != DefaultEdgeLinger) {
					t.Errorf("defaults: got %+v", c.Edge)
				}
				if tc.name == "static origin" && (c.Edge.Origin != "http://origin:8089" || c.Edge.Linger != 0 || len(c.InternalIPs) != 2) {
					t.Errorf("got %+v %v", c.Edge, c.InternalIPs)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want it to contain %q", err, w)
				}
			}
		})
	}
}

// A stream with only video (no audio track) can be pulled: the origin's answer does not claim
// an audio track it will never send, and the edge does not wait for one.
func TestEdgePullsVideoOnlyStream(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", func(c *Config) { c.Edge.PullTimeout = conf.Duration(5 * time.Second) })
	edge.pullFrom(origin)
	origin.publishSimulcast("live/cam", 0)
	origin.layersLive("live/cam")
	v, res := edge.viewEdge("live/cam", tokView)
	if v == nil {
		t.Fatalf("edge viewer of a video-only stream: got %d: %s", res.StatusCode, readAll(t, res))
	}
	eventually(t, 15*time.Second, "video at the edge viewer", func() bool {
		return v.keyframes() > 0 && len(v.received(true, 0)) > 20
	})
	if got := len(v.received(false, 0)); got != 0 {
		t.Errorf("audio packets at the edge viewer of a video-only stream: %d", got)
	}
	// The origin's answer itself marks the kind it has no track for inactive, so edges that
	// trust the direction alone (older nodes) are not stuck either.
	pc, err := origin.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	res = origin.do(http.MethodPost, "/whep/live/cam", tokView, typeSDP, offer(t, pc))
	answer := mustStatus(t, res, http.StatusCreated)
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		t.Fatal(err)
	}
	for _, md := range sd.MediaDescriptions {
		if k, _ := mediaKind(md); k == webrtc.RTPCodecTypeAudio && direction(md) != "inactive" {
			t.Errorf("the origin answers the audio section of a video-only stream %q, want inactive", direction(md))
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the direct viewer to connect", func() bool {
		return pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
}

func TestSentKinds(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	const audio = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"
	const video = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n"
	for _, tc := range []struct {
		name, sdp string
		want      [2]bool
	}{
		{"both with tracks", head + audio + "a=sendonly\r\na=msid:s a\r\n" + video + "a=sendonly\r\na=ssrc:1 cname:x\r\n", [2]bool{true, true}},
		{"sendonly without a track", head + audio + "a=sendonly\r\n" + video + "a=sendonly\r\na=msid:s v\r\n", [2]bool{false, true}},
		{"inactive", head + audio + "a=inactive\r\n" + video + "a=sendonly\r\na=msid:s v\r\n", [2]bool{false, true}},
		{"recvonly", head + audio + "a=recvonly\r\na=msid:s a\r\n" + video + "a=sendrecv\r\na=msid:s v\r\n", [2]bool{false, true}},
		{"unparsable", "nonsense", [2]bool{}},
	} {
		if got := sentKinds(tc.sdp); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
