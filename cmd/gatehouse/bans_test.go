package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

const bansConfig = `auth:
  bruteforce: {max_failures: 5, allow: [192.0.2.0/24]}
  internal:
    users:
      - user: alice
        pass: right
        permissions: [{action: publish}]
      - user: admin
        pass: adminpass
        permissions: [{action: api}]
`

// TestBansEndToEnd: through the real server, a guessing run on the MediaMTX hook from one
// address is banned at auth.bruteforce.max_failures (the right password is then refused too),
// while the operator's allow-listed network and other clients are not; `gatehouse bans list`
// shows the ban through /api/v1/bans, `gatehouse bans lift` ends it; the API answers the SFU's
// and forward-auth's Retry-After contract through guard (403 with Retry-After when banned).
func TestBansEndToEnd(t *testing.T) {
	public, hooks, logs := startServe(t, bansConfig)
	for i := range 5 { // distinct guesses: one wrong password repeated counts once
		if code, _ := postMediaMTX(t, "http://"+hooks, mtx("203.0.113.7", "alice", fmt.Sprint("guess", i), "publish", "live/a", "rtmp")); code != http.StatusUnauthorized {
			t.Fatalf("guess: got %d, want 401", code)
		}
		postMediaMTX(t, "http://"+hooks, mtx("192.0.2.5", "alice", "guess", "publish", "live/a", "rtmp")) // allow-listed
	}
	if code, r := postMediaMTX(t, "http://"+hooks, mtx("203.0.113.7", "alice", "right", "publish", "live/a", "rtmp")); code == http.StatusOK {
		t.Fatalf("after 5 guesses: got %d %+v, want refused (banned)", code, r)
	}
	for _, ip := range []string{"198.51.100.9", "192.0.2.5"} {
		if code, _ := postMediaMTX(t, "http://"+hooks, mtx(ip, "alice", "right", "publish", "live/a", "rtmp")); code != http.StatusOK {
			t.Errorf("client %s: got %d, want 200", ip, code)
		}
	}
	// The log is flushed every interval: wait for the line fail2ban's filter (README) matches.
	line := regexp.MustCompile(`level=WARN msg="bruteforce ban" .*\bip=203\.0\.113\.7 kind=ip subject=203\.0\.113\.7/32 `)
	for deadline := time.Now().Add(10 * time.Second); !line.MatchString(logs.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no fail2ban line:\n%s", logs.String())
		}
	}

	t.Setenv("GATEHOUSE_API_PASSWORD", "adminpass")
	var out, errb bytes.Buffer
	if rc := cli(context.Background(), []string{"bans", "list", "-url", "http://" + public, "-user", "admin"}, nil, &out, &errb); rc != exitOK {
		t.Fatalf("bans list: exit %d: %s", rc, errb.String())
	}
	if !strings.Contains(out.String(), "203.0.113.7/32") || !strings.Contains(out.String(), "bruteforce") || strings.Contains(out.String(), "192.0.2.5") {
		t.Errorf("bans list:\n%s\nwant the attacker's ban only", out.String())
	}
	out.Reset()
	if rc := cli(context.Background(), []string{"bans", "lift", "-url", "http://" + public, "-user", "admin", "ip", "203.0.113.7"}, nil, &out, &errb); rc != exitOK {
		t.Fatalf("bans lift: exit %d: %s", rc, errb.String())
	}
	if code, _ := postMediaMTX(t, "http://"+hooks, mtx("203.0.113.7", "alice", "right", "publish", "live/a", "rtmp")); code != http.StatusOK {
		t.Errorf("after lift: got %d, want 200", code)
	}
	if rc := cli(context.Background(), []string{"bans", "lift", "-url", "http://" + public, "-user", "admin", "ip", "203.0.113.7"}, nil, &out, &errb); rc != exitDeny {
		t.Errorf("lifting again: exit %d, want %d (no ban)", rc, exitDeny)
	}
	os.Unsetenv("GATEHOUSE_API_PASSWORD")
	if rc := cli(context.Background(), []string{"bans", "list", "-url", "http://" + public}, nil, &out, &errb); rc != exitDeny {
		t.Errorf("bans list without credentials: exit %d, want %d", rc, exitDeny)
	}

	// Guessing the API's password from loopback bans loopback too (no allow-list entry for it
	// here): the right password is then refused with Retry-After.
	for i := range 5 {
		req, _ := http.NewRequest("GET", "http://"+public+"/api/v1/bans", nil)
		req.SetBasicAuth("admin", fmt.Sprint("guess", i))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	req, _ := http.NewRequest("GET", "http://"+public+"/api/v1/bans", nil)
	req.SetBasicAuth("admin", "adminpass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("banned API client: got %d Retry-After %q, want 403 and 60", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestBruteForceConfigErrors: auth.bruteforce decodes strictly, with lines.
func TestBruteForceConfigErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"auth:\n  bruteforce: {max_failure: 3}\n  internal: {users: []}\n", `:2:`},
		{"auth:\n  bruteforce:\n    max_failures: -1\n  internal: {users: []}\n", `:3:`},
		{"auth:\n  bruteforce:\n    ban: 2h\n    max_ban: 1h\n  internal: {users: []}\n", `:4:`},
		{"auth:\n  bruteforce:\n    allow: [nope]\n  internal: {users: []}\n", `:3:`},
		{"auth:\n  bruteforce:\n    unknown_max_failures: -1\n  internal: {users: []}\n", `:3:`},
	} {
		_, err := parseConfig("t.yml", []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), "t.yml"+tt.want) {
			t.Errorf("%q: got %v, want an error at line %s", tt.src, err, tt.want)
		}
	}
	cfg, err := parseConfig("t.yml", []byte("auth:\n  bruteforce: {enabled: false}\n  internal: {users: []}\n"))
	if err != nil || policy(cfg).BruteForce.Enabled() {
		t.Errorf("enabled: false: got %v %+v, want off", err, policy(cfg).BruteForce)
	}
	cfg, _ = parseConfig("t.yml", nil)
	if got := policy(cfg).BruteForce; got.MaxFailures != 10 || got.UnknownMaxFailures != 100 || got.MaxBan.Hours() != 1 {
		t.Errorf("defaults: got %+v, want 10 failures, 100 for unknown addresses, max ban 1h", got)
	}
	cfg, err = parseConfig("t.yml", []byte("auth:\n  bruteforce: {unknown_max_failures: 0}\n  internal: {users: []}\n"))
	if got := policy(cfg).BruteForce; err != nil || got.UnknownMaxFailures != 0 || got.MaxFailures != 10 {
		t.Errorf("unknown_max_failures: 0: got %v %+v, want unknown addresses not counted, the rest default", err, got)
	}
}
