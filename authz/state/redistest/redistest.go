// Package redistest starts a throw-away redis-server for tests: its own directory under
// t.TempDir(), a loopback port of its own, no persistence unless asked, run in the foreground as a
// child of the test and stopped in t.Cleanup. It never talks to a Redis it did not start. It is
// imported by tests only.
package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary returns the redis-server binary. When it is not installed the test is skipped with the
// reason (make test installs it through .ci/install-deps, so CI runs these tests).
func Binary(t testing.TB) string {
	t.Helper()
	if bin, err := exec.LookPath("redis-server"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	t.Skip("redis-server not installed (apt-get install redis-server, or run .ci/install-deps)")
	return ""
}

// Server is a running redis-server.
type Server struct {
	Addr string // "127.0.0.1:port"

	t       testing.TB
	bin     string
	dir     string
	port    int
	persist bool
	pass    string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	log     bytes.Buffer
}

// Option configures Start.
type Option func(*Server)

// Persistent turns on the append-only file (in the server's directory), so Stop and Start keep
// the data, as a production Redis configured per the README does.
func Persistent() Option { return func(s *Server) { s.persist = true } }

// Password makes the server require pass (requirepass, the default user's password).
func Password(pass string) Option { return func(s *Server) { s.pass = pass } }

// Start runs a redis-server on a free loopback port until it answers PING (at most 10 s) and
// stops it in t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir()}
	for _, o := range opts {
		o(s)
	}
	for attempt := 0; ; attempt++ {
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("redis-server: %v\n%s", err, s.log.String())
		}
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", s.log.String())
		}
	})
	return s
}

func (s *Server) start() error {
	appendonly := "no"
	if s.persist {
		appendonly = "yes"
	}
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", appendonly, "--dir", s.dir, "--daemonize", "no", "--protected-mode", "yes",
		"--loglevel", "warning"}
	if s.pass != "" {
		args = append(args, "--requirepass", s.pass)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("exited before answering")
		default:
		}
		if ping(s.Addr) {
			s.mu.Lock()
			s.cmd, s.exited = cmd, exited
			s.mu.Unlock()
			return nil
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("did not answer PING within 10 s")
}

// Stop ends the server (SIGTERM, SIGKILL after 5 s) and waits for it. It is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart starts the stopped server again on the same port and directory.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redis-server restart: %v\n%s", err, s.log.String())
	}
}

// ping reports whether addr answers a RESP PING with +PONG.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	return bytes.HasPrefix(buf[:n], []byte("+PONG")) || bytes.HasPrefix(buf[:n], []byte("-NOAUTH"))
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

// Dir returns the server's working directory (its append-only file lives there).
func (s *Server) Dir() string { return filepath.Clean(s.dir) }
