package nginxrtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/hookio"
	"gatehouse/authz/live"
	"gatehouse/backends/keys"
	"gatehouse/protocols/nginxtest"
)

// The real-program tests: nginx with Debian's libnginx-mod-rtmp, ffmpeg as publisher and player,
// gatehouse's handler on an httptest server backed by a real engine. The whole suite takes about
// 15 seconds.

const rtmpModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// findTools returns the nginx binary and the absolute path of the rtmp module, or why not.
func findTools() (nginx, module string, err error) {
	nginx, err = exec.LookPath("nginx")
	if err != nil {
		return "", "", errors.New("nginx not found")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return "", "", errors.New("ffmpeg not found")
	}
	if _, err := os.Stat(rtmpModule); err == nil {
		return nginx, rtmpModule, nil
	}
	// Debian's snippet: "load_module modules/ngx_rtmp_module.so;" relative to nginx's prefix.
	b, err := os.ReadFile("/usr/share/nginx/modules-available/mod-rtmp.conf")
	if err != nil {
		return "", "", errors.New("nginx rtmp module not found")
	}
	m := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "load_module")), ";")
	if !filepath.IsAbs(m) {
		m = filepath.Join("/usr/share/nginx", m)
	}
	if _, err := os.Stat(m); err != nil {
		return "", "", fmt.Errorf("nginx rtmp module %s not found", m)
	}
	return nginx, m, nil
}

