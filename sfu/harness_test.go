package sfu

import (
	"context"
	"encoding/binary"
	"errors"
	"gatehouse/authz/logtest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/live/livetest"
)

// fakeClock is the SFU's injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recorder collects live events.
type recorder = livetest.Recorder

// env is one SFU on loopback with an HTTP server, a fake clock and a recorder.
type env struct {
	t      *testing.T
	sfu    *SFU
	srv    *httptest.Server
	clock  *fakeClock
	rec    *recorder
	client *http.Client
	api    *webrtc.API
	revoke atomic.Bool // when set, every token is refused (Recheck tests)
	broken atomic.Bool // when set, the backend cannot decide (returns an error) for every token
	// canEndAt is the CanEndAt of the last request with a token: 1 true, 2 false.
	canEndAt atomic.Int32
	// extra, when set (newEnvWith), is asked before the test tokens; it decides when its bool is true.
	extra func(*authz.Request) (authz.Decision, bool)
	logs  *lockedBuffer // the SFU's log (Info and above)
}

// Test tokens understood by env's authorizer.
const (
	tokPub     = "pub-token"     // publish anything, identity alice
	tokPub2    = "pub2-token"    // publish anything, identity bob
	tokView    = "view-token"    // read anything
	tokAdmin   = "admin-token"   // api
	tokShort   = "short-token"   // publish and read, grant expires one minute after "now"
	tokExpired = "expired-token" // publish and read, grant expired an hour ago
	tokNoPerm  = "noperm-token"  // known identity, nothing permitted
)

// Stream-key paths: publishing to them with tokPub, or reading them with tokView, is allowed and
// renamed (keyPath to live/alice; badKeyPath to a path the SFU must refuse). No log line may name them.
const (
	streamKey  = "s3cret-key"
	keyPath    = "ingest/" + streamKey
	badKeyPath = "ingest/" + streamKey + "-bad"
)

type lockedBuffer = logtest.Buffer

// errBackendDown is what env's backend returns when it cannot decide (env.broken).
var errBackendDown = errors.New("test backend: upstream unavailable")

func (e *env) authorize(_ context.Context, req *authz.Request) (authz.Decision, error) {
	if e.extra != nil {
		if d, ok := e.extra(req); ok {
			return d, nil
		}
	}
	if req.Token == "" {
		return authz.Decision{}, nil // abstain: no credentials
	}
	if req.CanEndAt {
		e.canEndAt.Store(1)
	} else {
		e.canEndAt.Store(2)
	}
	if e.broken.Load() {
		return authz.Decision{}, errBackendDown
	}
	if e.revoke.Load() {
		return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "revoked"), nil
	}
	now := e.clock.Now()
	switch req.Token {
	case tokPub, tokPub2:
		if req.Action == authz.ActionPublish {
			id := "alice"
			if req.Token == tokPub2 {
				id = "bob"
			}
			d := authz.Allowing(id, time.Time{})
			switch req.Path {
			case keyPath:
				d.Rename = "live/alice"
			case badKeyPath:
				d.Rename = "../escape"
			}
			return d, nil
		}
	case tokView:
		if req.Action == authz.ActionRead {
			d := authz.Allowing("viewer", time.Time{})
			switch req.Path {
			case keyPath:
				d.Rename = "live/alice"
			case badKeyPath:
				d.Rename = "../escape"
			}
			return d, nil
		}
	case tokAdmin:
		if req.Action == authz.ActionAPI {
			return authz.Allowing("admin", time.Time{}), nil
		}
	case tokShort:
		if req.Action.HasPath() {
			return authz.Allowing("shorty", now.Add(time.Minute)), nil
		}
	case tokExpired:
		return authz.Allowing("late", now.Add(-time.Hour)), nil
	case tokNoPerm:
	default:
		return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "unknown token"), nil
	}
	return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted"), nil
}

// newEnv starts an SFU (ephemeral UDP port, loopback candidates) and checks after the test that
// Close left no goroutine behind.
func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	return newEnvWith(t, mutate, nil)
}

// newEnvWith is newEnv with extra (nil: none) asked before the test tokens.
func newEnvWith(t *testing.T, mutate func(*Config), extra func(*authz.Request) (authz.Decision, bool)) *env {
	t.Helper()
	base := runtime.NumGoroutine()
	e := &env{t: t, clock: &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}, rec: &recorder{}, extra: extra}
	cfg := DefaultConfig()
	cfg.UDPPort = 0
	cfg.IncludeLoopback = true
	cfg.Now = e.clock.Now
	// Tests advance the fake clock by minutes (expiry, reconnect grace) while pion connects in
	// real time: the connect timeout must not race them. Connect-timeout tests set their own.
	cfg.ConnectTimeout = conf.Duration(24 * time.Hour)
	cfg.AllowPrivateCandidates = true // every test client is on loopback
	if mutate != nil {
		mutate(&cfg)
	}
	engine := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: authz.BackendFunc(e.authorize)}), nil, authz.WithClock(e.clock.Now))
	logs := &lockedBuffer{}
	e.logs = logs
	s, err := New(cfg, engine, e.rec, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.sfu = s
	e.srv = httptest.NewServer(s.Handler())
	e.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	e.api = clientAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = s.Run(ctx) }()
	t.Cleanup(func() {
		e.srv.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := s.Close(); err != nil { // idempotent
			t.Errorf("second Close: %v", err)
		}
		cancel()
		<-runDone
		checkGoroutines(t, base)
		out := logs.String()
		for _, secret := range []string{tokPub, tokPub2, tokView, tokAdmin, tokShort, tokExpired, tokNoPerm, streamKey} {
			if strings.Contains(out, secret) {
				t.Errorf("the log names the secret %q:\n%s", secret, out)
			}
		}
	})
	return e
}

