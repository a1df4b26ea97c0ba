package main

// Fault tests against the real binary. The whole fault suite runs with
// `go test -race -run Fault ./...`; its tests, by fault:
//
//	IdP down at start, then up, then down again   TestFaultIdPDownAtStart (this file)
//	IdP hanging (accepts TCP, never answers)       backends/jwks TestFaultIdPHanging
//	JWKS rotated (new kid in, old kid out)         backends/jwks TestFaultJWKSRotated
//	auth service down, slow, flapping              backends/httpauth TestFaultUpstream
//	auth service gone under the binary             TestEndToEndUpstream (e2e_upstream_test.go)
//	config replaced by a broken file               TestFaultBrokenConfigReload (e2e_reload_test.go)
//	reloads while the IdP is down                  TestEndToEndReloadKeepsJWKS (e2e_jwks_reload_test.go)
//	gatehouse restarted under live nginx-rtmp      TestFaultRestartUnderNginxRTMP (this file)
//	SFU viewer vanishing without DELETE            sfu TestFaultViewerVanishes
//	publisher packet loss 5 %                      sfu TestFaultPublisherLoss
//
// Further unit-level neighbours: backends/jwks TestJWKSDownFromStart, TestStaleIfError,
// TestHangingJWKS; backends/httpauth TestSlowUpstream, TestDownUpstream, TestFlapping;
// protocols/nginxrtmp TestRestartRelearnsSessions, TestUpdateKeepsSessionsWhenUndecided;
// sfu TestNACKServedFromSharedCache, TestKeyframeRequestsThrottled, TestUnconnectedSessionClosed.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse/protocols/nginxtest"
)

// rtmpModulePath finds Debian's libnginx-mod-rtmp (fails, or skips with GATEHOUSE_ALLOW_SKIP=1).
func rtmpModulePath(t *testing.T) string {
	t.Helper()
	for _, m := range []string{"/usr/lib/nginx/modules/ngx_rtmp_module.so", "/usr/share/nginx/modules/ngx_rtmp_module.so"} {
		if _, err := os.Stat(m); err == nil {
			if _, err := exec.LookPath("ffmpeg"); err == nil {
				return m
			}
		}
	}
	if os.Getenv("GATEHOUSE_ALLOW_SKIP") == "1" {
		t.Skip("nginx rtmp module or ffmpeg not installed (GATEHOUSE_ALLOW_SKIP=1)")
	}
	t.Fatal("nginx rtmp module or ffmpeg not installed: make deps, or set GATEHOUSE_ALLOW_SKIP=1")
	return ""
}

// ffmpegRun is a running ffmpeg; done is closed when it exits.
type ffmpegRun struct {
	done   chan struct{}
	err    error
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (f *ffmpegRun) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stderr.Write(b)
}

func (f *ffmpegRun) output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(nginxtest.Tail(f.stderr.Bytes(), 1500))
}

func (f *ffmpegRun) running() bool {
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

// startFFmpeg runs ffmpeg with args, killed after limit or at the end of the test.
func startFFmpeg(t *testing.T, limit time.Duration, args ...string) *ffmpegRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...)...)
	f := &ffmpegRun{done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ffmpeg: %v", err)
	}
	go func() { f.err = cmd.Wait(); cancel(); close(f.done) }()
	t.Cleanup(func() { cancel(); <-f.done })
	return f
}

// rtmpPublish streams a test pattern to url; rtmpPlay reads 10 video frames (nil: received).
func rtmpPublish(t *testing.T, url string) *ffmpegRun {
	return startFFmpeg(t, 90*time.Second,
		"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-c:a", "aac",
		"-f", "flv", url)
}

func rtmpPlay(t *testing.T, url string) error {
	t.Helper()
	f := startFFmpeg(t, 20*time.Second, "-i", url, "-frames:v", "10", "-f", "null", "-")
	<-f.done
	if f.err != nil {
		return fmt.Errorf("%w: %s", f.err, strings.TrimSpace(f.output()))
	}
	return nil
}

