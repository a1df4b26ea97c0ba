package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	redirect := httptest.NewServer(http.RedirectHandler(ok.URL, http.StatusFound))
	defer redirect.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"200 is healthy", []string{"-url", ok.URL + "/healthz"}, exitOK},
		{"503 is unhealthy", []string{"-url", down.URL + "/healthz"}, exitDeny},
		{"a redirect is unhealthy", []string{"-url", redirect.URL}, exitDeny},
		{"nothing listening is unhealthy", []string{"-url", closed, "-timeout", "2s"}, exitDeny},
		{"a bad timeout is a usage error", []string{"-url", ok.URL, "-timeout", "0s"}, exitConfig},
		{"an unknown flag is a usage error", []string{"-bogus"}, exitConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := cli(context.Background(), append([]string{"healthcheck"}, tt.args...), nil, &out, &errOut); got != tt.want {
				t.Errorf("got exit %d, want %d\nstdout: %s\nstderr: %s", got, tt.want, out.String(), errOut.String())
			}
		})
	}
}

// TestHealthcheckAgainstBinary runs the subcommand the Dockerfile's HEALTHCHECK runs against a
// real gatehouse.
func TestHealthcheckAgainstBinary(t *testing.T) {
	p := startBinary(t, e2eConfig(t), "E2E_DATA_DIR="+t.TempDir())
	var out, errOut bytes.Buffer
	if got := cli(context.Background(), []string{"healthcheck", "-url", p.public + "/healthz"}, nil, &out, &errOut); got != exitOK {
		t.Errorf("got exit %d, want 0\n%s%s", got, out.String(), errOut.String())
	}
}

// e2eConfig copies testdata/e2e.yml (loopback, ephemeral ports) into a temporary directory.
func e2eConfig(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../../testdata/e2e.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "gatehouse.yml")
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSDNotifierSocketForms(t *testing.T) {
	for _, tt := range []struct {
		socket string
		active bool
	}{
		{"", false},
		{"/run/systemd/notify", true},
		{"@/org/freedesktop/systemd1/notify/1", true},
		{"vsock:2:1234", false},
		{"relative/path", false},
	} {
		if got := newSDNotifier(tt.socket).addr != nil; got != tt.active {
			t.Errorf("newSDNotifier(%q) active: got %v, want %v", tt.socket, got, tt.active)
		}
	}
	if err := (sdNotifier{}).notify("READY=1"); err != nil {
		t.Errorf("zero notifier: got %v, want nil", err)
	}
}

// TestSDNotify runs the real binary as systemd would for a Type=notify unit: $NOTIFY_SOCKET names
// a unixgram socket, READY=1 arrives once both listeners accept, SIGHUP (ExecReload) is framed by
// RELOADING=1 with MONOTONIC_USEC and READY=1, and SIGTERM gives STOPPING=1.
func TestSDNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn") // short: a socket path is limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("socket closed; want %q", want)
			}
			if !strings.Contains(m, want) {
				t.Fatalf("got notification %q, want one with %q", m, want)
			}
			return m
		case <-time.After(30 * time.Second):
			t.Fatalf("no notification; want %q", want)
		}
		return ""
	}

	p := startBinary(t, e2eConfig(t), "E2E_DATA_DIR="+t.TempDir(), "NOTIFY_SOCKET="+sock)
	next("READY=1")
	resp, err := http.Get(p.hooks + "/healthz") // READY means both listeners answer
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if m := next("RELOADING=1"); !strings.Contains(m, "\nMONOTONIC_USEC=") {
		t.Errorf("got %q, want MONOTONIC_USEC with RELOADING=1", m)
	}
	next("READY=1")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("STOPPING=1")
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("gatehouse exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gatehouse did not exit after SIGTERM")
	}
}
