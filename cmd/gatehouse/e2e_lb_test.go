package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz/state/redisstate"
	"gatehouse/authz/state/redistest"
	"gatehouse/protocols/nginxtest"
)

// The templates docs/scaling.md shows as tested blocks: one replica's gatehouse.yml and the
// nginx load balancer in front of the replicas' hooks.
const (
	lbReplicaTemplate = "cmd/gatehouse/testdata/lb/replica.yml"
	lbNginxTemplate   = "cmd/gatehouse/testdata/lb/nginx-hooks-lb.conf"
)

// lbTestSFU is appended to the replica template: WebRTC on loopback for the pion publishers.
const lbTestSFU = `sfu:
  udp_port: 0
  include_loopback: true
  internal_ips: [127.0.0.0/8]
`

// renderTemplate renders the repository file path (relative to the repository root) with data.
func renderTemplate(t *testing.T, path string, data map[string]string) string {
	t.Helper()
	tmpl, err := template.New(filepath.Base(path)).Option("missingkey=error").ParseFiles(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// lbAccessLog reads nginx's access log of the hooks load balancer: one line per forwarded hook,
// "<method> <uri> <status> <upstream address>".
type lbAccessLog string

func (l lbAccessLog) lines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(string(l))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil // strings.Split would give one empty line, and a mark taken now one too many
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// since returns the lines after the first n.
func (l lbAccessLog) since(t *testing.T, n int) []string {
	t.Helper()
	all := l.lines(t)
	if n > len(all) {
		return nil
	}
	return all[n:]
}

// sessionsOn returns the paths of the live sessions node p holds, by source ("sfu:live/cam").
func sessionsOn(t *testing.T, p *proc) []string {
	t.Helper()
	code, body := apiCall(t, "GET", p.public+"/api/v1/sessions")
	if code != 200 {
		t.Fatalf("sessions on %s: %d %s", p.public, code, body)
	}
	var s struct {
		Sessions []struct{ Source, Path string }
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range s.Sessions {
		out = append(out, x.Source+":"+x.Path)
	}
	return out
}

func holds(sessions []string, want string) bool {
	for _, s := range sessions {
		if s == want {
			return true
		}
	}
	return false
}

// lbNginxForm sends nginx-rtmp's on_publish for stream key name from address addr to lb and
// returns the status and the Location (the stream's new name).
func lbNginxForm(t *testing.T, lb, name, addr, clientID string) (int, string) {
	t.Helper()
	form := "app=live&flashver=FMLE%2F3.0&tcurl=rtmp%3A%2F%2F127.0.0.1%2Flive&addr=" + addr + "&clientid=" + clientID +
		"&call=publish&name=" + url.QueryEscape(name) + "&type=live"
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 20 * time.Second}
	resp, err := c.Post(lb+"/hooks/nginx-rtmp", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestEndToEndReplicasBehindNginx runs the setup docs/scaling.md describes: three gatehouse
// replicas (docs' replica.yml) sharing one real redis-server (password from a file), behind a
// real nginx whose http upstream (docs' nginx-hooks-lb.conf, hash $remote_addr) balances the
// hooks, and a real nginx-rtmp (the README's application block) whose hooks point at that load
// balancer. nginx's access log names the replica that answered each hook: all of nginx-rtmp's
// hooks reach one replica, B (sticky). A key created on A lets ffmpeg publish through nginx-rtmp,
// admitted by B; a brute-force ban raised on A refuses on B (banned); a second publisher of a
// path a WHIP publisher holds on A is refused on B (409 path_busy on the hook, and ffmpeg through
// nginx-rtmp fails); a key revoked on A ends a pion WHIP publisher B holds within one heartbeat
// (plus slack for a loaded machine; the measured time is logged); with redis-server stopped, a
// new publisher is refused fast through the load balancer while the running ffmpeg keeps
// publishing through its on_update calls, and with redis-server back on the same port a new
// ffmpeg publishes, without restarting any gatehouse; with B stopped, nginx passes the next hook
// to another replica, which admits a new ffmpeg publisher.
func TestEndToEndReplicasBehindNginx(t *testing.T) {
	nginxBin, module := nginxtest.Binary(t), nginxtest.RTMPModule(t)
	const redisPass = "lb-redis-pass-0123456789"
	leaks.secret("lb e2e redis password", redisPass)
	srv := redistest.Start(t, redistest.Persistent(), redistest.Password(redisPass))
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(redisPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Three replicas; their roles (A, B, C) are given once nginx has shown which one it picks.
	var reps []*proc
	for _, id := range []string{"gh-1", "gh-2", "gh-3"} {
		dir := t.TempDir()
		public := freeAddr(t)
		cfg := renderTemplate(t, lbReplicaTemplate, map[string]string{
			"Public": public, "HooksListen": "127.0.0.1:0", "DataDir": filepath.Join(dir, "data"),
			"NodeID": id, "NodeURL": "http://" + public, "Redis": srv.Addr, "RedisPasswordFile": pwFile,
		}) + lbTestSFU
		path := filepath.Join(dir, "gatehouse.yml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		reps = append(reps, startBinary(t, path, "ADMIN_PASS=adminpass"))
	}
	hostOf := func(p *proc) string { return strings.TrimPrefix(p.hooks, "http://") }

	// One nginx: the http load balancer and nginx-rtmp, whose hooks go through the balancer.
	lbAddr := freeAddr(t)
	lb := "http://" + lbAddr
	var accessLog lbAccessLog
	ngx := nginxtest.Start(t, nginxBin, func(dir string, port int) string {
		accessLog = lbAccessLog(filepath.Join(dir, "access.log"))
		balancer := renderTemplate(t, lbNginxTemplate, map[string]string{
			"ReplicaA": hostOf(reps[0]), "ReplicaB": hostOf(reps[1]), "ReplicaC": hostOf(reps[2]), "LB": lbAddr,
		})
		app := renderTemplate(t, "protocols/nginxrtmp/testdata/nginx-application.conf", map[string]string{
			"Hook": lb + "/hooks/nginx-rtmp", "UpdateTimeout": "1s",
		})
		return fmt.Sprintf(`load_module %[1]s;
daemon off;
master_process off;
worker_processes 1;
error_log %[2]s/error.log info;
pid %[2]s/nginx.pid;
events { worker_connections 128; }
http {
    log_format lb '$request_method $uri $status $upstream_addr';
    access_log %[2]s/access.log lb;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
%[3]s
}
rtmp {
    server {
        listen 127.0.0.1:%[4]d;
%[5]s
    }
}
`, module, dir, balancer, port, app)
	})
	rtmp := "rtmp://" + ngx.Addr + "/live/"

	// Which replica does the balancer pick for this streaming server? That one is B.
	if code, _ := postMediaMTX(t, lb, mtx("", "", "", "read", "live/probe", "rtsp")); code == 200 {
		t.Fatalf("an anonymous read was allowed")
	}
	// nginx writes an access log line after it has sent the answer: wait for it.
	var probe []string
	eventually(t, "the balancer logs the probe", func() bool { probe = accessLog.lines(t); return len(probe) > 0 })
	var a, b, c *proc
	for i, p := range reps {
		if strings.HasSuffix(probe[len(probe)-1], " "+hostOf(p)) {
			b, a, c = p, reps[(i+1)%3], reps[(i+2)%3]
		}
	}
	if b == nil {
		t.Fatalf("the balancer's access log names no replica: %q", probe)
	}
	t.Logf("the balancer sends this streaming server's hooks to %s (B); A is %s, C is %s", hostOf(b), hostOf(a), hostOf(c))
	// answeredByB checks that the access log lines after mark include want ("POST /hooks/x 409")
	// answered by B, and that every line after mark was answered by B.
	answeredByB := func(mark int, want string) {
		t.Helper()
		// nginx logs a request after answering it: wait until the wanted line is there.
		var lines []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			lines = accessLog.since(t, mark)
			if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want+" ") }) || time.Now().After(deadline) {
				break
			}
		}
		found := false
		for _, l := range lines {
			if !strings.HasSuffix(l, " "+hostOf(b)) {
				t.Errorf("the balancer sent a hook to another replica than B: %q", l)
			}
			found = found || strings.HasPrefix(l, want+" ")
		}
		if !found {
			t.Errorf("no %q answered by B in the balancer's log: %q", want, lines)
		}
	}
	newKey := func(path string) (id, secret string) {
		t.Helper()
		code, body := apiCallBody(t, "POST", a.public+"/api/v1/keys", `{"path":"`+path+`"}`)
		var k struct{ ID, Secret string }
		_ = json.Unmarshal([]byte(body), &k)
		if code != 201 || k.Secret == "" {
			t.Fatalf("create a key for %s on A: %d %s", path, code, body)
		}
		leaks.secret("lb e2e stream key "+path, k.Secret)
		return k.ID, k.Secret
	}

	// 1. A key created on A: ffmpeg publishes through nginx-rtmp, admitted by B.
	mark := len(accessLog.lines(t))
	_, alice := newKey("live/alice")
	// Later steps need this publisher running until Redis is back: its limit is well above the
	// test's worst case (every wait at its bound); the cleanup stops it.
	_, aliceExited := testPatternExit(t, rtmp+alice, 180*time.Second)
	eventually(t, "B holds the ffmpeg publisher of live/alice", func() bool { return holds(sessionsOn(t, b), "nginx-rtmp:live/alice") })
	if holds(sessionsOn(t, a), "nginx-rtmp:live/alice") || holds(sessionsOn(t, c), "nginx-rtmp:live/alice") {
		t.Fatal("A or C holds the publisher the balancer sent to B")
	}
	answeredByB(mark, "POST /hooks/nginx-rtmp 302")

	// 2. A brute-force ban raised on A refuses on B.
	for i := range 12 { // distinct guesses: a repeated credential counts once
		postMediaMTX(t, a.hooks, mtx("203.0.113.7", "admin", fmt.Sprint("wrong-guess-", i), "publish", "live/x", "rtmp"))
	}
	if code, body := apiCall(t, "GET", a.public+"/api/v1/bans"); code != 200 || !strings.Contains(body, "203.0.113.7/32") {
		t.Fatalf("A did not ban the guessing address: %d %s", code, body)
	}
	mark = len(accessLog.lines(t))
	eventually(t, "B refuses the address A banned, through the balancer", func() bool {
		code, r := postMediaMTX(t, lb, mtx("203.0.113.7", "admin", "adminpass", "api", "", ""))
		return code != 200 && r.Reason == "banned"
	})
	answeredByB(mark, "POST /hooks/mediamtx 403")

	// 3. A WHIP publisher on A holds live/busy: a second publisher whose hook lands on B is refused.
	_, busy := newKey("live/busy")
	holder := publishVP8(t, a.public, "live/busy", "Bearer "+busy)
	eventually(t, "A holds the WHIP publisher of live/busy", func() bool { return holds(sessionsOn(t, a), "sfu:live/busy") })
	mark = len(accessLog.lines(t))
	if code, r := postMediaMTX(t, lb, jsonReq(map[string]any{"action": "publish", "path": "live/busy", "protocol": "rtmp", "query": "key=" + busy})); code != 409 || r.Reason != "path_busy" {
		t.Fatalf("second publisher of live/busy through the balancer: %d %+v, want 409 path_busy", code, r)
	}
	answeredByB(mark, "POST /hooks/mediamtx 409")
	mark = len(accessLog.lines(t))
	_, busyExited := testPatternExit(t, rtmp+busy, 20*time.Second) // above the 15 s wait: the limit cannot pass for a refusal
	select {
	case <-busyExited:
	case <-time.After(15 * time.Second):
		t.Fatal("ffmpeg publishing live/busy through nginx-rtmp was not refused")
	}
	answeredByB(mark, "POST /hooks/nginx-rtmp 403")
	if holds(sessionsOn(t, b), "nginx-rtmp:live/busy") {
		t.Fatal("B admitted a second publisher of live/busy")
	}
	holder.close()

	// 4. A key revoked on A ends the WHIP publisher B holds.
	camID, cam := newKey("live/cam")
	pub := publishVP8(t, b.public, "live/cam", "Bearer "+cam)
	pcEnded, pcUp := make(chan time.Time, 1), make(chan struct{}, 1)
	pub.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			select {
			case pcUp <- struct{}{}:
			default:
			}
		}
		if s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected {
			select {
			case pcEnded <- time.Now():
			default:
			}
		}
	})
	eventually(t, "B holds the WHIP publisher of live/cam", func() bool { return holds(sessionsOn(t, b), "sfu:live/cam") })
	// Revoke a connected publisher, as in life: a session ended before its DTLS handshake
	// finished cannot be told (no close_notify without DTLS keys), and sends no media either.
	if pub.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		select {
		case <-pcUp:
		case <-time.After(15 * time.Second):
			t.Fatal("the WHIP publisher of live/cam did not connect to B")
		}
	}
	revoked := time.Now()
	if code, body := apiCall(t, "DELETE", a.public+"/api/v1/keys/"+camID); code != 200 && code != 204 {
		t.Fatalf("revoke on A: %d %s", code, body)
	}
	// The criterion, not a performance figure: within one heartbeat. The revocation is
	// announced over Redis pub/sub at once, and a missed announcement is read by the next poll
	// of the revocation feed, which runs once a heartbeat. The poll period is not configurable,
	// so this bound cannot tell the two ways apart; the time logged below can (tens of
	// milliseconds: the announcement). The 2 s on top are slack for a loaded machine.
	const bound = redisstate.DefaultHeartbeat + 2*time.Second
	for holds(sessionsOn(t, b), "sfu:live/cam") {
		if time.Since(revoked) > bound {
			t.Fatalf("B still holds the WHIP publisher %v after the key was revoked on A", bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revoked on A: B ended the WHIP session after %v (bound %v: one heartbeat %v, and slack)",
		time.Since(revoked).Round(time.Millisecond), bound, redisstate.DefaultHeartbeat)
	// B closed its PeerConnection: pion sends a DTLS close_notify, on which the publisher's
	// pion closes its PeerConnection at once (without it, only ICE silence would end it, 5 s on).
	select {
	case at := <-pcEnded:
		t.Logf("the publisher's PeerConnection left connected %v after the revocation", at.Sub(revoked).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("the publisher's PeerConnection stayed connected 15 s after B ended its session")
	}

	// 5. Redis stops: new publishers are refused fast; the running ffmpeg keeps publishing.
	_, late := newKey("live/late")
	_, probeKey := newKey("live/probe")
	srv.Stop()
	mark = len(accessLog.lines(t))
	start := time.Now()
	code, _ := lbNginxForm(t, lb, late, "127.0.0.1", "901")
	took := time.Since(start)
	if code != 403 {
		t.Fatalf("a new publisher through the balancer with Redis down: %d, want 403", code)
	}
	t.Logf("with Redis down, B refused a new publisher in %v", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Fatalf("refusing a new publisher with Redis down took %v, want well under 5 s", took)
	}
	answeredByB(mark, "POST /hooks/nginx-rtmp 403")
	mark = len(accessLog.lines(t))
	time.Sleep(3500 * time.Millisecond) // three on_update rounds (notify_update_timeout 1s)
	select {
	case <-aliceExited:
		t.Fatal("the running ffmpeg was disconnected while Redis was down")
	default:
	}
	answeredByB(mark, "POST /hooks/nginx-rtmp 200") // the on_update calls, kept
	if !holds(sessionsOn(t, b), "nginx-rtmp:live/alice") {
		t.Fatal("B dropped the running publisher while Redis was down")
	}

	// Redis back on the same port: new publishers are admitted again, no gatehouse restarted.
	srv.Restart()
	eventually(t, "B admits a new publisher after Redis returned", func() bool {
		code, _ := lbNginxForm(t, lb, probeKey, "127.0.0.1", "902")
		return code == 302
	})
	testPatternExit(t, rtmp+late, 60*time.Second) // well above the 15 s wait for B to hold it
	eventually(t, "B holds a new ffmpeg publisher of live/late", func() bool { return holds(sessionsOn(t, b), "nginx-rtmp:live/late") })
	select {
	case <-aliceExited:
		t.Fatal("the running ffmpeg was disconnected when Redis returned")
	default:
	}
	for _, p := range reps {
		select {
		case err := <-p.done:
			t.Fatalf("replica %s exited: %v", hostOf(p), err)
		default:
		}
	}

	// 6. B stops (as for a deploy: SIGTERM; it answers the hooks in flight): nginx fails over.
	// The first hook after B's listener closed is tried on B, refused, and answered by another
	// replica (nginx then leaves B out for its fail_timeout); a new ffmpeg publisher is admitted
	// there through nginx-rtmp, and no hook goes unanswered meanwhile.
	mark = len(accessLog.lines(t))
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		t.Fatal("B did not stop within 30 s of SIGTERM")
	}
	_, after := newKey("live/after")
	testPatternExit(t, rtmp+after, 60*time.Second) // well above the waits below; the cleanup stops it
	var survivor *proc
	failedOver := ""
	var lines []string
	for deadline := time.Now().Add(15 * time.Second); survivor == nil || failedOver == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after B stopped, want a hook tried on B and answered by another replica, and a publish allowed by A or C (B %s, A %s, C %s): %q",
				hostOf(b), hostOf(a), hostOf(c), lines)
		}
		lines = accessLog.since(t, mark)
		for _, l := range lines {
			tried := lbUpstreams(l)
			if len(tried) > 1 && tried[0] == hostOf(b) && tried[len(tried)-1] != hostOf(b) {
				failedOver = l
			}
			// Before B stopped, every publisher had started: a publish allowed now is live/after.
			if strings.HasPrefix(l, "POST /hooks/nginx-rtmp 302 ") {
				for _, p := range []*proc{a, c} {
					if tried[len(tried)-1] == hostOf(p) {
						survivor = p
					}
				}
			}
		}
	}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) < 3 || !strings.HasPrefix(f[2], "2") && !strings.HasPrefix(f[2], "3") {
			t.Errorf("a hook went unanswered while B stopped: %q", l)
		}
	}
	t.Logf("B stopped: nginx failed over on %q; %s allowed the new publisher (B %s, A %s, C %s)",
		failedOver, hostOf(survivor), hostOf(b), hostOf(a), hostOf(c))
	eventually(t, "the replica that allowed it holds the new ffmpeg publisher of live/after", func() bool {
		return holds(sessionsOn(t, survivor), "nginx-rtmp:live/after")
	})
}

// lbUpstreams returns the upstream addresses of an access log line, in the order nginx tried
// them ("POST /hooks/x 200 127.0.0.1:1, 127.0.0.1:2"): the last one answered.
func lbUpstreams(line string) []string {
	f := strings.Fields(line)
	if len(f) < 4 {
		return nil
	}
	var out []string
	for _, a := range f[3:] {
		out = append(out, strings.TrimSuffix(a, ","))
	}
	return out
}
