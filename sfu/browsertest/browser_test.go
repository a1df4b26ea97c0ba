package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gatehouse/authz/logtest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
	"gatehouse/backends/jwks"
	"gatehouse/sfu"
)

// testBudget bounds the whole test, Chromium start-up included.
const testBudget = 55 * time.Second

// Identity provider of the viewer's token (a stand-in for Keycloak: HS256, realm roles).
const (
	idpIssuer = "https://idp.test/realms/demo"
	idpSecret = "browsertest-hmac-secret-of-at-least-32-bytes"
)

// chromiumPath returns the Chromium binary, installing Debian's package when it is missing and
// the test runs as root. Without Chromium the test fails unless GATEHOUSE_ALLOW_SKIP=1.
func chromiumPath(t *testing.T) string {
	t.Helper()
	find := func() string {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		if _, err := os.Stat("/usr/bin/chromium"); err == nil {
			return "/usr/bin/chromium"
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	var why string
	if os.Geteuid() == 0 {
		if out, err := aptInstall("chromium"); err != nil {
			why = fmt.Sprintf("apt-get install chromium failed: %v\n%s", err, out)
		} else if p := find(); p != "" {
			return p
		} else {
			why = "chromium still missing after apt-get install"
		}
	} else {
		why = "chromium is not installed and the test is not root (run: apt-get install -y chromium)"
	}
	if os.Getenv("GATEHOUSE_ALLOW_SKIP") == "1" {
		t.Skip(why)
	}
	t.Fatal(why)
	return ""
}

// aptInstall installs a Debian package, refreshing the package lists once if the first try fails.
func aptInstall(pkg string) ([]byte, error) {
	run := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if out, err := run("install", "-y", "--no-install-recommends", pkg); err == nil {
		return out, nil
	}
	if out, err := run("update"); err != nil {
		return out, err
	}
	return run("install", "-y", "--no-install-recommends", pkg)
}

// idpToken signs a viewer token the way an OIDC provider would: HS256, iss, sub, exp and realm
// roles, no gatehouse-specific claim.
func idpToken(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss":          idpIssuer,
		"sub":          sub,
		"iat":          now.Unix(),
		"exp":          now.Add(10 * time.Minute).Unix(),
		"realm_access": map[string]any{"roles": roles},
	}).SignedString([]byte(idpSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustAllow(t *testing.T, s string) authz.Permission {
	t.Helper()
	p, err := tokens.ParseAllow(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fixture is one SFU on an httptest server, authorising through a real authz engine with the
// jwks backend.
type fixture struct {
	sfu    *sfu.SFU
	srv    *httptest.Server
	iss    *tokens.Issuer
	logBuf *syncBuffer
}

type syncBuffer = logtest.Buffer

func newFixture(t *testing.T) *fixture {
	t.Helper()
	iss, err := tokens.LoadIssuer(filepath.Join(t.TempDir(), "issuer"))
	if err != nil {
		t.Fatalf("LoadIssuer: %v", err)
	}
	viewerPerms := []authz.Permission{mustAllow(t, "read:live/cam")}
	backend, err := jwks.New(jwks.Config{Providers: []jwks.Provider{{
		Name:       "idp",
		Issuer:     idpIssuer,
		HMACSecret: idpSecret,
		Roles:      map[string][]authz.Permission{"viewer": viewerPerms},
	}}}, jwks.WithIssuer(iss))
	if err != nil {
		t.Fatalf("jwks.New: %v", err)
	}
	t.Cleanup(func() { _ = backend.Close() })
	logBuf := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	engine := authz.NewEngine(authz.NewChain(authz.Method{Name: "jwt", Backend: backend}), log)

	cfg := sfu.DefaultConfig()
	cfg.UDPPort = 0
	cfg.IncludeLoopback = true
	cfg.AllowPrivateCandidates = true // the browser runs on this host
	s, err := sfu.New(cfg, engine, nil, log)
	if err != nil {
		t.Fatalf("sfu.New: %v", err)
	}
	// /blank is an empty same-origin page for tests that drive WebRTC from their own script.
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	mux.HandleFunc("GET /blank", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><html><head><title>blank</title></head><body></body></html>")
	})
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = s.Run(ctx) }()
	f := &fixture{sfu: s, srv: srv, iss: iss, logBuf: logBuf}
	t.Cleanup(func() {
		srv.Close()
		_ = s.Close()
		cancel()
		<-runDone
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", logBuf.String())
		}
	})
	return f
}

// browser starts headless Chromium with a fake camera and microphone and WebRTC allowed on
// loopback with real (not mDNS) host candidates. Cleanup kills it and checks that no process
// started with its profile directory survives.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	path := chromiumPath(t)
	profile := filepath.Join(t.TempDir(), "chromium-profile")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("password-store", "basic"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(bctx)
		cancelBrowser()
		cancelAlloc()
		if left := waitGone(profile, 5*time.Second); len(left) > 0 {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("Chromium processes %v outlived the test (killed)", left)
		}
	})
	if err := chromedp.Do(bctx); err != nil { // the first run starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// waitGone waits until no process has profile as its --user-data-dir and returns the pids left.
func waitGone(profile string, limit time.Duration) []int {
	want := []byte("--user-data-dir=" + profile)
	deadline := time.Now().Add(limit)
	for {
		var left []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil {
				continue
			}
			for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
				if bytes.Equal(arg, want) {
					left = append(left, pid)
					break
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tab opens url in a new tab and collects the page's console output and exceptions.
type tab struct {
	ctx  context.Context
	name string
	mu   sync.Mutex
	logs []string
}

func openTab(t *testing.T, bctx context.Context, name, url string) *tab {
	t.Helper()
	tb := &tab{name: name}
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithListener(func(ev any) {
		var line string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value))
			}
			line = string(ev.Type) + ": " + strings.Join(parts, " ")
		case *runtime.EventExceptionThrown:
			line = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				line += " " + ev.ExceptionDetails.Exception.Description
			}
		default:
			return
		}
		tb.mu.Lock()
		tb.logs = append(tb.logs, line)
		tb.mu.Unlock()
	}))
	tb.ctx = ctx
	_, token, _ := strings.Cut(url, "#token=")
	t.Cleanup(func() {
		tb.mu.Lock()
		for _, l := range tb.logs {
			if token != "" && strings.Contains(l, token) {
				t.Errorf("%s: the console shows the token: %s", name, l)
			}
		}
		tb.mu.Unlock()
		if t.Failed() {
			tb.mu.Lock()
			t.Logf("%s console:\n%s", name, strings.Join(tb.logs, "\n"))
			tb.mu.Unlock()
		}
		cancel()
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: navigate: %v", name, err)
	}
	return tb
}