// TestFaultRestartUnderNginxRTMP: gatehouse is killed (SIGKILL) while nginx-rtmp carries a live,
// authorized publisher, and restarted on the same hooks address. What nginx-rtmp (Debian's
// libnginx-mod-rtmp) does, found by running it: an on_update that gets no HTTP answer
// (connection refused: "notify: empty or broken HTTP response", "notify: update failed") ends
// the session at once, as a refusal would. So a restart that completes between two on_update
// calls keeps the stream (the next on_update is decided again and puts it back in the registry);
// an outage that spans an on_update drops the publisher at that on_update, refuses new
// publishers and players (on_publish and on_play fail closed), and after the restart the
// publisher can publish again.
func TestFaultRestartUnderNginxRTMP(t *testing.T) {
	module := rtmpModulePath(t)
	dir := t.TempDir()
	hooks := freeAddr(t)
	cfg := filepath.Join(dir, "gatehouse.yml")
	src := `listen: "127.0.0.1:0"
hooks_listen: "` + hooks + `"
watch_config: false
data_dir: ` + filepath.Join(dir, "data") + `
auth:
  internal:
    users:
      - user: pub
        pass: pubpass
        permissions: [{action: publish, path: "live/*"}]
      - user: viewer
        pass: viewpass
        permissions: [{action: read, path: "live/*"}]
      - user: admin
        pass: adminpass
        permissions: [{action: api}]
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	top := t // gatehouse processes live as long as the whole test, not one subtest
	gh := startBinary(t, cfg)
	// notify_update_timeout: long enough for a restart of the binary (tens of milliseconds)
	// to fit between two on_update calls with a wide margin.
	const update = 3 * time.Second
	hook := "http://" + hooks + "/hooks/nginx-rtmp"
	n := nginxtest.Start(t, nginxtest.Binary(t), func(d string, port int) string {
		return fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
worker_processes 1;
error_log %s info;
pid %s;
events { worker_connections 128; }
rtmp {
    server {
        listen 127.0.0.1:%d;
        application live {
            live on;
            on_publish %[5]s;
            on_play %[5]s;
            on_update %[5]s;
            on_done %[5]s;
            notify_update_timeout %[6]s;
        }
    }
}
`, module, filepath.Join(d, "error.log"), filepath.Join(d, "nginx.pid"), port, hook, fmt.Sprintf("%ds", int(update/time.Second)))
	})
	base := "rtmp://" + n.Addr
	live := func(s streamsJSON) bool {
		for _, st := range s.Streams {
			if st.Path == "live/cam" {
				return true
			}
		}
		return false
	}
	const camDecision = "action=publish path=live/cam"
	// afterUpdate waits for the next decision on live/cam's publisher (on_publish or on_update).
	afterUpdate := func(p *proc) {
		t.Helper()
		waitLogFor(t, p, camDecision, strings.Count(p.logs(), camDecision), 2*update+10*time.Second)
	}
	kill := func(p *proc) {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}

	pub := rtmpPublish(t, base+"/live/cam?user=pub&pass=pubpass")
	waitStreams(t, gh.public, "live/cam published", live)
	if err := rtmpPlay(t, base+"/live/cam?user=viewer&pass=viewpass"); err != nil {
		t.Fatalf("player before the restart: %v", err)
	}

	t.Run("restart between two on_update calls keeps the stream", func(t *testing.T) {
		afterUpdate(gh) // an on_update was just answered: the next is about update away
		killed := time.Now()
		kill(gh)
		gh = startBinary(top, cfg)
		down := time.Since(killed)
		afterUpdate(gh) // the next on_update reaches the new process
		waitStreams(t, gh.public, "live/cam relearned after the restart", live)
		relearned := time.Since(killed)
		afterUpdate(gh)
		if !pub.running() {
			t.Fatalf("publisher dropped across a restart of %v (on_update every %v): %s", down, update, pub.output())
		}
		if err := rtmpPlay(t, base+"/live/cam?user=viewer&pass=viewpass"); err != nil {
			t.Fatalf("player after the restart: %v", err)
		}
		t.Logf("down %v; publisher kept; live/cam back in the registry %v after the kill", down.Round(time.Millisecond), relearned.Round(time.Millisecond))
	})

	t.Run("outage spanning an on_update drops the publisher; it republishes after the restart", func(t *testing.T) {
		afterUpdate(gh)
		killed := time.Now()
		kill(gh)
		select {
		case <-pub.done:
		case <-time.After(2*update + 10*time.Second):
			t.Fatalf("publisher still running %v after gatehouse was killed (on_update every %v)", time.Since(killed), update)
		}
		dropped := time.Since(killed)
		log, _ := os.ReadFile(n.ErrorLog())
		if !strings.Contains(string(log), "notify: update failed") {
			t.Errorf("nginx error.log has no \"notify: update failed\"")
		}
		if err := rtmpPlay(t, base+"/live/cam?user=viewer&pass=viewpass"); err == nil {
			t.Error("a player was served while gatehouse was down, want on_play to fail closed")
		}
		other := rtmpPublish(t, base+"/live/other?user=pub&pass=pubpass")
		select {
		case <-other.done:
		case <-time.After(15 * time.Second):
			t.Error("a new publisher was accepted while gatehouse was down, want on_publish to fail closed")
		}

		restarted := time.Now()
		gh = startBinary(top, cfg)
		pub = rtmpPublish(t, base+"/live/cam?user=pub&pass=pubpass")
		waitStreams(t, gh.public, "live/cam republished after the restart", live)
		back := time.Since(restarted)
		if err := rtmpPlay(t, base+"/live/cam?user=viewer&pass=viewpass"); err != nil {
			t.Fatalf("player after the republish: %v", err)
		}
		t.Logf("publisher dropped %v after the kill (on_update every %v); new publisher and player refused while down; republished and live %v after the restart",
			dropped.Round(time.Millisecond), update, back.Round(time.Millisecond))
	})
}

