package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
	"gatehouse/protocols/nginxtest"
	"gatehouse/web"
)

const rtmpWebConfig = `listen: "127.0.0.1:0"
hooks_listen: "%HOOKS%"
data_dir: %DATA%
watch_config: false
auth:
  methods: [keys, internal, jwt]
  internal:
    users:
      - user: admin
        pass: ${E2E_ADMIN_PASS}
        permissions: [{action: api}]
      - user: any
        permissions: [{action: read, path: "public/*"}, {action: read, path: "live/*"}]
  jwt: {}
  keys: []
sfu:
  udp_port: 0
  include_loopback: true
  allow_private_candidates: true
  pages: true
web:
  title: Our streams
  rtmp_server: rtmp://%RTMP%
  play_urls:
    nginx-rtmp: "%PLAY%"
`

// rtmpPlayURL is the play URL template of the test: nginx-rtmp's HLS, as an operator would
// serve it (the test does not fetch it).
const rtmpPlayURL = "http://127.0.0.1:8080/hls/{path}.m3u8"

// The RTMP stream's key: a path and a label with markup and quotes, which every page must show
// as text.
const (
	rtmpKeyPath  = `live/o'k"<i>x`
	rtmpKeyLabel = `Bob's <script>window.__xss=1</script> "OBS"`
)

