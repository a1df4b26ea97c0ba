package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"gatehouse/authz"
)

// simPublish publishes the fake camera at 1280x720 as three VP8 simulcast layers (q = 1/4,
// h = 1/2, f = full) over WHIP. VP8 because Chromium's software H.264 encoder does not
// simulcast every resolution; the preference leaves nothing to the answer's codec order.
// "maintain-resolution" keeps Chromium's CPU adaptation on a busy machine from shrinking the
// layers (it drops frames instead), so the resolutions tell the layers apart.
const simPublish = `(async () => {
  const S = (window.sim = { state: "connecting", error: "" });
  try {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false });
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    S.pc = pc;
    const tr = pc.addTransceiver(media.getVideoTracks()[0], { direction: "sendonly", sendEncodings: [
      { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150000 },
      { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500000 },
      { rid: "f", maxBitrate: 1500000 },
    ] });
    tr.setCodecPreferences(RTCRtpSender.getCapabilities("video").codecs.filter(c => c.mimeType === "video/VP8"));
    try {
      const p = tr.sender.getParameters();
      p.degradationPreference = "maintain-resolution";
      await tr.sender.setParameters(p);
    } catch (e) {}
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(r => { if (pc.iceGatheringState === "complete") r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); setTimeout(r, 2000); });
    const res = await fetch("/whip/live/cam", { method: "POST", headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + TOKEN }, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error("WHIP " + res.status + " " + await res.text());
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    pc.onconnectionstatechange = () => { S.state = pc.connectionState; };
  } catch (e) { S.state = "error"; S.error = String(e); }
})()`

// simView plays live/cam over WHEP (video only) and keeps its PeerConnection in window.sim.
const simView = `(async () => {
  const S = (window.sim = { state: "connecting", error: "", session: "", pcs: 0 });
  try {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    S.pc = pc; S.pcs++;
    pc.addTransceiver("video", { direction: "recvonly" });
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.playsInline = true;
    document.body.append(v);
    pc.ontrack = ev => { v.srcObject = new MediaStream([ev.track]); v.play().catch(() => {}); };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(r => { if (pc.iceGatheringState === "complete") r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); setTimeout(r, 2000); });
    const res = await fetch("/whep/live/cam", { method: "POST", headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + TOKEN }, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error("WHEP " + res.status + " " + await res.text());
    S.session = new URL(res.headers.get("Location"), location.href).toString();
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    pc.onconnectionstatechange = () => { S.state = pc.connectionState; };
  } catch (e) { S.state = "error"; S.error = String(e); }
})()`

// simStats reads the page's video inbound-rtp (viewers) or outbound-rtp per rid (publisher).
const simStats = `(async () => {
  const S = window.sim, out = { state: S.state, error: S.error, session: S.session || "", pcs: S.pcs || 0, layers: {} };
  if (!S.pc) return out;
  out.conn = S.pc.connectionState;
  (await S.pc.getStats()).forEach(r => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      out.framesDecoded = r.framesDecoded || 0; out.width = r.frameWidth || 0; out.height = r.frameHeight || 0;
      out.keyFrames = r.keyFramesDecoded || 0;
    }
    if (r.type === "candidate-pair" && r.nominated && r.availableIncomingBitrate) out.estimate = r.availableIncomingBitrate;
    if (r.type === "outbound-rtp" && r.kind === "video" && r.rid)
      out.layers[r.rid] = { width: r.frameWidth || 0, height: r.frameHeight || 0, frames: r.framesEncoded || 0, active: r.active !== false, limit: r.qualityLimitationReason || "" };
  });
  return out;
})()`

// simState is what simStats returns.
type simState struct {
	State         string              `json:"state"`
	Error         string              `json:"error"`
	Session       string              `json:"session"`
	PCs           int                 `json:"pcs"`
	Conn          string              `json:"conn"`
	FramesDecoded int                 `json:"framesDecoded"`
	Width         int                 `json:"width"`
	Height        int                 `json:"height"`
	KeyFrames     int                 `json:"keyFrames"`
	Estimate      float64             `json:"estimate"` // the receiver's bandwidth estimate (what its REMB says), bit/s
	Layers        map[string]simLayer `json:"layers"`
}

type simLayer struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Frames int    `json:"frames"`
	Active bool   `json:"active"`
	Limit  string `json:"limit"`
}

