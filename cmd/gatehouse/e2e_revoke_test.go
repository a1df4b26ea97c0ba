package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// revokeConfig runs the SFU and points the MediaMTX adapter's kicks at %MTX% (a fake MediaMTX
// API that checks the requests its documentation gives). connect_timeout is long so that only a
// revocation can end the (never connected) WHIP sessions of this test.
const revokeConfig = `sfu:
  udp_port: 0
  connect_timeout: 10m
hooks:
  mediamtx:
    api: {url: "%MTX%", user: gatehouse, password: mtx-api-pass}
auth:
  methods: [keys, internal]
  keys: []
  internal:
    users:
      - user: admin
        pass: adminpass
        permissions: [{action: api}]
`

// api calls gatehouse's public API as admin and decodes the JSON answer into out (if not nil).
func api(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.SetBasicAuth("admin", "adminpass")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// whipOffer is a real WHIP offer from a pion publisher (video and audio, send only).
func whipOffer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}

// whip posts an offer to path with the Authorization header auth ("" for none).
func whip(t *testing.T, public, path, auth string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", public+"/whip/"+path, strings.NewReader(whipOffer(t)))
	req.Header.Set("Content-Type", "application/sdp")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

type streamsJSON struct {
	Streams []struct {
		Path, Source, Session string
		KeyID                 string `json:"key_id"`
		KeyLabel              string `json:"key_label"`
	}
}

// waitStreams polls /api/v1/streams until ok accepts it (the store's feed is polled every second).
func waitStreams(t *testing.T, public string, what string, ok func(streamsJSON) bool) streamsJSON {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var s streamsJSON
		api(t, "GET", public+"/api/v1/streams", "", &s)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; streams: %+v", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEndToEndRevocationEndsSessions follows the README: a key created through the API publishes
// over WHIP with the key as OBS's Bearer Token and over MediaMTX (?key=); /api/v1/streams shows
// it live with its label; rotating the key ends the WHIP session (SFU) and kicks the MediaMTX
// session through MediaMTX's API; the new key publishes. A publisher that used the key as its
// path ends its own session with DELETE and the key; an operator's kick with ?ban= refuses the
// key for a while. No secret ever reaches the log.
func TestEndToEndRevocationEndsSessions(t *testing.T) {
	var mu sync.Mutex
	var kicks []string
	mtxAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		kicks = append(kicks, r.Method+" "+r.URL.Path+" "+u+":"+p)
		mu.Unlock()
	}))
	defer mtxAPI.Close()
	public, hooks, logs := startServe(t, strings.ReplaceAll(revokeConfig, "%MTX%", mtxAPI.URL))

	var k struct{ ID, Secret string }
	if code := api(t, "POST", "http://"+public+"/api/v1/keys", `{"path":"live/alice","label":"Alice OBS","owner":"alice"}`, &k); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	secrets := []string{k.Secret}
	base := "http://" + public

	// OBS WHIP: server URL .../whip/live/alice, Bearer Token = the key.
	if r := whip(t, base, "live/alice", "Bearer "+k.Secret); r.StatusCode != 201 {
		t.Fatalf("WHIP with the key as Bearer: %d, want 201", r.StatusCode)
	}
	// MediaMTX: the same key as ?key= on an RTMP publish with MediaMTX's connection id.
	const connID = "1c6b2f8e-3f5c-4a0e-9d43-7d7b8a9b0c11"
	if code, _ := postMediaMTX(t, "http://"+hooks, jsonReq(map[string]any{"action": "publish", "path": "live/alice2",
		"protocol": "rtmp", "id": connID, "query": "key=" + k.Secret})); code != 403 {
		t.Fatalf("mediamtx on another path: %d, want 403", code)
	}
	if code, _ := postMediaMTX(t, "http://"+hooks, jsonReq(map[string]any{"action": "read", "path": "live/alice",
		"protocol": "rtmp", "id": connID, "query": "key=" + k.Secret})); code != 403 {
		t.Fatalf("mediamtx read with a publish key: %d, want 403", code)
	}
	if code, _ := postMediaMTX(t, "http://"+hooks, jsonReq(map[string]any{"action": "publish", "path": "live/alice",
		"protocol": "rtmp", "id": connID, "user": "obs", "password": k.Secret})); code != 200 {
		t.Fatalf("mediamtx with the key as RTMP password: %d, want 200", code)
	}

	s := waitStreams(t, base, "live/alice live with its key", func(s streamsJSON) bool { return len(s.Streams) == 1 })
	if st := s.Streams[0]; st.Path != "live/alice" || st.Source != "sfu" || st.KeyID != k.ID || st.KeyLabel != "Alice OBS" || st.Session == "" {
		t.Fatalf("stream: got %+v, want live/alice from the SFU with key %s (Alice OBS) and its session id", st, k.ID)
	}

	// Rotate: the old key's WHIP session ends, the MediaMTX session is kicked through its API.
	var rot struct{ ID, Secret string }
	if code := api(t, "POST", base+"/api/v1/keys/"+k.ID+"/rotate", `{}`, &rot); code != 201 && code != 200 {
		t.Fatalf("rotate: %d", code)
	}
	secrets = append(secrets, rot.Secret)
	waitStreams(t, base, "the old key's stream to end", func(s streamsJSON) bool { return len(s.Streams) == 0 })
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(kicks, "\n")
		mu.Unlock()
		if got == "POST /v3/rtmpconns/kick/"+connID+" gatehouse:mtx-api-pass" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MediaMTX API got %q, want one POST /v3/rtmpconns/kick/%s with Basic auth", got, connID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := whip(t, base, "live/alice", "Bearer "+k.Secret); r.StatusCode != 401 {
		t.Fatalf("WHIP with the rotated key: %d, want 401", r.StatusCode)
	}

	// The new key publishes with the key as the path (no Bearer) and ends its own session with
	// DELETE and the key.
	r := whip(t, base, "live/"+rot.Secret, "")
	if r.StatusCode != 201 || strings.Contains(r.Header.Get("Location"), rot.Secret) {
		t.Fatalf("WHIP with the new key as path: %d Location %q, want 201 without the key", r.StatusCode, r.Header.Get("Location"))
	}
	loc := r.Header.Get("Location")
	del := func(auth string) int {
		req, _ := http.NewRequest("DELETE", base+loc, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := del("Bearer " + k.Secret); code != 403 {
		t.Fatalf("DELETE with another key: %d, want 403", code)
	}
	if code := del("Bearer " + rot.Secret); code != 200 {
		t.Fatalf("DELETE with the session's key: %d, want 200", code)
	}

	// An operator kicks a session and bans its key for 10 minutes: the key is refused at once.
	if r := whip(t, base, "live/alice", "Bearer "+rot.Secret); r.StatusCode != 201 {
		t.Fatalf("WHIP again: %d", r.StatusCode)
	}
	s = waitStreams(t, base, "live/alice live again", func(s streamsJSON) bool { return len(s.Streams) == 1 })
	var kicked struct{ Kick string }
	if code := api(t, "DELETE", base+"/api/v1/sessions/"+s.Streams[0].Session+"?ban=10m", "", &kicked); code != 202 || kicked.Kick != "pending" {
		t.Fatalf("kick with ban: %d %+v, want 202 pending", code, kicked)
	}
	waitStreams(t, base, "the kicked stream to end", func(s streamsJSON) bool { return len(s.Streams) == 0 })
	if r := whip(t, base, "live/alice", "Bearer "+rot.Secret); r.StatusCode != 403 {
		t.Fatalf("WHIP with a banned key: %d, want 403", r.StatusCode)
	}

	// The log is written asynchronously (flushed every 100ms): wait for the kicks' lines.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Count(logs.String(), "session ended") >= 3 { // WHIP and MediaMTX at rotation, the operator's kick
			break
		}
	}
	all := logs.String()
	for _, sec := range secrets {
		if strings.Contains(all, sec) || strings.Contains(all, sec[4:]) {
			t.Errorf("the log contains a stream key")
		}
	}
	for _, want := range []string{"session ended", "source=sfu", "source=mediamtx", "key_id=" + k.ID} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