// requireTools finds nginx, the rtmp module and ffmpeg, installing them with apt-get when missing
// and running as root. If they are still unavailable the test fails, unless GATEHOUSE_ALLOW_SKIP=1.
func requireTools(t *testing.T) (nginx, module string) {
	t.Helper()
	nginx, module, err := findTools()
	if err == nil {
		return nginx, module
	}
	if os.Geteuid() == 0 {
		if _, lerr := exec.LookPath("apt-get"); lerr == nil {
			t.Logf("%v: installing nginx libnginx-mod-rtmp ffmpeg with apt-get", err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", "apt-get update -qq && apt-get install -y -qq nginx libnginx-mod-rtmp ffmpeg")
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, ierr := cmd.CombinedOutput(); ierr != nil {
				t.Logf("apt-get failed: %v\n%s", ierr, nginxtest.Tail(out, 2000))
			}
			nginx, module, err = findTools()
			if err == nil {
				return nginx, module
			}
		}
	}
	if os.Getenv("GATEHOUSE_ALLOW_SKIP") == "1" {
		t.Skipf("%v (GATEHOUSE_ALLOW_SKIP=1)", err)
	}
	t.Fatalf("%v; install nginx libnginx-mod-rtmp ffmpeg, or set GATEHOUSE_ALLOW_SKIP=1 to skip", err)
	return "", ""
}

// startNginx runs nginx in the foreground with the testdata application block pointing at hook,
// and returns the RTMP base URL and the path of its error log. nginx is stopped in t.Cleanup.
func startNginx(t *testing.T, nginx, module, hook string) (base, errorLog string) {
	t.Helper()
	app, err := template.ParseFiles(filepath.Join("testdata", "nginx-application.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	if err := app.Execute(&block, map[string]string{"Hook": hook, "UpdateTimeout": "1s"}); err != nil {
		t.Fatal(err)
	}
	n := nginxtest.Start(t, nginx, func(dir string, port int) string {
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
%s
    }
}
`, module, filepath.Join(dir, "error.log"), filepath.Join(dir, "nginx.pid"), port, block.String())
	})
	return "rtmp://" + n.Addr, n.ErrorLog()
}

// ffmpegProc is a running ffmpeg; done is closed when it exits, err then holds the exit status.
type ffmpegProc struct {
	done   chan struct{}
	cancel context.CancelFunc
	err    error
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (p *ffmpegProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *ffmpegProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(nginxtest.Tail(p.stderr.Bytes(), 2000))
}

// ffmpeg starts ffmpeg with args, killed after limit or at the end of the test.
func ffmpeg(t *testing.T, limit time.Duration, args ...string) *ffmpegProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...)...)
	p := &ffmpegProc{done: make(chan struct{}), cancel: cancel}
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ffmpeg: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// publish streams a 320x240 test pattern with a tone to url for at most limit.
func publish(t *testing.T, url string, limit time.Duration) *ffmpegProc {
	return ffmpeg(t, limit,
		"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-c:a", "aac",
		"-f", "flv", url)
}

// play reads 10 video frames from url; it returns ffmpeg's error (nil: frames received).
func play(t *testing.T, url string) error {
	t.Helper()
	p := ffmpeg(t, 20*time.Second, "-i", url, "-frames:v", "10", "-f", "null", "-")
	<-p.done
	if p.err != nil {
		return fmt.Errorf("%w: %s", p.err, strings.TrimSpace(p.output()))
	}
	return nil
}

// waitExit waits up to d for p to exit and reports whether it did.
func waitExit(p *ffmpegProc, d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// fakeClock is the handler's clock; the expiry test moves it forward instead of sleeping.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

const streamKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f0" // as `openssl rand -hex 16`

func TestNginxRTMP(t *testing.T) {
	nginx, module := requireTools(t)

	clock := &fakeClock{}
	grantEnd := clock.now().Add(time.Hour)
	users := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		type account struct {
			pass    string
			action  authz.Action
			expires time.Time
		}
		accounts := map[string]account{
			"pub":    {"pubpass", authz.ActionPublish, time.Time{}},
			"viewer": {"viewpass", authz.ActionRead, time.Time{}},
			"short":  {"shortpass", authz.ActionPublish, grantEnd},
		}
		a, ok := accounts[r.User]
		switch {
		case r.User == "":
			return authz.Decision{}, nil
		case !ok || r.Pass != a.pass:
			return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "bad user or password"), nil
		case r.Action != a.action || !strings.HasPrefix(r.Path, "live/"):
			return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted"), nil
		}
		return authz.Allowing(r.User, a.expires), nil
	})
	k, err := keys.NewKey(streamKey, "live/alice", "alice", nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	keyBackend, err := keys.New(keys.Config{Keys: []keys.Key{k}}, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	engine := authz.NewEngine(authz.NewChain(
		authz.Method{Name: "keys", Backend: keyBackend},
		authz.Method{Name: "users", Backend: users},
	), slog.New(slog.DiscardHandler), authz.WithClock(clock.now)) // the engine refuses expired grants
	rec := newRecorder()
	// Behind the hooks listener's guard, as gatehouse serves it: real nginx-rtmp must pass it.
	srv := httptest.NewServer(hookio.Guard(New(Config{Now: clock.now}, engine, rec, nil), nil, nil))
	t.Cleanup(srv.Close)

	base, errorLog := startNginx(t, nginx, module, srv.URL+"/hooks/nginx-rtmp")

	// One publisher serves the read tests.
	cam := publish(t, base+"/live/cam?user=pub&pass=pubpass", 50*time.Second)
	rec.WaitFor(t, 15*time.Second, "published live/cam", is(live.Published, "live/cam"))

	t.Run("publish and read with valid credentials", func(t *testing.T) {
		if err := play(t, base+"/live/cam?user=viewer&pass=viewpass"); err != nil {
			t.Fatalf("reader: %v", err)
		}
		e := rec.WaitFor(t, 5*time.Second, "joined live/cam", is(live.Joined, "live/cam"))
		if e.Identity != "viewer" || e.Protocol != "rtmp" || e.Remote != "127.0.0.1" {
			t.Errorf("got joined event %+v, want identity viewer, rtmp, 127.0.0.1", e)
		}
		rec.WaitFor(t, 5*time.Second, "left live/cam", is(live.Left, "live/cam"))
	})

	t.Run("publish refused", func(t *testing.T) {
		tests := []struct{ name, url string }{
			{"wrong password", base + "/live/bad1?user=pub&pass=wrong"},
			{"unknown user", base + "/live/bad2?user=mallory&pass=x"},
			{"no credentials", base + "/live/bad3"},
			{"reader credentials", base + "/live/bad4?user=viewer&pass=viewpass"},
			{"injected name", base + "/live/bad5?user=pub&pass=pubpass&name=cam"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := publish(t, tt.url, 20*time.Second)
				if !waitExit(p, 15*time.Second) {
					t.Fatalf("publisher still running after 15s; want it refused")
				}
				if p.err == nil {
					t.Errorf("publisher exited cleanly; want an error")
				}
				if has(rec, func(e live.Event) bool { return strings.HasPrefix(e.Path, "live/bad") }) {
					t.Errorf("got events %s, want none for live/bad*", describe(rec.Events()))
				}
			})
		}
	})

	t.Run("play with and without permission", func(t *testing.T) {
		tests := []struct {
			name string
			url  string
			ok   bool
		}{
			{"viewer", base + "/live/cam?user=viewer&pass=viewpass", true},
			{"publisher may not read", base + "/live/cam?user=pub&pass=pubpass", false},
			{"wrong password", base + "/live/cam?user=viewer&pass=nope", false},
			{"no credentials", base + "/live/cam", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := play(t, tt.url)
				if got := err == nil; got != tt.ok {
					t.Errorf("got frames=%v (%v), want %v", got, err, tt.ok)
				}
			})
		}
	})

	t.Run("secret stream key is renamed to the public name", func(t *testing.T) {
		p := publish(t, base+"/live/"+streamKey, 40*time.Second)
		e := rec.WaitFor(t, 15*time.Second, "published live/alice", is(live.Published, "live/alice"))
		if e.Identity != "alice" {
			t.Errorf("got identity %q, want alice", e.Identity)
		}
		if err := play(t, base+"/live/alice?user=viewer&pass=viewpass"); err != nil {
			t.Fatalf("reader of the public name: %v", err)
		}
		p.kill()
		rec.WaitFor(t, 10*time.Second, "unpublished live/alice", is(live.Unpublished, "live/alice"))
		for _, e := range rec.Events() {
			if strings.Contains(e.Path, streamKey) {
				t.Errorf("event %+v carries the stream key", e)
			}
		}
		log, _ := os.ReadFile(errorLog)
		if !strings.Contains(string(log), "redirect to 'alice'") {
			t.Errorf("nginx error.log has no \"redirect to 'alice'\"; nginx did not rename")
		}
	})

	t.Run("grant expiring mid-stream drops the publisher at the next update", func(t *testing.T) {
		p := publish(t, base+"/live/short?user=short&pass=shortpass", 40*time.Second)
		rec.WaitFor(t, 15*time.Second, "published live/short", is(live.Published, "live/short"))
		rec.WaitFor(t, 5*time.Second, "alive live/short", is(live.Alive, "live/short"))
		if waitExit(p, 0) {
			t.Fatalf("publisher exited before expiry: %v %s", p.err, p.output())
		}
		clock.advance(2 * time.Hour)
		if !waitExit(p, 10*time.Second) {
			t.Fatalf("publisher still running 10s after its grant expired (notify_update_timeout 1s)")
		}
		rec.WaitFor(t, 10*time.Second, "unpublished live/short", is(live.Unpublished, "live/short"))
		if waitExit(cam, 0) { // only the expired grant is affected: pub's never expires
			t.Errorf("the live/cam publisher was dropped too: %v %s", cam.err, cam.output())
		}
	})
}

// kill stops the process and waits for it.
func (p *ffmpegProc) kill() {
	p.cancel()
	<-p.done
}