// simTab is one tab on the blank page running simPublish or simView.
type simTab struct{ *tab }

func openSim(t *testing.T, bctx context.Context, f *fixture, name, script, token string, setup ...func(context.Context) error) simTab {
	t.Helper()
	tb := openTab(t, bctx, name, f.srv.URL+"/blank")
	for _, fn := range setup {
		if err := fn(tb.ctx); err != nil {
			t.Fatalf("%s: setup: %v", name, err)
		}
	}
	js := strings.Replace(script, "TOKEN", fmt.Sprintf("%q", token), 1)
	if err := chromedp.Do(tb.ctx, chromedp.Evaluate[chromedp.Void](js)); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	return simTab{tb}
}

func (s simTab) stats(t *testing.T) simState {
	t.Helper()
	st, err := chromedp.Run(s.ctx, chromedp.Evaluate[simState](simStats, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: getStats: %v", s.name, err)
	}
	if st.State == "error" {
		t.Fatalf("%s: %s", s.name, st.Error)
	}
	return st
}

// await polls the tab's stats until cond holds, failing after limit.
func (s simTab) await(t *testing.T, limit time.Duration, what string, cond func(simState) bool) simState {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := s.stats(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			t.Fatalf("%s: timed out after %v waiting for %s; last %+v", s.name, limit, what, st)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// layerDoc is the layer resource's JSON.
type layerDoc struct {
	RID    string `json:"rid"`
	Target string `json:"target"`
	Mode   string `json:"mode"`
	Layers []struct {
		RID     string `json:"rid"`
		Bitrate int64  `json:"bitrate"`
	} `json:"layers"`
}

// layer calls the session's layer resource: GET with body "", else PATCH {"rid": body}.
func layer(t *testing.T, ctx context.Context, session, token, rid string) layerDoc {
	t.Helper()
	method, body := http.MethodGet, ""
	if rid != "" {
		method, body = http.MethodPatch, `{"rid":"`+rid+`"}`
	}
	req, err := http.NewRequestWithContext(ctx, method, session+"/layer", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s layer: %v", method, err)
	}
	defer res.Body.Close()
	var doc layerDoc
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s layer %q: status %d", method, rid, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatalf("%s layer: %v", method, err)
	}
	return doc
}

// throttle limits the tab's network, WebRTC included (global conditions, empty URL pattern),
// to bps bits per second each way.
func throttle(bps float64) func(context.Context) error {
	return func(ctx context.Context) error {
		return chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return chromedp.Void{}, err
			}
			_, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
				MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: bps / 8, UploadThroughput: bps / 8, Latency: 20}},
			})
			return chromedp.Void{}, err
		})
	}
}

// settleAt is how long after joining viewer A is expected on the top layer; settleGrace bounds
// the extra wait (a probe up after an early loss waits out the 10 s loss hold and Chromium's
// estimate growing ~8 %/s: 17 s here on a busy machine; the grace leaves room for a busier one).
// simulcastBudget bounds the whole test.
const (
	settleAt        = 10 * time.Second
	settleGrace     = 30 * time.Second
	simulcastBudget = 80 * time.Second
)

// rank returns rid's position in doc's layers (lowest first), -1 if absent.
func rank(doc layerDoc, rid string) int {
	for i, l := range doc.Layers {
		if l.RID == rid {
			return i
		}
	}
	return -1
}

