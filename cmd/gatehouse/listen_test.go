package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/authz/logtest"
	"gatehouse/protocols/nginxtest"
)

// startServe runs serve in-process on the config body (data_dir and loopback listeners added;
// without an auth section, the built-in default users, which a named file never falls back to)
// and returns the public and hooks addresses. It stops with the test.
func startServe(t *testing.T, body string) (public, hooks string, logs *logtest.Buffer) {
	t.Helper()
	if !strings.Contains(body, "auth:") {
		body += "auth:\n  internal:\n" + indent(defaultUsers, "    ")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yml")
	src := "listen: 127.0.0.1:0\nhooks_listen: 127.0.0.1:0\nwatch_config: false\ndata_dir: " + filepath.Join(dir, "data") + "\n" + body
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return serveFile(t, path)
}

// serveFile runs serve in-process on the config file at path (its listeners on loopback port 0)
// and returns the public and hooks base addresses (host:port) and the captured log. It stops with
// the test.
func serveFile(t *testing.T, path string) (public, hooks string, logs *logtest.Buffer) {
	t.Helper()
	logs = new(logtest.Buffer)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, path, logs, func(p, h net.Addr) { ready <- [2]string{p.String(), h.String()} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not return after cancel")
		}
	})
	select {
	case a := <-ready:
		return a[0], a[1], logs
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start\n%s", logs.String())
	}
	return "", "", nil
}

const proxyNginxConf = `# Test harness only: a throw-away nginx in front of gatehouse, as on a same-host TLS terminator.
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    # The test names the outside address a request stands for; nginx then treats it as its
    # client, and $proxy_add_x_forwarded_for appends it as it would a real one.
    set_real_ip_from 127.0.0.0/8;
    real_ip_header X-Test-Client;
    server {
        listen 127.0.0.1:%[2]d;
        # The usual reverse proxy block, from 127.0.0.2 (listed in trusted_proxies) ...
        location /trusted/ {
            proxy_bind 127.0.0.2;
            proxy_pass http://%[3]s/;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
        # ... and the same from 127.0.0.3, which the operator forgot to list.
        location /untrusted/ {
            proxy_bind 127.0.0.3;
            proxy_pass http://%[3]s/;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
`

// startProxyNginx runs the real nginx as a reverse proxy to upstream and returns its address.
func startProxyNginx(t *testing.T, upstream string) string {
	t.Helper()
	return nginxtest.Start(t, nginxtest.Binary(t), func(dir string, port int) string {
		return fmt.Sprintf(proxyNginxConf, dir, port, upstream)
	}).Addr
}

// TestPublicClientAddressBehindNginx: with a real nginx on the same host in front, an outside client
// must not inherit nginx's loopback address for the loopback-only routes (/debug/pprof/ and the
// streams API), whether or not the operator listed nginx in trusted_proxies, and whatever
// X-Forwarded-For it sends itself; a direct local client keeps its grants; a foreign Host is refused.
func TestPublicClientAddressBehindNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx")
	}
	public, _, _ := startServe(t, `
trusted_proxies: [127.0.0.2]
allowed_hosts: [gatehouse.test, 127.0.0.1]
auth:
  internal:
    users:
      - user: any
        ips: [127.0.0.0/8, "::1"]
        permissions: [{action: api}, {action: pprof}]
`)
	proxy := startProxyNginx(t, public)
	tests := []struct {
		name, base, prefix, host string
		header                   map[string]string
		want                     int
	}{
		{"direct local client", public, "", "", nil, http.StatusOK},
		{"local client through the trusted proxy", proxy, "/trusted", "gatehouse.test", nil, http.StatusOK},
		{"outside client through the trusted proxy", proxy, "/trusted", "gatehouse.test",
			map[string]string{"X-Test-Client": "203.0.113.9"}, http.StatusUnauthorized},
		{"outside client forging a loopback X-Forwarded-For", proxy, "/trusted", "gatehouse.test",
			map[string]string{"X-Test-Client": "203.0.113.9", "X-Forwarded-For": "127.0.0.1"}, http.StatusUnauthorized},
		{"outside client through an unlisted local proxy", proxy, "/untrusted", "gatehouse.test",
			map[string]string{"X-Test-Client": "203.0.113.9"}, http.StatusUnauthorized},
		{"local peer sending X-Forwarded-For itself", public, "", "", map[string]string{"X-Forwarded-For": "203.0.113.9"}, http.StatusUnauthorized},
		{"foreign Host, direct", public, "", "rebind.example", nil, http.StatusMisdirectedRequest},
		{"foreign Host through the proxy", proxy, "/trusted", "rebind.example:8443", nil, http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		for _, route := range []string{"/debug/pprof/", "/api/v1/streams"} {
			t.Run(tt.name+route, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, (&url.URL{Scheme: "http", Host: tt.base, Path: tt.prefix + route}).String(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.host != "" {
					req.Host = tt.host
				}
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != tt.want {
					t.Errorf("got %d, want %d", res.StatusCode, tt.want)
				}
			})
		}
	}
}

// served connects to addr from the loopback address src, sends GET /healthz (keep-alive) and
// reports whether a response came back (the connection then stays open, idle, until the test
// ends) or the server closed or reset it. The deadline only bounds a failing test.
func served(t *testing.T, src, addr string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) {
			return nil, false // reset before connect returned
		}
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
		return c, false
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("neither answered nor closed: %v", err)
		}
		return c, false
	}
	res.Body.Close()
	return c, res.StatusCode == http.StatusOK
}

