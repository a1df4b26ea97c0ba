package main

import (
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Two real gatehouse binaries: an origin with a pion WHIP publisher, and an edge configured
// with sfu.edge.origin that serves pion WHEP viewers by pulling from it.

const edgeUsers = `auth:
  internal:
    users:
      - user: publisher
        pass: pub-secret-pass
        permissions: [{action: publish, path: "live/*"}]
      - user: viewer
        pass: view-secret-pass
        permissions: [{action: read, path: "live/*"}]
`

func edgeNodeConfig(t *testing.T, dataDir, listen, node, origin string) string {
	t.Helper()
	cfg := "listen: " + listen + "\nhooks_listen: 127.0.0.1:0\nwatch_config: false\ndata_dir: " + dataDir + "\n" +
		"sfu:\n  udp_port: 0\n  include_loopback: true\n  internal_ips: [127.0.0.0/8]\n" +
		"  edge:\n    node_id: " + node + "\n    linger: 1s\n"
	if origin != "" {
		cfg += "    origin: " + origin + "\n    origin_node: origin\n"
	}
	cfg += edgeUsers
	path := filepath.Join(t.TempDir(), node+".yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+leaks.secret(user+" password", pass)))
}

// freePort returns a loopback address no one listens on (the origin restarts on it).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// e2ePublisher sends VP8 (a keyframe every 30 packets and on PLI) and Opus over WHIP.
type e2ePublisher struct {
	pc   *webrtc.PeerConnection
	stop chan struct{}
	wg   sync.WaitGroup
}

func publishVP8(t *testing.T, base, path, auth string) *e2ePublisher {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	video, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pub")
	p := &e2ePublisher{pc: pc, stop: make(chan struct{})}
	keyNow := make(chan struct{}, 1)
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		tx, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		p.wg.Go(func() {
			for {
				pkts, _, err := tx.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					if _, ok := pk.(*rtcp.PictureLossIndication); ok {
						select {
						case keyNow <- struct{}{}:
						default:
						}
					}
				}
			}
		})
	}
	answer := postSDP(t, base+"/whip/"+path, auth, pc)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	p.wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
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
			payload[0] = 0x10
			if !key {
				payload[1] = 0x01
			}
			binary.BigEndian.PutUint64(payload[2:], uint64(time.Now().UnixNano()))
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(n), Timestamp: n * 900}, Payload: payload})
			if n%2 == 0 {
				_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(n / 2), Timestamp: n * 480}, Payload: []byte{0xfc, 1, 2, 3}})
			}
			n++
		}
	})
	t.Cleanup(p.close)
	return p
}

func (p *e2ePublisher) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	_ = p.pc.Close()
	p.wg.Wait()
}

// postSDP sends pc's complete offer and returns the 201 answer.
func postSDP(t *testing.T, url, auth string, pc *webrtc.PeerConnection) string {
	t.Helper()
	code, body := tryPostSDP(t, url, auth, pc)
	if code != http.StatusCreated {
		t.Fatalf("POST %s: got %d (%s), want 201", url, code, body)
	}
	return body
}

func tryPostSDP(t *testing.T, url, auth string, pc *webrtc.PeerConnection) (int, string) {
	t.Helper()
	code, body, err := postOffer(url, auth, pc)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// postOffer is tryPostSDP without t, for goroutines other than the test's.
func postOffer(url, auth string, pc *webrtc.PeerConnection) (int, string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return 0, "", err
	}
	g := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return 0, "", err
	}
	<-g
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// e2eViewer plays over WHEP and counts VP8 keyframe packets and the one-way delay of video.
type e2eViewer struct {
	pc      *webrtc.PeerConnection
	video   atomic.Int64
	keys    atomic.Int64
	delayNs atomic.Int64 // sum over video packets
	wg      sync.WaitGroup
}

func viewVP8(t *testing.T, base, path, auth string) (*e2eViewer, int) {
	t.Helper()
	v, code, err := dialViewer(base, path, auth)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		t.Cleanup(v.close)
	}
	return v, code
}

// dialViewer is viewVP8 without t, for goroutines other than the test's: the viewer is nil
// unless the answer is 201, and the caller closes it.
func dialViewer(base, path, auth string) (*e2eViewer, int, error) {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, 0, err
	}
	v := &e2eViewer{pc: pc}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = pc.Close()
			return nil, 0, err
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		v.wg.Go(func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				if len(p.Payload) >= 10 {
					v.video.Add(1)
					v.delayNs.Add(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(p.Payload[2:])))
					if p.Payload[0]&0x10 != 0 && p.Payload[1]&1 == 0 {
						v.keys.Add(1)
					}
				}
			}
		})
	})
	code, answer, err := postOffer(base+"/whep/"+path, auth, pc)
	if err != nil || code != http.StatusCreated {
		_ = pc.Close()
		return nil, code, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		v.close()
		return nil, code, err
	}
	return v, code, nil
}

