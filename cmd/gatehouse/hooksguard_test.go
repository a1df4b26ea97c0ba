package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHooksListenerRefusesBrowsers: the hooks listener used to answer anyone who reached it,
// browsers included: a page could post blind forms to the nginx-rtmp hook (with a made-up addr)
// and, through DNS rebinding, read the answers. Browser requests (Origin, Sec-Fetch-*) get 403 and
// a DNS name that is not localhost nor in hooks.allowed_hosts gets 421, on every hook but forward
// auth, whose proxies pass the client's headers and may keep the site's Host.
func TestHooksListenerRefusesBrowsers(t *testing.T) {
	_, hooks, logs := startServe(t, "hooks:\n  allowed_hosts: [gatehouse]\n")
	do := func(method, path, host string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+hooks+path, strings.NewReader("call=publish&app=live&name=cam&addr=203.0.113.9&clientid=1"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if host != "" {
			req.Host = host
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	browser := []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"}
	for _, tt := range []struct {
		name, method, path, host string
		header                   []string
		want                     int
	}{
		{"nginx-rtmp by IP", "POST", "/hooks/nginx-rtmp", "", nil, 403}, // no credentials: denied by the engine, not the guard
		{"nginx-rtmp by a listed name", "POST", "/hooks/nginx-rtmp", "gatehouse:8090", nil, 403},
		{"cross-site form to nginx-rtmp", "POST", "/hooks/nginx-rtmp", "", browser, 403},
		{"rebound name on nginx-rtmp", "POST", "/hooks/nginx-rtmp", "evil.example:8090", nil, 421},
		{"rebound name on healthz", "GET", "/healthz", "evil.example:8090", nil, 421},
		{"healthz by localhost", "GET", "/healthz", "localhost:8090", nil, 200},
		{"forward auth with a browser's headers and the site's Host", "GET", "/hooks/forward-auth?", "stream.example.com",
			append([]string{"X-Original-URI", "/live/cam/index.m3u8", "X-Original-Method", "GET"}, browser...), 204}, // the defaults let anyone read
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.method, tt.path, tt.host, tt.header...)
			if code != tt.want {
				t.Errorf("got %d %q, want %d", code, body, tt.want)
			}
			guard := strings.Contains(body, "does not answer browsers") || strings.Contains(body, "hooks.allowed_hosts")
			if want := tt.want == 421 || (tt.header != nil && tt.path != forwardAuthPath+"?"); guard != want {
				t.Errorf("refused by the guard: got %v, want %v (%q)", guard, want, body)
			}
		})
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `level=WARN msg="hooks: request from a browser refused"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) { // the log is flushed every 100 ms
			t.Fatalf("no WARN line for the browser request:\n%s", logs.String())
		}
	}
}