// pageState is what the pages expose in window.gatehouse.
type pageState struct {
	State         string `json:"state"`
	Error         string `json:"error"`
	Session       string `json:"session"`
	FramesDecoded int    `json:"framesDecoded"`
}

func (tb *tab) state(t *testing.T) pageState {
	t.Helper()
	st, err := chromedp.Run(tb.ctx, chromedp.Evaluate[pageState](`({state: window.gatehouse.state, error: window.gatehouse.error,
		session: window.gatehouse.session || "", framesDecoded: window.gatehouse.framesDecoded || 0})`))
	if err != nil {
		t.Fatalf("%s: read state: %v", tb.name, err)
	}
	return st
}

// await polls the page state until cond holds, failing after limit (or the test budget).
func (tb *tab) await(t *testing.T, limit time.Duration, what string, cond func(pageState) bool) pageState {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := tb.state(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) || tb.ctx.Err() != nil {
			t.Fatalf("%s: timed out after %v waiting for %s; last state %+v", tb.name, limit, what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// videoFrames returns the frames the watch page's <video> element has received, a second view
// of the decoded stream besides the page's getStats counter.
func (tb *tab) videoFrames(t *testing.T) int {
	t.Helper()
	n, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](`(() => {
		const v = document.getElementById("video");
		if (!v || !v.getVideoPlaybackQuality) return 0;
		return v.getVideoPlaybackQuality().totalVideoFrames;
	})()`))
	if err != nil {
		t.Fatalf("%s: video frames: %v", tb.name, err)
	}
	return n
}

// TestChromiumPublishAndWatch publishes Chromium's fake camera over WHIP with a gatehouse token
// and plays it in a second tab over WHEP with an identity-provider JWT; frames must be decoded.
// Viewers whose token is forged or lacks the path get an error page and no media.
func TestChromiumPublishAndWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testBudget)
	defer cancel()
	f := newFixture(t)
	bctx := browser(t, ctx)

	pubTok, err := f.iss.Issue("camera-owner", []authz.Permission{mustAllow(t, "publish:live/cam")}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	viewTok := idpToken(t, "alice", "viewer")

	pub := openTab(t, bctx, "publish", f.srv.URL+"/publish/live/cam#token="+pubTok)
	pub.await(t, 20*time.Second, "the publish page to publish", func(s pageState) bool {
		if s.State == "error" {
			t.Fatalf("publish page error: %s", s.Error)
		}
		return s.State == "publishing"
	})

	watch := openTab(t, bctx, "watch", f.srv.URL+"/watch/live/cam#token="+viewTok)
	st := watch.await(t, 30*time.Second, "decoded video frames (getStats framesDecoded > 0)", func(s pageState) bool {
		if s.State == "error" {
			t.Fatalf("watch page error: %s", s.Error)
		}
		return s.FramesDecoded > 0
	})
	if st.Session == "" {
		t.Errorf("watch page session: got none, want the WHEP Location")
	}
	if got := watch.videoFrames(t); got == 0 {
		t.Errorf("<video> frames: got 0, want > 0 once framesDecoded is %d", st.FramesDecoded)
	} else {
		t.Logf("watch page: framesDecoded %d, <video> frames %d", st.FramesDecoded, got)
	}

	var kinds []string
	for _, s := range f.sfu.Sessions() {
		kinds = append(kinds, fmt.Sprintf("%s %s %s", s.Kind, s.Path, s.Identity))
	}
	for _, want := range []string{"publish live/cam camera-owner", "read live/cam alice"} {
		if !containsString(kinds, want) {
			t.Errorf("sessions: got %q, want one %q", kinds, want)
		}
	}

	t.Run("refused viewers", func(t *testing.T) {
		other, err := tokens.LoadIssuer(filepath.Join(t.TempDir(), "other-issuer"))
		if err != nil {
			t.Fatal(err)
		}
		forged, err := other.Issue("mallory", []authz.Permission{mustAllow(t, "read:live/cam")}, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, token, wantStatus string
		}{
			{"token from an unknown key", forged, "401"},
			{"wrong secret", idpTokenWithSecret(t, "bob", "viewer"), "401"},
			{"role without this path", idpToken(t, "carol", "guest"), "403"},
			{"publish token used to read", pubTok, "403"},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tb := openTab(t, bctx, fmt.Sprintf("refused-%d", i), f.srv.URL+"/watch/live/cam#token="+tt.token)
				st := tb.await(t, 15*time.Second, "the watch page to report an error", func(s pageState) bool {
					return s.State == "error" || s.FramesDecoded > 0
				})
				if !strings.HasPrefix(st.Error, tt.wantStatus+" ") {
					t.Errorf("page error: got %q, want status %s", st.Error, tt.wantStatus)
				}
				if st.FramesDecoded != 0 || st.Session != "" {
					t.Errorf("refused viewer: got %d frames and session %q, want none", st.FramesDecoded, st.Session)
				}
			})
		}
		for _, s := range f.sfu.Sessions() {
			if s.Kind == sfu.KindRead && s.Identity != "alice" {
				t.Errorf("a refused viewer has a session: %+v", s)
			}
		}
	})

	// %C3%28 is a valid URL escape but not UTF-8: decodeURIComponent throws. The pages must still
	// run and report the server's refusal of the path instead of dying silently.
	t.Run("undecodable path", func(t *testing.T) {
		for _, page := range []string{"watch", "publish"} {
			tb := openTab(t, bctx, "undecodable-"+page, f.srv.URL+"/"+page+"/live/%C3%28#token="+viewTok)
			st := tb.await(t, 15*time.Second, "the "+page+" page to report an error", func(s pageState) bool {
				return s.State == "error"
			})
			if !strings.HasPrefix(st.Error, "400 ") {
				t.Errorf("%s page error: got %q, want status 400", page, st.Error)
			}
		}
	})
	// The server ends the viewer's session (a kick; a revoked token ends it the same way): the
	// watch page learns it from DTLS within seconds, not from ICE's timeout, and reconnects.
	t.Run("server ends the viewer", func(t *testing.T) {
		before := watch.await(t, 5*time.Second, "the watch page to play", func(s pageState) bool { return s.State == "playing" })
		var id string
		for _, s := range f.sfu.Sessions() {
			if s.Kind == sfu.KindRead && s.Identity == "alice" {
				id = s.ID
			}
		}
		if err := f.sfu.Kick(id); err != nil {
			t.Fatalf("Kick: %v", err)
		}
		kicked := time.Now()
		st := watch.await(t, 5*time.Second, "the watch page to leave playing", func(s pageState) bool {
			return s.State != "playing" || s.Session != before.Session
		})
		t.Logf("watch page %q, session changed %v, %v after the kick", st.State, st.Session != before.Session, time.Since(kicked).Round(time.Millisecond))
	})
	// The server ends the publisher's session (a kick; a revocation ends it the same way): the
	// page learns it from the server within seconds (DTLS close_notify, then the SFU's silence
	// to ICE consent checks) and says so, instead of publishing into a closed session.
	t.Run("server ends the publisher", func(t *testing.T) {
		var id string
		for _, s := range f.sfu.Sessions() {
			if s.Kind == sfu.KindPublish {
				id = s.ID
			}
		}
		if err := f.sfu.Kick(id); err != nil {
			t.Fatalf("Kick: %v", err)
		}
		kicked := time.Now()
		st := pub.await(t, 5*time.Second, "the publish page to leave publishing", func(s pageState) bool {
			return s.State != "publishing"
		})
		t.Logf("publish page %q (%s) %v after the kick", st.State, st.Error, time.Since(kicked).Round(time.Millisecond))
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("test budget of %v exceeded", testBudget)
	}
}

// idpTokenWithSecret is idpToken signed with the wrong secret.
func idpTokenWithSecret(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": idpIssuer, "sub": sub, "exp": time.Now().Add(time.Minute).Unix(),
		"realm_access": map[string]any{"roles": roles},
	}).SignedString([]byte("not-the-identity-providers-secret-at-all"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