func (v *e2eViewer) close() {
	_ = v.pc.Close()
	v.wg.Wait()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEndToEndSFUEdge(t *testing.T) {
	leaks.require()
	originData := filepath.Join(t.TempDir(), "data")
	originAddr := freePort(t)
	originCfg := edgeNodeConfig(t, originData, originAddr, "origin", "")
	origin := startBinary(t, originCfg)
	publishVP8(t, origin.public, "live/cam", basic("publisher", "pub-secret-pass"))

	// The fleet shares the signing key: the edge gets a copy of the origin's key directory.
	edgeData := filepath.Join(t.TempDir(), "data")
	copyDir(t, filepath.Join(originData, "keys"), filepath.Join(edgeData, "keys"))
	edge := startBinary(t, edgeNodeConfig(t, edgeData, "127.0.0.1:0", "edge", origin.public))

	// A viewer without permission is refused at the edge; nothing goes upstream.
	if _, code := viewVP8(t, edge.public, "live/cam", basic("viewer", "wrong-password")); code != http.StatusUnauthorized {
		t.Fatalf("viewer with a wrong password: got %d, want 401", code)
	}
	if strings.Contains(origin.logs(), "node:edge") {
		t.Fatalf("a refused viewer caused a pull:\n%s", origin.logs())
	}

	viewerAuth := basic("viewer", "view-secret-pass")
	var viewers []*e2eViewer
	for i := range 3 {
		v, code := viewVP8(t, edge.public, "live/cam", viewerAuth)
		if v == nil {
			t.Fatalf("viewer %d at the edge: got %d, want 201", i, code)
		}
		viewers = append(viewers, v)
	}
	for _, v := range viewers {
		waitFor(t, 20*time.Second, "VP8 keyframes at an edge viewer", func() bool { return v.keys.Load() > 0 && v.video.Load() > 30 })
	}
	if got := strings.Count(origin.logs(), `identity=node:edge`); got != 1 {
		t.Errorf("pulls served by the origin: got %d, want 1 for 3 viewers\n%s", got, origin.logs())
	}
	for _, v := range viewers {
		if n := v.video.Load(); n > 0 {
			t.Logf("edge viewer: %d video packets, mean one-way delay publisher→origin→edge→viewer %v",
				n, time.Duration(v.delayNs.Load()/n))
		}
	}
	direct, code := viewVP8(t, origin.public, "live/cam", viewerAuth)
	if direct == nil {
		t.Fatalf("viewer at the origin: got %d", code)
	}
	waitFor(t, 20*time.Second, "video at the origin viewer", func() bool { return direct.video.Load() > 30 })
	t.Logf("origin viewer: mean one-way delay publisher→origin→viewer %v", time.Duration(direct.delayNs.Load()/direct.video.Load()))
	direct.close()

	// The origin dies and comes back on the same address; the publisher publishes again. The
	// edge's viewers keep their connections and get the stream again.
	_ = origin.cmd.Process.Kill()
	<-origin.done
	origin2 := startBinary(t, originCfg)
	publishVP8(t, origin2.public, "live/cam", basic("publisher", "pub-secret-pass"))
	before := viewers[0].video.Load()
	waitFor(t, 40*time.Second, "video again at the edge viewers after the origin restarted", func() bool {
		for _, v := range viewers {
			if v.video.Load() < before+30 {
				return false
			}
		}
		return true
	})
	for i, v := range viewers {
		if st := v.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
			t.Errorf("viewer %d: connection %s, want connected", i, st)
		}
	}
	if got := strings.Count(origin2.logs(), `identity=node:edge`); got != 1 {
		t.Errorf("pulls served by the restarted origin: got %d, want 1", got)
	}

	// The last viewer leaves: the pull ends after the linger (1s) and the origin's session with it.
	for _, v := range viewers {
		v.close()
	}
	waitFor(t, 20*time.Second, "the pull to end on the origin", func() bool {
		return strings.Contains(origin2.logs(), `reason="ended by client"`)
	})
	if strings.Contains(origin.logs()+origin2.logs(), "view-secret-pass") {
		t.Errorf("the viewer's password reached the origin's log")
	}
	t.Logf("edge log lines with pull: %d", strings.Count(edge.logs(), "sfu pull"))
}
