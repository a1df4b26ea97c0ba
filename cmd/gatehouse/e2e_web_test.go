package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
	"gatehouse/web/login/oidctest"
)

// webBudget bounds the browser part of TestWebApp (the binary is built before it starts).
const webBudget = 75 * time.Second

const webConfig = `listen: "%LISTEN%"
hooks_listen: "127.0.0.1:0"
data_dir: %DATA%
watch_config: false
auth:
  methods: [keys, internal, jwt]
  internal:
    users:
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
  title: Test streams
  login:
    issuer: %ISSUER%
    client_id: gatehouse
    client_secret: ${WEB_CLIENT_SECRET}
    redirect_url: http://%LISTEN%/login/callback
    roles:
      viewer: [{action: read, path: "private/*"}]
      admin: [{action: api}]
`

const webClientSecret = "e2e-client-secret-0123456789abcdef"

// freeAddr returns a loopback address that was free a moment ago: the provider must know
// gatehouse's redirect URL before gatehouse starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("GATEHOUSE_ALLOW_SKIP") == "1" {
		t.Skip("chromium is not installed")
	}
	t.Fatal("chromium is not installed (apt-get install -y chromium)")
	return ""
}

// page is one tab.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string
}

func (p *page) eval(js string, out any) {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[json.RawMessage](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, js, err)
	}
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			p.t.Fatalf("%s: %s: %v (%s)", p.name, js, err, v)
		}
	}
}

