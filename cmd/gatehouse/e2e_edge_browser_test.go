package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
)

// cascadeBudget bounds the browser part of TestEndToEndSFUEdgeCascade (the binary is built
// before it starts).
const cascadeBudget = 90 * time.Second

// cascadeConfig is one node of a two-node fleet whose nodes name each other as origin: A serves
// its own publishers' paths to B, and a path nobody publishes is the cycle both must refuse.
// Viewers and publishers present gatehouse tokens of the fleet's shared key (jwt: {}); admin
// reads the sessions API.
const cascadeConfig = `listen: "%LISTEN%"
hooks_listen: "127.0.0.1:0"
data_dir: %DATA%
watch_config: false
auth:
  methods: [internal, jwt]
  internal:
    users:
      - user: admin
        pass: adminpass
        permissions: [{action: api}]
  jwt: {}
sfu:
  udp_port: 0
  include_loopback: true
  allow_private_candidates: true
  internal_ips: [127.0.0.0/8]
  edge:
    node_id: %NODE%
    origin: http://%ORIGIN%
    origin_node: %ORIGIN_NODE%
    linger: 1s
`

func cascadeNode(t *testing.T, listen, data, node, origin, originNode string) string {
	t.Helper()
	cfg := strings.NewReplacer("%LISTEN%", listen, "%DATA%", data, "%NODE%", node,
		"%ORIGIN%", origin, "%ORIGIN_NODE%", originNode).Replace(cascadeConfig)
	path := filepath.Join(t.TempDir(), node+".yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pullsOn lists the sessions a node serves to other nodes' pulls of path, from its sessions API.
func pullsOn(t *testing.T, base, path string) []string {
	t.Helper()
	code, body := apiCall(t, http.MethodGet, base+"/api/v1/sessions")
	if code != http.StatusOK {
		t.Fatalf("GET %s/api/v1/sessions: %d %s", base, code, body)
	}
	var list struct {
		Sessions []struct{ ID, Source, Path, Identity string }
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("sessions: %v (%s)", err, body)
	}
	var out []string
	for _, s := range list.Sessions {
		if s.Source == "sfu" && s.Path == path && strings.HasPrefix(s.Identity, "node:") {
			out = append(out, s.Identity)
		}
	}
	return out
}

// pullAdmissions counts the pulls of path by node that p admitted, from its log ("sfu play"
// lines with the pull's identity node:<node>).
func pullAdmissions(p *proc, path, node string) int {
	n := 0
	for _, l := range strings.Split(p.logs(), "\n") {
		if strings.Contains(l, `msg="sfu play" `) && strings.Contains(l, " path="+path+" ") && strings.Contains(l, " identity=node:"+node+" ") {
			n++
		}
	}
	return n
}

// headlessChromium starts Chromium with a fake camera, WebRTC on loopback with real host
// candidates, and no throttling of background tabs; the returned context's cancel stops it.
func headlessChromium(t *testing.T, ctx context.Context, profile string) (context.Context, context.CancelFunc) {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.UserDataDir(profile),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true), chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"), chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"), chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("disable-background-timer-throttling", true), chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true))...)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	return bctx, func() { cancelBrowser(); cancelAlloc() }
}

