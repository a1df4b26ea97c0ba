package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles cmd/gatehouse once per test binary run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bin")
	if err != nil {
		return "", err
	}
	sharedDirs.add(dir) // removed by TestMain
	bin := filepath.Join(dir, "gatehouse")
	out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is a running gatehouse binary.
type proc struct {
	cmd    *exec.Cmd
	public string
	hooks  string
	mu     sync.Mutex
	log    bytes.Buffer
	done   chan error
}

func (p *proc) logs() string { p.mu.Lock(); defer p.mu.Unlock(); return p.log.String() }

var startedRe = regexp.MustCompile(`msg="gatehouse started".* listen=(\S+) hooks_listen=(\S+)`)

// startBinary runs `gatehouse run -config cfg` and waits for both listeners.
func startBinary(t *testing.T, cfg string, env ...string) *proc {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin, "run", "-config", cfg), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	leaks.addLog(t.Name(), p.logs) // searched for every registered secret after the run (TestMain)
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := startedRe.FindStringSubmatch(line); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", p.logs())
		}
	})
	select {
	case a := <-ready:
		p.public, p.hooks = "http://"+a[0], "http://"+a[1]
	case err := <-p.done:
		t.Fatalf("gatehouse exited early: %v\n%s", err, p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse did not start\n%s", p.logs())
	}
	return p
}

type hookReply struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

func postMediaMTX(t *testing.T, base, body string) (int, hookReply) {
	t.Helper()
	resp, err := http.Post(base+"/hooks/mediamtx", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r hookReply
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &r)
	return resp.StatusCode, r
}

func mtx(ip, user, pass, action, path, protocol string) string {
	b, _ := json.Marshal(map[string]any{"ip": ip, "user": user, "password": pass, "token": pass, "action": action,
		"path": path, "protocol": protocol, "id": nil, "query": "", "userAgent": "e2e"})
	return string(b)
}

func TestEndToEndMediaMTX(t *testing.T) {
	leaks.secret("e2e.yml password", "testpass")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yml")
	src, err := os.ReadFile("../../testdata/e2e.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, cfg, "E2E_DATA_DIR="+filepath.Join(dir, "data"))

	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantReason string
	}{
		{"sha256 user publishes", mtx("127.0.0.1", "testuser", "testpass", "publish", "mypath", "rtsp"), 200, "allowed"},
		{"sha256 user wrong ip", mtx("10.0.0.1", "testuser", "testpass", "publish", "mypath", "rtsp"), 401, "bad_credentials"},
		{"sha256 user wrong pass", mtx("127.0.0.1", "testuser", "nope", "publish", "mypath", "rtsp"), 401, "bad_credentials"},
		{"sha256 user wrong path is 403", mtx("127.0.0.1", "testuser", "testpass", "publish", "other", "rtsp"), 403, "not_permitted"},
		{"argon2i user publishes rtmp glob", mtx("127.0.0.1", "argonuser", "testpass", "publish", "live/cam", "rtmp"), 200, "allowed"},
		{"argon2i user again (cached)", mtx("127.0.0.1", "argonuser", "testpass", "publish", "live/cam", "rtmp"), 200, "allowed"},
		{"argon2i user wrong protocol is 403", mtx("127.0.0.1", "argonuser", "testpass", "publish", "live/cam", "webrtc"), 403, "not_permitted"},
		{"anonymous public read", mtx("127.0.0.1", "", "", "read", "public/cam", "hls"), 200, "allowed"},
		{"anonymous private read is 401", mtx("127.0.0.1", "", "", "read", "private/cam", "hls"), 401, "no_credentials"},
		{"malformed body is 400", `{"action":"read"`, 400, "malformed_request"},
		{"unknown action is 400", `{"action":"fly"}`, 400, "malformed_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, r := postMediaMTX(t, p.hooks, tt.body)
			if status != tt.wantStatus || r.Reason != tt.wantReason {
				t.Errorf("got %d %q, want %d %q", status, r.Reason, tt.wantStatus, tt.wantReason)
			}
		})
	}

	t.Run("healthz on both listeners", func(t *testing.T) {
		for _, base := range []string{p.public, p.hooks} {
			resp, err := http.Get(base + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s/healthz: got %d, want 200", base, resp.StatusCode)
			}
		}
	})
	t.Run("hooks are not on the public listener", func(t *testing.T) {
		resp, err := http.Post(p.public+"/hooks/mediamtx", "application/json", strings.NewReader(mtx("127.0.0.1", "", "", "read", "public/x", "")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("got %d, want 404", resp.StatusCode)
		}
	})

	t.Run("reload on SIGHUP", func(t *testing.T) {
		// A broken file is refused and the running config stays.
		if err := os.WriteFile(cfg, append(src, []byte("\nbogus_key: 1\n")...), 0o600); err != nil {
			t.Fatal(err)
		}
		n := strings.Count(p.logs(), "reload failed")
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		waitLog(t, p, "reload failed", n)
		if status, _ := postMediaMTX(t, p.hooks, mtx("127.0.0.1", "", "", "read", "public/cam", "hls")); status != 200 {
			t.Errorf("after a broken reload: got %d, want 200 from the old config", status)
		}
		// A valid change takes effect.
		changed := strings.Replace(string(src), `path: "~^public/"`, `path: "~^open/"`, 1)
		if err := os.WriteFile(cfg, []byte(changed), 0o600); err != nil {
			t.Fatal(err)
		}
		n = strings.Count(p.logs(), "config reloaded")
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		waitLog(t, p, "config reloaded", n)
		if status, _ := postMediaMTX(t, p.hooks, mtx("127.0.0.1", "", "", "read", "public/cam", "hls")); status != 401 {
			t.Errorf("after reload: public/cam got %d, want 401", status)
		}
		if status, _ := postMediaMTX(t, p.hooks, mtx("127.0.0.1", "", "", "read", "open/cam", "hls")); status != 200 {
			t.Errorf("after reload: open/cam got %d, want 200", status)
		}
	})

	t.Run("no secret in the log", func(t *testing.T) {
		logs := p.logs()
		for _, secret := range []string{"testpass", "E9JJ8stBJ7QM", "argon2i$"} {
			if strings.Contains(logs, secret) {
				t.Errorf("log contains %q", secret)
			}
		}
		if !strings.Contains(logs, "msg=decision") || !strings.Contains(logs, "reason=not_permitted") {
			t.Errorf("log lacks decision lines")
		}
	})

	t.Run("graceful shutdown on SIGTERM", func(t *testing.T) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("exit: %v, want 0", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("did not exit after SIGTERM")
		}
	})
}

// waitLog waits until the log holds more than n occurrences of substr.
func waitLog(t *testing.T, p *proc, substr string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for strings.Count(p.logs(), substr) == n {
		select {
		case <-ctx.Done():
			t.Fatalf("log never said %q", substr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