// TestPublicConnectionCaps: connections beyond the public caps are closed at once, the hooks
// listener still answers a hook while the public one is full, and a trusted proxy is exempt from
// the per-address cap.
func TestPublicConnectionCaps(t *testing.T) {
	t.Run("listener cap", func(t *testing.T) {
		public, hooks, logs := startServe(t, "limits: {public_max_conns: 50, hooks_max_conns: 8}\n")
		idle := make([]net.Conn, 0, 50)
		for i := range 50 {
			c, ok := served(t, fmt.Sprintf("127.0.1.%d", i+1), public) // under the per-address cap
			if !ok {
				t.Fatalf("connection %d of 50 refused", i+1)
			}
			idle = append(idle, c)
		}
		for i := range 10 {
			if ok(served(t, "127.0.2.1", public)) {
				t.Fatalf("connection %d over the cap was served", 51+i)
			}
		}
		form := url.Values{"call": {"publish"}, "app": {"live"}, "name": {"cam"}, "addr": {"203.0.113.1"}}
		res, err := http.PostForm("http://"+hooks+"/hooks/nginx-rtmp", form)
		if err != nil {
			t.Fatalf("hook while the public listener is full: %v", err)
		}
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Errorf("hook while the public listener is full: got %d", res.StatusCode)
		}
		// A freed slot is usable again (the server closes its side when it reads EOF).
		idle[0].Close()
		for deadline := time.Now().Add(10 * time.Second); !ok(served(t, "127.0.2.1", public)); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no connection accepted after one was closed")
			}
		}
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "connections refused"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) { // the log is flushed every 100 ms
				t.Fatalf("refusals not logged:\n%s", logs.String())
			}
		}
	})
	t.Run("per-address cap", func(t *testing.T) {
		public, _, _ := startServe(t, "trusted_proxies: [127.0.0.2]\nlimits: {public_max_conns: 50, public_max_conns_per_ip: 5}\n")
		for i := range 5 {
			if !ok(served(t, "127.0.0.1", public)) {
				t.Fatalf("connection %d of 5 refused", i+1)
			}
		}
		if ok(served(t, "127.0.0.1", public)) {
			t.Fatal("6th connection from one address served")
		}
		if !ok(served(t, "127.0.0.4", public)) {
			t.Fatal("another address refused")
		}
		for i := range 10 {
			if !ok(served(t, "127.0.0.2", public)) {
				t.Fatalf("trusted proxy's connection %d refused", i+1)
			}
		}
	})
}

func ok(_ net.Conn, served bool) bool { return served }

func TestSizeLimits(t *testing.T) {
	tests := []struct {
		name string
		cfg  LimitsConfig
		fds  int
		want connCaps
	}{
		{"small fd limit", LimitsConfig{}, 1024, connCaps{public: 768, perIP: 128, hooks: 128}},
		{"large fd limit", LimitsConfig{}, 1 << 20, connCaps{public: 16384, perIP: 128, hooks: 1024}},
		{"unknown fd limit", LimitsConfig{}, 0, connCaps{public: 3072, perIP: 128, hooks: 512}},
		{"tiny fd limit", LimitsConfig{}, 100, connCaps{public: 16, perIP: 16, hooks: 32}},
		{"configured", LimitsConfig{PublicMaxConns: 50, PublicMaxConnsPerIP: 5, HooksMaxConns: 8}, 1024, connCaps{public: 50, perIP: 5, hooks: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sizeLimits(tt.cfg, tt.fds); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestListenerConfig(t *testing.T) {
	c, err := parseConfig("t.yml", []byte("trusted_proxies: [127.0.0.1, 10.0.0.0/8]\nallowed_hosts: [Stream.Example.com., \"[::1]\", localhost]\nlimits: {public_max_conns: 10}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 2 || c.Limits.PublicMaxConns != 10 {
		t.Errorf("got %+v", c)
	}
	for host, want := range map[string]bool{
		"stream.example.com": true, "STREAM.example.com:8443": true, "stream.example.com.": true,
		"[::1]:8089": true, "localhost": true, "evil.example": false, "127.0.0.1": false, "": false,
	} {
		if got := c.AllowedHosts.allows(host); got != want {
			t.Errorf("allows(%q): got %v, want %v", host, got, want)
		}
	}
	errs := []struct{ name, src, want string }{
		{"bad proxy", "trusted_proxies:\n  - 127.0.0.1\n  - localhost\n", `t.yml:3: trusted_proxies[1]: "localhost" is not an IP address or CIDR network`},
		{"host with port", "allowed_hosts: [example.com:8089]\n", `t.yml:1: allowed_hosts[0]: "example.com:8089" is not a host name`},
		{"host with scheme", "allowed_hosts: [\"https://example.com\"]\n", "is not a host name"},
		{"negative cap", "limits:\n  hooks_max_conns: -1\n", "t.yml:2: limits.hooks_max_conns: hooks_max_conns must be 0"},
		{"unknown limit", "limits: {max_conns: 5}\n", `unknown key "max_conns"`},
		{"old sfu key", "sfu:\n  trusted_proxies: [127.0.0.1]\n", "moved to the top-level trusted_proxies"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("t.yml", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestDefaultsKeepPprofClosed: the built-in defaults let local tools use the API, but pprof (stack
// dumps, the command line) needs a configured user, even from loopback.
func TestDefaultsKeepPprofClosed(t *testing.T) {
	public, _, _ := startServe(t, "")
	for route, want := range map[string]int{"/debug/pprof/": http.StatusUnauthorized, "/api/v1/streams": http.StatusOK} {
		res, err := http.Get("http://" + public + route)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: got %d, want %d", route, res.StatusCode, want)
		}
	}
}

// indent prefixes every non-empty line of s.
func indent(s, prefix string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) != "" {
			b.WriteString(prefix)
		}
		b.WriteString(line)
	}
	return b.String()
}
