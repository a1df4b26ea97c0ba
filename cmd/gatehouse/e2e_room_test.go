package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"gatehouse/web/login/oidctest"
)

// roomBudget bounds the browser part of TestRoom (the binary is built before it starts).
const roomBudget = 100 * time.Second

// roomConfig is the README's "Rooms" configuration: speakers publish their own camera in any
// room and watch the others; listeners only watch.
const roomConfig = `listen: "%LISTEN%"
hooks_listen: "127.0.0.1:0"
data_dir: %DATA%
watch_config: false
auth:
  methods: [jwt]
  jwt: {}
sfu:
  udp_port: 0
  include_loopback: true
  allow_private_candidates: true
web:
  title: Test rooms
  login:
    issuer: %ISSUER%
    client_id: gatehouse
    client_secret: ${WEB_CLIENT_SECRET}
    redirect_url: http://%LISTEN%/login/callback
    # The test provider's user names are realm user names (unique, immutable): participants are
    # "alice", not "alice-<hash>".
    unique_usernames: true
    roles:
      # Speakers: publish their own camera in any room (gatehouse mints a token for
      # room/<name>/<their login name> only) and watch everyone in it.
      speaker: [{action: publish, path: "room/**"}, {action: read, path: "room/**"}]
      # Listeners: watch every room, never publish.
      listener: [{action: read, path: "room/**"}]
`

// whipFrom is page JavaScript that offers a camera-less WHIP session on path with token and
// returns the HTTP status.
func whipFrom(path, token string) string {
	return fmt.Sprintf(`(async () => {
		const pc = new RTCPeerConnection();
		pc.addTransceiver("video", {direction: "sendonly"});
		await pc.setLocalDescription(await pc.createOffer());
		const res = await fetch("/whip/" + %q, {method: "POST", headers: {"Content-Type": "application/sdp", Authorization: "Bearer " + (%s)}, body: pc.localDescription.sdp});
		pc.close();
		if (res.status === 201) await fetch(res.headers.get("Location"), {method: "DELETE", headers: {Authorization: "Bearer " + (%s)}});
		return res.status;
	})()`, path, token, token)
}

// joinToken is page JavaScript returning the answer of POST /room/{name}/join.
func joinToken(room string) string {
	return fmt.Sprintf(`fetch("/room/%s/join", {method: "POST", headers: {"X-CSRF-Token": document.body.dataset.csrf}}).then(r => r.json())`, room)
}

func TestRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t) // no browser: fail (or skip) before starting anything
	listen := freeAddr(t)
	base := "http://" + listen
	op := oidctest.Start(t, "stream", []oidctest.Client{{ID: "gatehouse", Secret: webClientSecret,
		RedirectURL: base + "/login/callback", PostLogoutURL: base + "/"}},
		oidctest.User{ID: "u-alice", Username: "alice", Password: "alice-pw", RealmRoles: []string{"speaker"}},
		oidctest.User{ID: "u-carol", Username: "carol", Password: "carol-pw", RealmRoles: []string{"speaker"}},
		oidctest.User{ID: "u-bob", Username: "bob", Password: "bob-pw", RealmRoles: []string{"listener"}},
	)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	cfg := strings.NewReplacer("%LISTEN%", listen, "%DATA%", filepath.Join(dir, "data"), "%ISSUER%", op.Issuer).Replace(roomConfig)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gh := startBinary(t, cfgPath, "WEB_CLIENT_SECRET="+webClientSecret)
	t.Cleanup(func() {
		logs := gh.logs()
		for _, secret := range []string{webClientSecret, "alice-pw", "eyJ"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the gatehouse log holds %q", secret)
			}
		}
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", logs)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), roomBudget)
	defer cancel()
	bctx, stopBrowser := headlessChromium(t, ctx, filepath.Join(dir, "profile"))
	defer stopBrowser()
	const room = "/room/standup"

	alice := loginAs(t, bctx, base, "alice", "alice-pw")
	alice.open(base + room)
	alice.await("the join button", `gatehouse.room.mode === "ready" && !document.getElementById("join-bar").hidden`, 10*time.Second)
	alice.eval(`document.getElementById("join").click(); true`, nil)
	alice.await("alice publishing", `gatehouse.room.publishing`, 20*time.Second)
	alice.await("the empty state", `!document.getElementById("room-empty").hidden`, 5*time.Second)
	var participant string
	alice.eval(`gatehouse.room.path`, &participant)
	if participant != "room/standup/alice" {
		t.Errorf("alice's path: got %q, want room/standup/alice", participant)
	}

	carol := loginAs(t, bctx, base, "carol", "carol-pw")
	carol.open(base + room)
	carol.await("the join button", `gatehouse.room.mode === "ready"`, 10*time.Second)
	carol.eval(`document.getElementById("join").click(); true`, nil)
	carol.await("carol publishing", `gatehouse.room.publishing`, 20*time.Second)

	t.Run("two speakers see each other", func(t *testing.T) {
		alice.t, carol.t = t, t
		alice.await("carol's video decoding at alice", `(gatehouse.players["room/standup/carol"] || {}).framesDecoded > 0`, 25*time.Second)
		carol.await("alice's video decoding at carol", `(gatehouse.players["room/standup/alice"] || {}).framesDecoded > 0`, 25*time.Second)
		var tiles []string
		alice.eval(`gatehouse.room.tiles`, &tiles)
		if strings.Join(tiles, ",") != "room/standup/carol" {
			t.Errorf("alice's tiles: got %v, want only carol's (her own is a local preview)", tiles)
		}
		// Mute shows on one's own tile and the button says what it does next.
		carol.eval(`document.getElementById("mic").click(); true`, nil)
		carol.await("carol muted", `gatehouse.room.micMuted && document.getElementById("mic").getAttribute("aria-pressed") === "true" && !document.querySelector(".tile.own .tile-muted").hidden`, 5*time.Second)
		alice.shot("room")
	})

	// A listener: getUserMedia is counted from before the page's own scripts run.
	bob := newPage(t, bctx, "bob", chromedp.WithNewBrowserContext())
	gum := `window.__gum = 0; if (navigator.mediaDevices) { const g = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
		navigator.mediaDevices.getUserMedia = c => { window.__gum++; return g(c); }; }`
	if err := chromedp.Do(bob.ctx, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: gum})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatal(err)
	}
	bob.open(base + "/login?next=/")
	bob.await("the provider's login form", `document.querySelector("#username")`, 10*time.Second)
	bob.eval(`(() => { document.querySelector("#username").value = "bob"; document.querySelector("#password").value = "bob-pw";
		document.querySelector("form").submit(); return true })()`, nil)
	bob.await("the grid as bob", `location.pathname === "/" && document.body.dataset.user === "bob"`, 10*time.Second)
	bob.await("the grid's link into the room", `document.querySelector('a.room-link[href="/room/standup"]')`, 15*time.Second)
	bob.open(base + room)

	t.Run("a listener watches everyone, is never asked for a camera and cannot publish", func(t *testing.T) {
		bob.t = t
		bob.await("both speakers decoding at bob", `(gatehouse.players["room/standup/alice"] || {}).framesDecoded > 0 && (gatehouse.players["room/standup/carol"] || {}).framesDecoded > 0`, 25*time.Second)
		var got struct {
			Mode     string `json:"mode"`
			Gum      int    `json:"gum"`
			JoinBar  bool   `json:"joinBar"`
			Controls bool   `json:"controls"`
			Notice   string `json:"notice"`
		}
		bob.eval(`({mode: gatehouse.room.mode, gum: window.__gum, joinBar: !document.getElementById("join-bar").hidden,
			controls: !document.getElementById("room-controls").hidden, notice: document.getElementById("room-notice").textContent})`, &got)
		if got.Mode != "watching" || got.Gum != 0 || got.JoinBar || got.Controls || !strings.Contains(got.Notice, "You're watching") {
			t.Errorf("bob's room: %+v, want watching, no getUserMedia, no join bar or controls", got)
		}
		var join struct {
			Publish bool   `json:"publish"`
			Token   string `json:"token"`
		}
		bob.eval(joinToken("standup"), &join)
		if join.Publish || join.Token != "" {
			t.Errorf("bob's join: %+v, want no publish token", join)
		}
		var status int
		bob.eval(whipFrom("room/standup/bob", `await Token.get()`), &status)
		if status != 403 {
			t.Errorf("bob's WHIP with his viewer token: got %d, want 403", status)
		}
		bob.shot("room-watching")
	})

	t.Run("a speaker's token publishes on their own path only", func(t *testing.T) {
		alice.t = t
		tok := `(await (` + joinToken("standup") + `)).token`
		for _, path := range []string{"room/standup/carol", "room/standup/bob", "room/other/alice", "live/alice"} {
			var status int
			alice.eval(whipFrom(path, tok), &status)
			if status != 403 {
				t.Errorf("alice's room token on %s: got %d, want 403", path, status)
			}
		}
	})

	t.Run("phone size", func(t *testing.T) {
		carol.t = t
		if err := chromedp.Do(carol.ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
			t.Fatal(err)
		}
		carol.await("alice still decoding", `(gatehouse.players["room/standup/alice"] || {}).framesDecoded > 0`, 10*time.Second)
		carol.shot("room-phone")
	})

	t.Run("leaving removes the tile for the others", func(t *testing.T) {
		alice.t, carol.t, bob.t = t, t, t
		alice.eval(`document.getElementById("leave").click(); true`, nil)
		alice.await("alice out", `gatehouse.room.mode === "left" && !gatehouse.room.publishing`, 5*time.Second)
		carol.await("alice's tile gone at carol", `!gatehouse.room.tiles.includes("room/standup/alice") && !document.querySelector('.tile[data-path="room/standup/alice"]')`, 6*time.Second)
		bob.await("alice's tile gone at bob", `!gatehouse.room.tiles.includes("room/standup/alice")`, 6*time.Second)
		carol.await("carol's empty state", `!document.getElementById("room-empty").hidden`, 3*time.Second)
	})
	if ctx.Err() != nil {
		t.Fatalf("browser budget of %v exceeded", roomBudget)
	}
}