// rtmpNginx starts nginx with the rtmp module: application live calls gatehouse's nginx-rtmp
// hook at hooks (not yet listening: nginx asks only when someone publishes).
func rtmpNginx(t *testing.T, hooks string) *nginxtest.Nginx {
	t.Helper()
	bin, module := nginxtest.Binary(t), nginxtest.RTMPModule(t)
	hook := "http://" + hooks + "/hooks/nginx-rtmp"
	return nginxtest.Start(t, bin, func(dir string, port int) string {
		return fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
worker_processes 1;
error_log %s info;
pid %s;
events { worker_connections 64; }
rtmp {
    server {
        listen 127.0.0.1:%d;
        application live {
            live on;
            on_publish %s;
            on_play %s;
            on_update %s;
            on_done %s;
            notify_update_timeout 5s;
        }
    }
}
`, module, filepath.Join(dir, "error.log"), filepath.Join(dir, "nginx.pid"), port, hook, hook, hook, hook)
	})
}

// testPattern publishes ffmpeg's generated test pattern (and a tone) to url, as OBS would over
// RTMP, for at most limit; stop ends it. Its output is logged when the test fails.
func testPattern(t *testing.T, url string, limit time.Duration) (stop func()) {
	t.Helper()
	stop, _ = testPatternExit(t, url, limit)
	return stop
}

// testPatternExit is testPattern that also returns a channel closed when ffmpeg exits (refused
// by the streaming server, disconnected, or at limit).
func testPatternExit(t *testing.T, url string, limit time.Duration) (stop func(), exited <-chan struct{}) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("GATEHOUSE_ALLOW_SKIP") == "1" {
			t.Skip("ffmpeg is not installed")
		}
		t.Fatal("ffmpeg is not installed (apt-get install -y ffmpeg)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine",
		"-t", fmt.Sprint(int(limit.Seconds())), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
		"-g", "25", "-c:a", "aac", "-f", "flv", url)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ffmpeg: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("ffmpeg output:\n%s", out.String())
		}
	})
	return stop, done
}

// viewport sets the tab's window size (device pixels 1:1).
func (p *page) viewport(w, h int64) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.EmulateViewport(w, h)); err != nil {
		p.t.Fatalf("%s: viewport %dx%d: %v", p.name, w, h, err)
	}
}

// shotScaled saves a screenshot of the whole w x h viewport scaled by scale (a 4K wall at half
// size keeps the README's image small); see shot for where. Unless doc, it always goes to a
// temporary directory (rendered and checked, not kept).
func (p *page) shotScaled(name string, w, h, scale float64, doc bool) {
	p.t.Helper()
	time.Sleep(300 * time.Millisecond)
	png, err := chromedp.Run(p.ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		res, err := cdp.Call(ctx, tg, cdppage.CaptureScreenshot, cdppage.CaptureScreenshotParams{
			Format: cdppage.CaptureScreenshotFormatPng,
			Clip:   &cdppage.Viewport{X: 0, Y: 0, Width: w, Height: h, Scale: scale},
		})
		if err != nil {
			return nil, err
		}
		return res.Data, nil
	})
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := p.t.TempDir()
	if doc && os.Getenv("GATEHOUSE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// pressKey sends one key press (down and up) to the focused element.
func (p *page) pressKey(key string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.KeyEvent(key)); err != nil {
		p.t.Fatalf("%s: key %q: %v", p.name, key, err)
	}
}

// TestWebRTMPAndLayouts: the operator logs in to /manage (local admin), creates a key, reads the
// RTMP server and stream key the page shows, and ffmpeg publishes a test pattern to real
// nginx-rtmp with those; the open grid shows the stream without a reload, with its source and a
// link to where it plays, and drops it when ffmpeg stops. Next to a WHIP stream, the grid, the
// watch page and /manage are photographed at a phone, a laptop and a 4K wall, and both pages
// are used with the keyboard alone.
func TestWebRTMPAndLayouts(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t) // no browser: fail (or skip) before starting anything
	hooks := freeAddr(t)
	ngx := rtmpNginx(t, hooks)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	iss, err := tokens.LoadIssuer(filepath.Join(data, "keys")) // the key the binary will load
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	cfg := strings.NewReplacer("%HOOKS%", hooks, "%DATA%", data, "%RTMP%", ngx.Addr, "%PLAY%", rtmpPlayURL).Replace(rtmpWebConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gh := startBinary(t, cfgPath, "E2E_ADMIN_PASS="+localAdminPass)
	base := gh.public

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	bctx, stopBrowser := headlessChromium(t, ctx, filepath.Join(dir, "profile"))
	defer stopBrowser()

	// A viewer has the grid open before anything is live.
	grid := newPage(t, bctx, "viewer", chromedp.WithNewBrowserContext())
	grid.open(base + "/")
	grid.await("the empty grid", `!document.getElementById("empty").hidden`, 10*time.Second)

	// The operator logs in and creates a key.
	op := newPage(t, bctx, "operator", chromedp.WithNewBrowserContext())
	op.open(base + "/manage")
	op.await("the login form", `location.pathname === "/login" && document.querySelector('input[name="password"]')`, 10*time.Second)
	op.eval(fmt.Sprintf(`(() => { const f = document.querySelector("form"); f.username.value = "admin"; f.password.value = %q; f.submit(); return true })()`, localAdminPass), nil)
	op.await("/manage as admin", `location.pathname === "/manage" && document.body.dataset.user === "admin"`, 10*time.Second)
	op.await("the keys table filled by manage.js", `!document.getElementById("keys-table").textContent.includes("Loading")`, 10*time.Second)
	op.eval(fmt.Sprintf(`(() => { const f = document.getElementById("create-key"); f.path.value = %q; f.label.value = %q;
		f.requestSubmit(); return true })()`, rtmpKeyPath, rtmpKeyLabel), nil)
	op.await("the new key", `document.getElementById("secret").dataset.secret`, 10*time.Second)
	var shown map[string]string
	op.eval(`Object.fromEntries([...document.querySelectorAll("#secret .copy-row")].map(r => [r.querySelector("span").textContent, r.querySelector("output").textContent]))`, &shown)
	server, key := shown["RTMP server"], shown["RTMP stream key"]
	if want := "rtmp://" + ngx.Addr + "/live"; server != want || key == "" {
		t.Fatalf("/manage shows RTMP server %q and key %q; want server %q (web.rtmp_server and the key's application)", server, key, want)
	}

	// OBS, played by ffmpeg: server + "/" + stream key, as OBS joins them.
	stopRTMP := testPattern(t, server+"/"+key, 90*time.Second)
	playURL, err := web.ParsePlayURL(rtmpPlayURL)
	if err != nil {
		t.Fatal(err)
	}
	cardJS := fmt.Sprintf(`[...document.querySelectorAll(".card")].find(c => c.dataset.path === %q)`, rtmpKeyPath)

	t.Run("an RTMP stream published with the page's key appears in the open grid with its source and link", func(t *testing.T) {
		grid.t = t
		grid.await("the RTMP stream's card", cardJS, 30*time.Second)
		var got struct {
			Source, Title, Sub, Href, Copy, TitleHTML, Rel string
			XSS                                            bool
		}
		grid.eval(`(() => { const c = `+cardJS+`; const a = c.querySelector("a.open-stream");
			return {source: c.querySelector(".player").dataset.source, title: c.querySelector(".state-title").textContent,
			  sub: c.querySelector(".card-sub").textContent, href: a && a.href, rel: a && a.rel,
			  copy: (c.querySelector("button.copy") || {}).ariaLabel || "", titleHTML: c.querySelector(".card-title").innerHTML,
			  xss: !!window.__xss} })()`, &got)
		if got.Source != "nginx-rtmp" || got.Title != "Live via RTMP" || !strings.Contains(got.Sub, "via RTMP") {
			t.Errorf("card: got source %q, title %q, sub %q; want nginx-rtmp, Live via RTMP", got.Source, got.Title, got.Sub)
		}
		if want := playURL.Expand(rtmpKeyPath); got.Href != want {
			t.Errorf("Open stream: got %q, want %q (PlayURL.Expand)", got.Href, want)
		}
		if got.Rel != "noopener noreferrer" || got.Copy != "Copy stream link" {
			t.Errorf("link rel %q, copy button label %q", got.Rel, got.Copy)
		}
		if !strings.Contains(got.TitleHTML, "&lt;i&gt;") || got.XSS {
			t.Errorf("the path is not escaped in the card: %q (script ran: %v)", got.TitleHTML, got.XSS)
		}
	})

	t.Run("manage lists the RTMP stream with its escaped key label; kick, rotate and revoke are focusable buttons", func(t *testing.T) {
		op.t = t
		op.open(base + "/manage")
		op.await("the RTMP stream in the live table", `document.querySelector('#live-table button[data-action="kick"]')`, 15*time.Second)
		var label string
		op.eval(`document.querySelector("#live-table tbody tr").innerHTML`, &label)
		if !strings.Contains(label, "&lt;script&gt;") || strings.Contains(label, "<script>") {
			t.Errorf("key label not escaped on /manage: %q", label)
		}
		op.await("the key buttons", `document.querySelector('#keys-table button[data-action="revoke"]')`, 10*time.Second)
		for _, action := range []string{"kick", "rotate", "revoke"} {
			var got struct {
				Tag, Type, Label string
				Focused          bool
			}
			op.eval(fmt.Sprintf(`(() => { const b = document.querySelector('button[data-action=%q]'); b.focus();
				return {tag: b.tagName, type: b.type, label: b.getAttribute("aria-label") || "", focused: document.activeElement === b && b.tabIndex >= 0} })()`, action), &got)
			if got.Tag != "BUTTON" || got.Type != "button" || !got.Focused || got.Label == "" {
				t.Errorf("%s: got %+v, want a focusable <button type=button> with an aria-label", action, got)
			}
		}
		// Tab from the top of the page reaches the rotate button (nothing traps focus before it).
		op.eval(`document.activeElement.blur(); window.scrollTo(0, 0); true`, nil)
		reached := false
		for i := 0; i < 60 && !reached; i++ {
			op.pressKey(kb.Tab)
			op.eval(`document.activeElement && document.activeElement.dataset.action === "rotate"`, &reached)
		}
		if !reached {
			t.Errorf("Tab never reached the rotate button")
		}
		var xss bool
		op.eval(`!!window.__xss`, &xss)
		if xss {
			t.Errorf("the key label's script ran on /manage")
		}
	})

	// A WHIP camera goes live next to the RTMP stream.
	perm, err := tokens.ParseAllow("publish:public/lobby")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue("camera", []authz.Permission{perm}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cam := newPage(t, bctx, "camera")
	cam.open(base + "/publish/public/lobby#token=" + tok)
	cam.await("the WHIP camera publishing", `document.body.dataset.state === "publishing"`, 20*time.Second)
	grid.t = t
	grid.await("public/lobby decoding in the grid", `(gatehouse.players["public/lobby"] || {}).framesDecoded > 0`, 20*time.Second)
	grid.shot("grid-rtmp")

	t.Run("keyboard: Tab reaches the player controls and Enter toggles mute", func(t *testing.T) {
		grid.t = t
		grid.eval(`document.activeElement.blur(); window.scrollTo(0, 0); true`, nil)
		// The first stop is the skip link.
		grid.pressKey(kb.Tab)
		var first string
		grid.eval(`document.activeElement.className + " " + document.activeElement.getAttribute("href")`, &first)
		if first != "skip #main" {
			t.Errorf("first Tab stop: got %q, want the skip link", first)
		}
		reached := false
		for i := 0; i < 30 && !reached; i++ {
			grid.pressKey(kb.Tab)
			grid.eval(`document.activeElement.matches(".player .controls button.mute")`, &reached)
		}
		if !reached {
			t.Fatalf("Tab never reached a player's mute button")
		}
		var before, after struct {
			Muted bool
			Label string
		}
		const state = `(() => { const b = document.activeElement, v = b.closest(".player").querySelector("video");
			return {muted: v.muted, label: b.getAttribute("aria-label")} })()`
		grid.await("the focused player's controls shown", `getComputedStyle(document.activeElement.closest(".controls")).opacity === "1"`, 5*time.Second)
		grid.eval(state, &before)
		grid.pressKey(kb.Enter)
		grid.eval(state, &after)
		if before.Muted == after.Muted || before.Label == after.Label {
			t.Errorf("Enter on %q: muted %v -> %v, label %q -> %q", before.Label, before.Muted, after.Muted, before.Label, after.Label)
		}
		grid.pressKey(" ") // Space toggles it back
		var again bool
		grid.eval(`document.activeElement.closest(".player").querySelector("video").muted`, &again)
		if again != before.Muted {
			t.Errorf("Space did not toggle mute back: got muted %v", again)
		}
		var live string
		grid.eval(`document.activeElement.closest(".player").querySelector('.sr-only[aria-live="polite"]').textContent`, &live)
		if !strings.Contains(live, "playing") {
			t.Errorf("the player's live region says %q", live)
		}
	})

	t.Run("layouts from a phone to a 4K wall", func(t *testing.T) {
		grid.t, op.t = t, t
		grid.eval(`document.activeElement.blur(); true`, nil)
		op.eval(`document.activeElement.blur(); window.scrollTo(0, 0); true`, nil)
		w := newPage(t, bctx, "watcher")
		w.open(base + "/watch/public/lobby")
		w.await("the watch page playing", `gatehouse.state === "playing" && gatehouse.framesDecoded > 0`, 20*time.Second)
		for _, size := range []struct {
			name  string
			w, h  int64
			scale float64
		}{{"phone", 390, 844, 1}, {"laptop", 1366, 768, 1}, {"4k", 3840, 2160, 0.5}} {
			for _, p := range []struct {
				tab  *page
				name string
			}{{grid, "grid"}, {w, "watch"}, {op, "manage"}} {
				p.tab.viewport(size.w, size.h)
				var overflow struct {
					Page    int
					Clipped []string
				}
				p.tab.eval(`(() => { const vw = document.documentElement.clientWidth; const out = [];
					for (const e of document.querySelectorAll("button, a, input, select")) {
					  if (e.closest(".table-wrap") || !e.getClientRects().length || e.closest(".skip, .controls")) continue;
					  const r = e.getBoundingClientRect(); if (r.right > vw + 1 || r.left < -1) out.push(e.tagName + ":" + (e.textContent || e.name).trim().slice(0, 30)); }
					return {page: document.documentElement.scrollWidth - vw, clipped: out} })()`, &overflow)
				if overflow.Page > 0 || len(overflow.Clipped) > 0 {
					t.Errorf("%s at %s: the page is %dpx wider than the screen; cut off: %v", p.name, size.name, overflow.Page, overflow.Clipped)
				}
				if p.name == "watch" {
					var fits bool
					p.tab.eval(`document.querySelector(".stage .card:not([hidden])").getBoundingClientRect().bottom <= innerHeight`, &fits)
					if !fits {
						t.Errorf("watch at %s: the stream's card runs below the screen", size.name)
					}
				}
				p.tab.shotScaled(p.name+"-"+size.name, float64(size.w), float64(size.h), size.scale, size.name != "laptop")
			}
		}
		var cols int
		grid.viewport(3840, 2160)
		grid.eval(`getComputedStyle(document.getElementById("grid")).gridTemplateColumns.split(" ").length`, &cols)
		if cols < 4 {
			t.Errorf("the 4K grid has %d columns, want at least 4", cols)
		}
		// Readable from across the room: a card title at least 28 device pixels high.
		var titleHeight float64
		grid.eval(`(() => { const e = document.querySelector(".card-title"); return e.getBoundingClientRect().height * (parseFloat(getComputedStyle(document.documentElement).zoom) || 1) })()`, &titleHeight)
		if titleHeight < 28 {
			t.Errorf("a card title on the 4K wall is %.0f device pixels high, want at least 28", titleHeight)
		}
		grid.viewport(1280, 800)
		op.viewport(1280, 800)
	})

	t.Run("the RTMP stream leaves the grid when ffmpeg stops", func(t *testing.T) {
		grid.t = t
		stopRTMP()
		grid.await("the RTMP card gone", `!`+cardJS+` && !gatehouse.streams.includes(`+fmt.Sprintf("%q", rtmpKeyPath)+`)`, 20*time.Second)
		grid.await("public/lobby still playing", `(gatehouse.players["public/lobby"] || {}).state === "playing"`, 5*time.Second)
	})
	if ctx.Err() != nil {
		t.Fatalf("browser budget exceeded")
	}
}