// waitLogFor waits up to limit until p's log holds more than n occurrences of substr.
func waitLogFor(t *testing.T, p *proc, substr string, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for strings.Count(p.logs(), substr) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q within %v", substr, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultIdPDownAtStart: gatehouse starts while the IdP answers 503. It starts anyway, is not
// ready, and denies JWT requests with jwks_unavailable (never allows). When the IdP comes up the
// keys arrive by the retry loop (backoff from 1 s) without a restart, and tokens are allowed; when
// the IdP goes down again after that, the last keys keep serving (stale-if-error), for tokens
// seen before and for new tokens of a known key.
func TestFaultIdPDownAtStart(t *testing.T) {
	idp := newFakeIdP(t)
	idp.down.Store(true)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yml")
	src := `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
watch_config: false
data_dir: ` + filepath.Join(dir, "data") + `
auth:
  methods: [jwt]
  jwt:
    providers:
      - name: idp
        jwks: ` + idp.URL + `
        issuer: https://idp.test
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, cfg)
	ready := func() int {
		resp, err := http.Get(p.public + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	read := func(tok string) (int, string) {
		status, r := postMediaMTX(t, p.hooks, jsonReq(map[string]any{"action": "read", "path": "live/cam", "protocol": "rtsp", "token": tok}))
		return status, r.Reason
	}
	if got := ready(); got == http.StatusOK {
		t.Errorf("readyz with the IdP down: got %d, want not ready", got)
	}
	tok := idp.token(t)
	denied := 0
	for range 5 {
		if status, reason := read(tok); status == http.StatusOK || reason != "jwks_unavailable" {
			t.Fatalf("IdP down at start: got %d %s, want a denial jwks_unavailable", status, reason)
		}
		denied++
	}

	idp.down.Store(false)
	up := time.Now()
	for {
		if status, _ := read(tok); status == http.StatusOK {
			break
		}
		if time.Since(up) > 30*time.Second {
			t.Fatalf("never allowed after the IdP came up\n%s", p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	recovered := time.Since(up)
	if got := ready(); got != http.StatusOK {
		t.Errorf("readyz after the IdP came up: got %d, want 200", got)
	}
	hits := idp.hits.Load()

	idp.down.Store(true)
	for name, tk := range map[string]string{"token seen before": tok, "new token": idp.token(t)} {
		if status, reason := read(tk); status != http.StatusOK {
			t.Errorf("IdP down after start, %s: got %d %s, want 200 from the last keys", name, status, reason)
		}
	}
	t.Logf("IdP down at start: %d requests denied jwks_unavailable; allowed %v after the IdP came up (%d JWKS requests in all); IdP down again: decisions still allowed",
		denied, recovered.Round(time.Millisecond), hits)
}