// checkGoroutines waits (bounded) for the goroutine count to return to base.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutine leak: got %d goroutines after Close, want <= %d\n%s", n, base, buf)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clientAPI is a plain pion client restricted to loopback UDP.
func clientAPI(t *testing.T) *webrtc.API {
	t.Helper()
	return clientAPIWith(t, nil)
}

// clientAPIWith is clientAPI with settings changed by mutate (nil: none).
func clientAPIWith(t *testing.T, mutate func(*webrtc.SettingEngine)) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	// Like Chromium: abs-send-time on video, for its receive-side bandwidth estimate (REMB).
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.ABSSendTimeURI}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		t.Fatal(err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	if mutate != nil {
		mutate(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends a request to the test server.
func (e *env) do(method, path, token, ctype, body string, hdr ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return res
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// offer creates pc's offer and waits for gathering.
func offer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g:
	case <-time.After(10 * time.Second):
		t.Fatal("client gathering timed out")
	}
	return pc.LocalDescription().SDP
}

// testPublisher sends a synthetic VP8 + Opus stream. Every payload carries the publisher id and
// a counter; a keyframe goes out every 30 video packets and after each PLI.
type testPublisher struct {
	pc       *webrtc.PeerConnection
	location string
	token    string
	stop     chan struct{}
	done     sync.WaitGroup
	plis     atomic.Int64
}

func (e *env) publish(path, token string, id byte) (*testPublisher, *http.Response) {
	t := e.t
	t.Helper()
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	video, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pub")
	p := &testPublisher{pc: pc, token: token, stop: make(chan struct{})}
	var senders []*webrtc.RTPSender
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		tx, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, tx.Sender())
	}
	res := e.do(http.MethodPost, "/whip/"+path, token, typeSDP, offer(t, pc))
	if res.StatusCode != http.StatusCreated {
		_ = pc.Close()
		return nil, res
	}
	answer := readAll(t, res)
	p.location = res.Header.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	keyNow := make(chan struct{}, 1)
	for _, s := range senders {
		p.done.Go(func() {
			for {
				pkts, _, err := s.ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					if _, ok := pk.(*rtcp.PictureLossIndication); ok {
						p.plis.Add(1)
						select {
						case keyNow <- struct{}{}:
						default:
						}
					}
				}
			}
		})
	}
	p.done.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		seq := uint16(id) * 7919 // a different start per publisher
		ts := uint32(id) * 100003
		var n uint32
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			key := n%30 == 0
			select {
			case <-keyNow:
				key = true
			default:
			}
			payload := make([]byte, 100)
			payload[0] = 0x10 // VP8 descriptor: S=1, PID=0
			if !key {
				payload[1] = 0x01 // P=1: inter frame
			}
			payload[2] = id
			binary.BigEndian.PutUint32(payload[3:], n)
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: ts}, Payload: payload})
			if n%2 == 0 {
				ap := []byte{0xfc, id, 0, 0, 0, 0}
				binary.BigEndian.PutUint32(ap[2:], n)
				_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq / 2, Timestamp: ts / 90 * 48}, Payload: ap})
			}
			seq++
			ts += 900
			n++
		}
	})
	t.Cleanup(p.close)
	return p, res
}

func (p *testPublisher) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	_ = p.pc.Close()
	p.done.Wait()
}

// rx is one packet a viewer received.
type rx struct {
	seq   uint16
	ts    uint32
	ssrc  uint32
	pub   byte
	n     uint32
	key   bool
	video bool
	exts  []uint8 // header extension IDs
}

// testViewer plays a stream and records every packet.
type testViewer struct {
	pc       *webrtc.PeerConnection
	location string
	mu       sync.Mutex
	pkts     []rx
	done     sync.WaitGroup
}

func (e *env) view(path, token string, read bool) (*testViewer, *http.Response) {
	t := e.t
	t.Helper()
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &testViewer{pc: pc}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if !read {
			return // a viewer that never reads
		}
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		v.done.Go(func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				r := rx{seq: p.SequenceNumber, ts: p.Timestamp, ssrc: p.SSRC, video: video, exts: p.GetExtensionIDs()}
				if video && len(p.Payload) >= 7 {
					r.key, r.pub, r.n = p.Payload[1]&1 == 0, p.Payload[2], binary.BigEndian.Uint32(p.Payload[3:])
				} else if len(p.Payload) >= 6 {
					r.pub, r.n = p.Payload[1], binary.BigEndian.Uint32(p.Payload[2:])
				}
				v.mu.Lock()
				v.pkts = append(v.pkts, r)
				v.mu.Unlock()
			}
		})
	})
	res := e.do(http.MethodPost, "/whep/"+path, token, typeSDP, offer(t, pc))
	if res.StatusCode != http.StatusCreated {
		_ = pc.Close()
		return nil, res
	}
	answer := readAll(t, res)
	v.location = res.Header.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.close)
	return v, res
}

func (v *testViewer) close() {
	_ = v.pc.Close()
	v.done.Wait()
}

// received returns the packets of one kind (video or audio) received so far, optionally only
// those from publisher pub (0: any).
func (v *testViewer) received(video bool, pub byte) []rx {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []rx
	for _, p := range v.pkts {
		if p.video == video && (pub == 0 || p.pub == pub) {
			out = append(out, p)
		}
	}
	return out
}

func (e *env) sessionCount() int { return len(e.sfu.Sessions()) }

func mustStatus(t *testing.T, res *http.Response, want int) string {
	t.Helper()
	body := readAll(t, res)
	if res.StatusCode != want {
		t.Fatalf("status: got %d, want %d (body %q)", res.StatusCode, want, body)
	}
	return body
}