// TestChromiumSimulcast publishes Chromium's fake camera as three simulcast layers over WHIP
// and plays it in Chromium viewers: one follows the top layer, one is pinned to the lowest
// through the layer resource and then moved to the top without renegotiation, one sits behind
// a throttled network.
func TestChromiumSimulcast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), simulcastBudget)
	defer cancel()
	f := newFixture(t)
	bctx := browser(t, ctx)

	pubTok, err := f.iss.Issue("camera-owner", []authz.Permission{mustAllow(t, "publish:live/cam")}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	viewTok := idpToken(t, "alice", "viewer")

	pub := openSim(t, bctx, f, "publisher", simPublish, pubTok)
	ps := pub.await(t, 20*time.Second, "three encoded layers", func(s simState) bool {
		n := 0
		for _, l := range s.Layers {
			if l.Frames > 0 {
				n++
			}
		}
		return s.State == "connected" && n == 3
	})
	t.Logf("publisher layers: %+v", ps.Layers)

	joined := time.Now()
	a := openSim(t, bctx, f, "viewer-a", simView, viewTok)
	b := openSim(t, bctx, f, "viewer-b", simView, viewTok)
	c := openSim(t, bctx, f, "viewer-c", simView, viewTok, throttle(250_000))

	sa := a.await(t, 20*time.Second, "the top layer (width ≥ 1000)", func(s simState) bool {
		return s.FramesDecoded > 0 && s.Width >= 1000
	})
	t.Logf("viewer A: %dx%d, %d frames", sa.Width, sa.Height, sa.FramesDecoded)

	sb := b.await(t, 10*time.Second, "frames and a session", func(s simState) bool { return s.FramesDecoded > 0 && s.Session != "" })
	doc := layer(t, ctx, sb.Session, viewTok, "q")
	if doc.Mode != "pinned" || doc.Target != "q" {
		t.Errorf("PATCH layer q: got mode %q target %q, want pinned q", doc.Mode, doc.Target)
	}
	sb = b.await(t, 10*time.Second, "the pinned low layer (width ≤ 400)", func(s simState) bool { return s.Width > 0 && s.Width <= 400 })
	t.Logf("viewer B pinned to q: %dx%d", sb.Width, sb.Height)
	if doc := layer(t, ctx, sb.Session, viewTok, ""); doc.RID != "q" || len(doc.Layers) != 3 {
		t.Errorf("GET layer: got rid %q and %d layers, want q of 3 (%+v)", doc.RID, len(doc.Layers), doc)
	}

	frames := sb.FramesDecoded
	layer(t, ctx, sb.Session, viewTok, "f")
	sb = b.await(t, 10*time.Second, "the top layer after the pin to f (width ≥ 1000)", func(s simState) bool { return s.Width >= 1000 })
	if sb.PCs != 1 || sb.Conn != "connected" || sb.FramesDecoded <= frames {
		t.Errorf("viewer B after the switch: %d PeerConnections, %q, frames %d after %d; want the same connected PeerConnection still decoding",
			sb.PCs, sb.Conn, sb.FramesDecoded, frames)
	}
	if doc := layer(t, ctx, sb.Session, viewTok, ""); doc.RID != "f" || doc.Mode != "pinned" {
		t.Errorf("GET layer after the switch: got rid %q mode %q, want f pinned", doc.RID, doc.Mode)
	}
	t.Logf("viewer B pinned to f: %dx%d", sb.Width, sb.Height)

	sc := c.await(t, 15*time.Second, "frames behind the throttled network", func(s simState) bool { return s.FramesDecoded > 0 })
	dc := layer(t, ctx, sc.Session, viewTok, "")
	t.Logf("viewer C (250 kbit/s): %dx%d, layer %q (%+v)", sc.Width, sc.Height, dc.RID, dc)

	// The automatic choice over time: Chromium's receiver estimate (REMB) never says much more
	// than it receives, so A must get back to (or stay on) the top layer by probing up, and C,
	// behind 250 kbit/s, must settle lower. Sampled once a second until settleAt after A joined.
	var la, lc layerDoc
	for i := 0; ; i++ {
		sa, sc = a.stats(t), c.stats(t)
		la, lc = layer(t, ctx, sa.Session, viewTok, ""), layer(t, ctx, sc.Session, viewTok, "")
		el := time.Since(joined)
		t.Logf("t=%4.1fs A %4dx%-4d %q est %5.0f kbit/s | C %4dx%-4d %q est %5.0f kbit/s",
			el.Seconds(), sa.Width, sa.Height, la.RID, sa.Estimate/1000, sc.Width, sc.Height, lc.RID, sc.Estimate/1000)
		if el >= settleAt && sa.Width >= 1000 || el >= settleAt+settleGrace || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("layer bitrates: %+v", la.Layers)
	if sa.Width < 1000 {
		t.Errorf("viewer A %v after joining: %dx%d (layer %q, estimate %.0f bit/s), want the top layer (width ≥ 1000)",
			time.Since(joined).Round(time.Second), sa.Width, sa.Height, la.RID, sa.Estimate)
	}
	if rank(la, lc.RID) >= rank(la, la.RID) {
		t.Errorf("viewer C behind 250 kbit/s follows %q (%dx%d), viewer A %q: want C on a lower layer", lc.RID, sc.Width, sc.Height, la.RID)
	}

	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("test budget of %v exceeded", simulcastBudget)
	}
}