// await polls the JavaScript condition until it is true.
func (p *page) await(what, cond string, limit time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var ok bool
		v, err := chromedp.Run(p.ctx, chromedp.Evaluate[json.RawMessage]("!!("+cond+")"))
		if err == nil && json.Unmarshal(v, &ok) == nil && ok {
			return
		}
		if time.Now().After(deadline) || p.ctx.Err() != nil {
			var state string
			p.eval(`JSON.stringify({url: location.href, state: document.body && document.body.dataset.state, g: window.gatehouse && {state: gatehouse.state, error: gatehouse.error, streams: gatehouse.streams, frames: gatehouse.framesDecoded}, text: document.body ? document.body.innerText.slice(0, 400) : ""})`, &state)
			p.t.Fatalf("%s: waited %v for %s: %s", p.name, limit, what, state)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (p *page) open(url string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("%s: navigate %s: %v", p.name, url, err)
	}
}

// shot saves a screenshot: under docs/screenshots with GATEHOUSE_SCREENSHOTS=1, else in a
// temporary directory (the test still renders it).
func (p *page) shot(name string) {
	p.t.Helper()
	time.Sleep(300 * time.Millisecond) // let the last frame paint
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := p.t.TempDir()
	if os.Getenv("GATEHOUSE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func newPage(t *testing.T, parent context.Context, name string, opts ...chromedp.ContextOption) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &page{t: t, ctx: ctx, name: name}
}

// loginAs logs a fresh browser context in through the provider's form and returns its tab.
func loginAs(t *testing.T, bctx context.Context, base, user, pass string) *page {
	t.Helper()
	p := newPage(t, bctx, user, chromedp.WithNewBrowserContext())
	p.open(base + "/login?next=/")
	p.await("the provider's login form", `document.querySelector("#username")`, 10*time.Second)
	p.eval(fmt.Sprintf(`(() => { document.querySelector("#username").value = %q; document.querySelector("#password").value = %q;
		document.querySelector("form").submit(); return true })()`, user, pass), nil)
	p.await("the grid as "+user, `location.pathname === "/" && document.body.dataset.user === `+fmt.Sprintf("%q", user), 10*time.Second)
	return p
}

func TestWebApp(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t) // no browser: fail (or skip) before starting anything
	listen := freeAddr(t)
	base := "http://" + listen
	op := oidctest.Start(t, "stream", []oidctest.Client{{ID: "gatehouse", Secret: webClientSecret,
		RedirectURL: base + "/login/callback", PostLogoutURL: base + "/"}},
		oidctest.User{ID: "u-alice", Username: "alice", Password: "alice-pw", RealmRoles: []string{"viewer"},
			ClientRoles: map[string][]string{"gatehouse": {"admin"}}},
		oidctest.User{ID: "u-bob", Username: "bob", Password: "bob-pw"},
	)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	iss, err := tokens.LoadIssuer(filepath.Join(data, "keys")) // the key the binary will load
	if err != nil {
		t.Fatal(err)
	}
	mint := func(allow string) string {
		p, err := tokens.ParseAllow(allow)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := iss.Issue("camera", []authz.Permission{p}, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	cfg := strings.NewReplacer("%LISTEN%", listen, "%DATA%", data, "%ISSUER%", op.Issuer).Replace(webConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gh := startBinary(t, cfgPath, "WEB_CLIENT_SECRET="+webClientSecret)
	t.Cleanup(func() {
		logs := gh.logs()
		for _, secret := range []string{webClientSecret, "alice-pw", "eyJ", "gatehouse-session="} {
			if strings.Contains(logs, secret) {
				t.Errorf("the gatehouse log holds %q", secret)
			}
		}
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", logs)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), webBudget)
	defer cancel()
	bctx, stopBrowser := headlessChromium(t, ctx, filepath.Join(dir, "profile"))
	defer stopBrowser()

	// An anonymous visitor with the grid open before anything is live.
	anon := newPage(t, bctx, "anonymous", chromedp.WithNewBrowserContext())
	anon.open(base + "/")
	anon.await("the empty state", `!document.getElementById("empty").hidden`, 10*time.Second)
	var csp string
	anon.eval(`document.querySelector("h2").textContent`, &csp)
	if csp != "No one is live right now" {
		t.Errorf("empty state: got %q", csp)
	}
	anon.shot("grid-empty")

	// Two cameras go live: one public, one private.
	pubTab := newPage(t, bctx, "publish-public")
	pubTab.open(base + "/publish/public/lobby#token=" + mint("publish:public/lobby"))
	privTab := newPage(t, bctx, "publish-private")
	privTab.open(base + "/publish/private/cam#token=" + mint("publish:private/cam"))
	pubTab.await("the public camera publishing", `document.body.dataset.state === "publishing"`, 20*time.Second)
	privTab.await("the private camera publishing", `document.body.dataset.state === "publishing"`, 20*time.Second)

	t.Run("a stream going live appears in an open grid, anonymous sees only public", func(t *testing.T) {
		anon.t = t
		anon.await("public/lobby in the grid, decoding", `(gatehouse.players["public/lobby"] || {}).framesDecoded > 0`, 20*time.Second)
		var streams []string
		anon.eval(`gatehouse.streams`, &streams)
		if strings.Join(streams, ",") != "public/lobby" {
			t.Errorf("anonymous grid: got %v, want only public/lobby", streams)
		}
	})

	alice := loginAs(t, bctx, base, "alice", "alice-pw")
	t.Run("login shows the private stream and it decodes", func(t *testing.T) {
		alice.t = t
		alice.await("both streams decoding", `(gatehouse.players["private/cam"] || {}).framesDecoded > 0 && (gatehouse.players["public/lobby"] || {}).framesDecoded > 0`, 20*time.Second)
		var cookieVisible bool
		alice.eval(`document.cookie.includes("gatehouse")`, &cookieVisible)
		if cookieVisible {
			t.Errorf("the session cookie is readable by page JavaScript")
		}
		alice.shot("grid")
	})

	t.Run("watch page", func(t *testing.T) {
		w := newPage(t, alice.ctx, "alice-watch")
		w.open(base + "/watch/private/cam")
		w.await("the watch page playing", `gatehouse.state === "playing" && gatehouse.framesDecoded > 0`, 20*time.Second)
		w.shot("watch")
	})

	t.Run("a user without the role sees nothing private and WHEP refuses", func(t *testing.T) {
		bob := loginAs(t, bctx, base, "bob", "bob-pw")
		bob.await("public/lobby in bob's grid", `(gatehouse.players["public/lobby"] || {}).framesDecoded > 0`, 20*time.Second)
		var streams []string
		bob.eval(`gatehouse.streams`, &streams)
		if strings.Join(streams, ",") != "public/lobby" {
			t.Errorf("bob's grid: got %v, want only public/lobby", streams)
		}
		bob.open(base + "/watch/private/cam")
		bob.await("the watch page refusing", `gatehouse.state === "denied"`, 15*time.Second)
		var errText string
		bob.eval(`gatehouse.error`, &errText)
		if !strings.HasPrefix(errText, "403 ") && !strings.HasPrefix(errText, "401 ") {
			t.Errorf("bob's WHEP answer: got %q, want 401 or 403", errText)
		}
		bob.shot("watch-denied")
	})

	var secret string
	t.Run("manage creates a key that publishes over WHIP; rotation refuses it; forged POST refused", func(t *testing.T) {
		m := newPage(t, alice.ctx, "alice-manage")
		m.open(base + "/manage")
		m.await("the keys table filled by manage.js", `!document.getElementById("keys-table").textContent.includes("Loading")`, 10*time.Second)
		m.eval(`(() => { const f = document.getElementById("create-key"); f.path.value = "live/alice"; f.label.value = "Alice's <b>OBS</b>";
			f.requestSubmit(); return true })()`, nil)
		m.await("the new key's secret", `document.getElementById("secret").dataset.secret`, 10*time.Second)
		m.eval(`document.getElementById("secret").dataset.secret`, &secret)
		m.shot("manage")
		m.await("the key listed", `document.querySelector("#keys-table tr[data-key]")`, 10*time.Second)
		var label string
		m.eval(`document.querySelector("#keys-table tr[data-key] td").innerHTML`, &label)
		if !strings.Contains(label, "&lt;b&gt;") {
			t.Errorf("key label not escaped: %q", label)
		}
		// The key publishes over WHIP (the publish page stands in for OBS) and goes live as live/alice.
		keyTab := newPage(t, bctx, "publish-key")
		keyTab.open(base + "/publish/live/" + secret)
		keyTab.eval(`document.getElementById("form").requestSubmit(); true`, nil) // no token: the key is the path
		keyTab.await("publishing with the key", `document.body.dataset.state === "publishing"`, 20*time.Second)
		alice.await("live/alice in the grid", `gatehouse.streams.includes("live/alice")`, 15*time.Second)
		m.open(base + "/manage")
		m.await("live/alice in the live table", `document.querySelector("#live-table") && document.querySelector("#live-table").innerText.includes("live/alice")`, 15*time.Second)

		// Rotation ends the running publisher (the store's revocation feed reaches the SFU through
		// the revoker) and the old key no longer admits a new one.
		// The reloaded page fills its keys table on its own: wait for the button before clicking.
		m.await("the rotate button", `document.querySelector('#keys-table button[data-action="rotate"]')`, 10*time.Second)
		m.eval(`document.querySelector('#keys-table button[data-action="rotate"]').click(); true`, nil)
		m.await("the rotated key's secret", `document.getElementById("secret").dataset.secret !== `+fmt.Sprintf("%q", secret), 10*time.Second)
		keyTab.await("the running publisher ended by the rotation", `document.body.dataset.state !== "publishing"`, 20*time.Second)
		again := newPage(t, bctx, "publish-old-key")
		again.open(base + "/publish/live/" + secret)
		again.eval(`document.getElementById("form").requestSubmit(); true`, nil)
		again.await("the old key refused", `document.body.dataset.state === "error"`, 15*time.Second)

		// A forged cross-site POST from another origin (the provider's page): same site for the
		// Lax cookie (both are 127.0.0.1), refused by the CSRF token and Origin check.
		evil := newPage(t, alice.ctx, "evil")
		evil.open(op.Issuer + "/.well-known/openid-configuration")
		evil.eval(fmt.Sprintf(`(() => { const f = document.createElement("form"); f.method = "POST"; f.action = %q;
			f.enctype = "text/plain"; const i = document.createElement("input"); i.name = '{"path":"live/evil","x":"'; i.value = '"}';
			f.append(i); document.body.append(f); f.submit(); return true })()`, base+"/manage/api/keys"), nil)
		evil.await("the refusal", `location.href.startsWith(`+fmt.Sprintf("%q", base)+`) && document.body.innerText.includes("cross-site request refused")`, 10*time.Second)
		var keys string
		m.eval(`fetch("/manage/api/keys").then(r => r.text())`, &keys)
		if strings.Contains(keys, "live/evil") {
			t.Errorf("the forged POST created a key: %s", keys)
		}
	})

	t.Run("logout stops playback on refresh", func(t *testing.T) {
		alice.eval(`document.querySelector('form[action="/logout"] button').click(); true`, nil)
		alice.await("back on the grid, logged out", `location.pathname === "/" && document.body.dataset.user === "" && document.readyState === "complete"`, 15*time.Second)
		if op.EndSessions() == 0 {
			t.Errorf("logout did not end the provider session")
		}
		alice.open(base + "/")
		alice.await("the public stream again", `(gatehouse.players["public/lobby"] || {}).framesDecoded > 0`, 20*time.Second)
		var streams []string
		alice.eval(`gatehouse.streams`, &streams)
		if strings.Contains(strings.Join(streams, ","), "private/") {
			t.Errorf("after logout the grid shows %v", streams)
		}
	})

	t.Run("the player says at once when the stream ends", func(t *testing.T) {
		w := newPage(t, bctx, "anon-watch", chromedp.WithNewBrowserContext())
		w.open(base + "/watch/public/lobby")
		w.await("the watch page playing", `gatehouse.state === "playing" && gatehouse.framesDecoded > 0`, 20*time.Second)
		pubTab.eval(`document.getElementById("stop").click(); true`, nil)
		// Before, the player said "playing" over a frozen frame for 16-18 s; the bound here is
		// generous and only catches that regression.
		w.await("the watch page saying the stream ended", `gatehouse.state === "ended"`, 6*time.Second)
		anon.await("the card gone from the open grid", `!gatehouse.streams.includes("public/lobby")`, 6*time.Second)
		w.shot("watch-ended")
	})

	t.Run("login error page", func(t *testing.T) {
		p := newPage(t, bctx, "login-error")
		p.open(base + "/login/callback?code=forged&state=forged")
		p.await("the error page", `document.querySelector("main.message")`, 10*time.Second)
		p.shot("login-error")
	})
	if ctx.Err() != nil {
		t.Fatalf("browser budget of %v exceeded", webBudget)
	}
}