// TestEndToEndSFUEdgeCascade runs two real binaries, origin A and edge B: Chromium publishes its
// fake camera on A's publish page and a second Chromium tab decodes it on B's watch page at the
// camera's size (B pulls from A); ten pion viewers of another path arriving on B at once make A
// admit exactly one pull over the subtest (counted in A's log), which ends after the linger once
// they leave; and since A also names B as its origin, a path nobody publishes is a cycle that
// both nodes refuse with 508.
func TestEndToEndSFUEdgeCascade(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	leaks.require()
	leaks.secret("admin password (e2e cascade)", "adminpass")
	dir := t.TempDir()
	dataA, dataB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	// The fleet's key: minted here, loaded by A, copied to B.
	iss, err := tokens.LoadIssuer(filepath.Join(dataA, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	copyDir(t, filepath.Join(dataA, "keys"), filepath.Join(dataB, "keys"))
	mint := func(sub, allow string) string {
		p, err := tokens.ParseAllow(allow)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := iss.Issue(sub, []authz.Permission{p}, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return leaks.token("token for "+sub+" (e2e cascade)", tok)
	}
	pubTok, viewTok := mint("camera", "publish:live/*"), mint("viewer", "read:live/*")

	addrA, addrB := freeAddr(t), freeAddr(t)
	a := startBinary(t, cascadeNode(t, addrA, dataA, "node-a", addrB, "node-b"))
	b := startBinary(t, cascadeNode(t, addrB, dataB, "node-b", addrA, "node-a"))
	t.Cleanup(func() {
		for _, tok := range []string{pubTok, viewTok} {
			if strings.Contains(a.logs()+b.logs(), tok) {
				t.Errorf("a token reached a node's log")
			}
		}
	})

	t.Run("chromium publishes on A, chromium watches on B", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), cascadeBudget)
		defer cancel()
		bctx, stop := headlessChromium(t, ctx, filepath.Join(dir, "profile"))
		defer stop()
		pub := newPage(t, bctx, "publish-on-A")
		pub.open(a.public + "/publish/live/cam#token=" + pubTok)
		pub.await("the camera publishing on A", `document.body.dataset.state === "publishing"`, 20*time.Second)

		watch := newPage(t, bctx, "watch-on-B")
		watch.open(b.public + "/watch/live/cam#token=" + viewTok)
		watch.await("B's watch page decoding", `gatehouse.state === "playing" && gatehouse.framesDecoded > 0`, 30*time.Second)
		var first int
		watch.eval(`gatehouse.framesDecoded`, &first)
		watch.await("more frames decoded at B", `gatehouse.framesDecoded > `+strconv.Itoa(first+30), 20*time.Second)
		// The publish page previews the camera in its own video element: its size is the fake
		// camera's. B's viewer decodes that size (waited for: an encoder may start smaller).
		const dimsJS = `({W: document.getElementById("video").videoWidth, H: document.getElementById("video").videoHeight})`
		var cam, dims struct{ W, H int }
		pub.eval(dimsJS, &cam)
		if cam.W == 0 || cam.H == 0 {
			t.Fatalf("camera preview on A: %dx%d, want nonzero dimensions", cam.W, cam.H)
		}
		watch.await(fmt.Sprintf("B's watch page decoding the camera's %dx%d", cam.W, cam.H),
			fmt.Sprintf(`document.getElementById("video").videoWidth === %d && document.getElementById("video").videoHeight === %d`, cam.W, cam.H),
			20*time.Second)
		watch.eval(dimsJS, &dims)
		t.Logf("watch page on B: %dx%d (camera %dx%d), framesDecoded %d then more than %d", dims.W, dims.H, cam.W, cam.H, first, first+30)
		watch.shot("watch-edge")
		if got := pullsOn(t, a.public, "live/cam"); len(got) != 1 || got[0] != "node:node-b" {
			t.Errorf("A's pulls of live/cam: got %q, want one by node:node-b", got)
		}
	})

	t.Run("ten viewers on B, one pull on A, closed after the linger", func(t *testing.T) {
		publishVP8(t, a.public, "live/ten", "Bearer "+pubTok)
		// The ten arrive at once: B must start one pull for all of them, not one each.
		viewers, codes, errs := make([]*e2eViewer, 10), make([]int, 10), make([]error, 10)
		var wg sync.WaitGroup
		for i := range viewers {
			wg.Go(func() { viewers[i], codes[i], errs[i] = dialViewer(b.public, "live/ten", "Bearer "+viewTok) })
		}
		wg.Wait()
		for _, v := range viewers {
			if v != nil {
				t.Cleanup(v.close)
			}
		}
		for i, v := range viewers {
			if v == nil {
				t.Fatalf("viewer %d on B: got %d (%v), want 201", i, codes[i], errs[i])
			}
		}
		for i, v := range viewers {
			waitFor(t, 20*time.Second, "video and a keyframe at edge viewer "+strconv.Itoa(i), func() bool { return v.keys.Load() > 0 && v.video.Load() > 30 })
		}
		if got := pullsOn(t, a.public, "live/ten"); len(got) != 1 || got[0] != "node:node-b" {
			t.Errorf("A's pulls of live/ten for ten viewers on B: got %q, want one by node:node-b", got)
		}
		for _, v := range viewers {
			v.close()
		}
		waitFor(t, 15*time.Second, "A's pull session of live/ten to end after B's linger", func() bool {
			return len(pullsOn(t, a.public, "live/ten")) == 0
		})
		// Counted from A's log, so that pulls opened and closed again while the viewers arrived
		// count too: one for the whole subtest.
		if got := pullAdmissions(a, "live/ten", "node-b"); got != 1 {
			t.Errorf("pulls of live/ten A admitted for node-b over the subtest: got %d, want 1", got)
		}
	})

	t.Run("a cycle is refused with 508", func(t *testing.T) {
		// Nobody publishes live/none: B asks A, A asks B, B finds itself in the chain.
		for _, n := range []struct {
			name string
			p    *proc
		}{{"B", b}, {"A", a}} {
			v, code := viewVP8(t, n.p.public, "live/none", "Bearer "+viewTok)
			if v != nil || code != statusLoopDetected {
				t.Errorf("viewer of a path nobody publishes, on %s: got %d, want 508", n.name, code)
			}
		}
		waitFor(t, 5*time.Second, "a node to log the refused loop", func() bool {
			return strings.Contains(a.logs()+b.logs(), "pull loop")
		})
		for _, p := range []*proc{a, b} {
			if got := pullsOn(t, p.public, "live/none"); len(got) != 0 {
				t.Errorf("pulls of live/none left on %s: %q", p.public, got)
			}
		}
	})
}

const statusLoopDetected = 508 // RFC 5842, the SFU's answer to a pull cycle
