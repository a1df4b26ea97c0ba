// Package nginxtest starts a throw-away nginx for tests that put the real program in front of
// gatehouse (forward auth, nginx-rtmp, a reverse proxy before the public listener): its own
// prefix directory under t.TempDir(), a loopback port, run in the foreground as a child of the
// test and stopped in t.Cleanup. It is imported by tests only.
package nginxtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary returns the nginx binary (PATH, then /usr/sbin/nginx). When nginx is not installed the
// test fails, or is skipped with GATEHOUSE_ALLOW_SKIP=1.
func Binary(t testing.TB) string {
	t.Helper()
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("GATEHOUSE_ALLOW_SKIP") == "1" {
		t.Skip("nginx not installed (GATEHOUSE_ALLOW_SKIP=1)")
	}
	t.Fatal("nginx not installed: apt-get install nginx, or set GATEHOUSE_ALLOW_SKIP=1")
	return ""
}

// Nginx is a running nginx.
type Nginx struct {
	Addr string // "127.0.0.1:port", accepting connections
	Dir  string // the prefix directory: nginx.conf, error.log, nginx.pid, temp paths
}

// ErrorLog returns the path of nginx's error log.
func (n *Nginx) ErrorLog() string { return filepath.Join(n.Dir, "error.log") }

// Start writes conf(dir, port) to dir/nginx.conf and runs bin with prefix dir and error log
// dir/error.log until 127.0.0.1:port accepts connections (at most 10 s). conf must keep nginx in
// the foreground as one process (daemon off; master_process off;), write its pid and temp files
// under dir and listen on 127.0.0.1:port. A port taken between probe and bind is retried on a
// new one (three attempts). nginx is stopped in t.Cleanup (SIGTERM, SIGKILL after 5 s), and
// the tail of its error log is logged when the test failed.
func Start(t testing.TB, bin string, conf func(dir string, port int) string) *Nginx {
	t.Helper()
	dir := t.TempDir()
	n := &Nginx{Dir: dir}
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf(dir, port)), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-p", dir+"/", "-c", path, "-e", n.ErrorLog())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start nginx: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if waitListening(addr, exited, 10*time.Second) {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
				if t.Failed() {
					log, _ := os.ReadFile(n.ErrorLog())
					t.Logf("nginx output:\n%s\nnginx error.log (tail):\n%s", out.String(), Tail(log, 4000))
				}
			})
			n.Addr = addr
			return n
		}
		_ = cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(n.ErrorLog())
		lastErr = out.String() + string(Tail(log, 4000))
	}
	t.Fatalf("nginx did not start:\n%s", lastErr)
	return nil
}

// Tail returns the last n bytes of b.
func Tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening reports whether addr accepts a connection before limit passes or nginx exits.
func waitListening(addr string, exited <-chan struct{}, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// RTMPModule returns the absolute path of Debian's nginx rtmp module (libnginx-mod-rtmp), for a
// load_module line. When it is not installed the test fails, or is skipped with
// GATEHOUSE_ALLOW_SKIP=1.
func RTMPModule(t testing.TB) string {
	t.Helper()
	const module = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	if _, err := os.Stat(module); err == nil {
		return module
	}
	// Debian's snippet: "load_module modules/ngx_rtmp_module.so;" relative to nginx's prefix.
	if b, err := os.ReadFile("/usr/share/nginx/modules-available/mod-rtmp.conf"); err == nil {
		m := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "load_module")), ";")
		if !filepath.IsAbs(m) {
			m = filepath.Join("/usr/share/nginx", m)
		}
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	if os.Getenv("GATEHOUSE_ALLOW_SKIP") == "1" {
		t.Skip("nginx rtmp module not installed (GATEHOUSE_ALLOW_SKIP=1)")
	}
	t.Fatal("nginx rtmp module not installed: apt-get install libnginx-mod-rtmp, or set GATEHOUSE_ALLOW_SKIP=1")
	return ""
}
