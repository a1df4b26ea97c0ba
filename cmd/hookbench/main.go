// Command hookbench measures gatehouse's hook endpoints under HTTP load, side by side in one run
// with a bare net/http handler that answers 204 (the floor) and two reference handlers that do
// what any MediaMTX hook must (read the body and answer 200 JSON; decode it with encoding/json
// first), and with a third gatehouse process whose decision log line is off (level warn). It
// starts the real gatehouse binary on testdata/bench.yml, drives every target with wrk (Debian's
// package), with keep-alive and with a new connection per request (as MediaMTX and nginx-rtmp
// call), interleaving rounds so machine noise hits every target alike, and prints a Markdown
// table of medians: req/s, the ratios to the floor and to the encoding/json reference, and the
// serving process's CPU per request (read from /proc: Linux only). -callgrind counts
// instructions per request instead (callgrind.go).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/cmd/internal/procstat"
)

// target is one endpoint to load.
type target struct {
	name        string
	method      string // default POST
	path        string // on the hooks listener, or on the bare server when bare
	contentType string
	body        string
	headers     map[string]string
	bodies      []string // alternated per request instead of body
	bare        bool     // served by the bare server (the floor and its reference handlers)
	notify      bool     // send to the gatehouse whose go-live webhooks are configured
	quiet       bool     // send to the gatehouse that writes no decision log line (wrk mode only)
}

// goLive alternates on_publish and on_publish_done for one stream, so every pair of requests is a
// live and an offline transition that produces two notifications when webhooks are configured.
// Each pair uses its own stream name and client id (SEQ is replaced per pair), because the
// registry rightly ignores a session that has ended.
var goLive = []string{
	"app=live&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%2Flive&pageurl=&addr=127.0.0.1&clientid=SEQ&call=publish&name=showSEQ&type=live&user=testuser&pass=testpass",
	"app=live&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%2Flive&pageurl=&addr=127.0.0.1&clientid=SEQ&call=publish_done&name=showSEQ",
}

// mediamtxBody is the MediaMTX hook request of the sha256 user (also the reference handlers' body).
const mediamtxBody = `{"ip":"127.0.0.1","user":"testuser","password":"testpass","token":"testpass","action":"publish","path":"live/cam","protocol":"rtmp","id":null,"query":"","userAgent":"bench"}`

func targets() []target {
	return []target{
		{name: "bare handler (204)", bare: true, path: "/", contentType: "application/json", body: `{"x":1}`},
		{name: "reference: read the MediaMTX body, answer 200 JSON", bare: true, path: "/reply", contentType: "application/json", body: mediamtxBody},
		{name: "reference: encoding/json decode, answer 200 JSON", bare: true, path: "/decode", contentType: "application/json", body: mediamtxBody},
		{name: "MediaMTX hook, sha256 user, allow", path: "/hooks/mediamtx", contentType: "application/json", body: mediamtxBody},
		{name: "MediaMTX hook, sha256 user, allow, decision log off", path: "/hooks/mediamtx", contentType: "application/json", body: mediamtxBody, quiet: true},
		{name: "MediaMTX hook, anonymous read", path: "/hooks/mediamtx", contentType: "application/json",
			body: `{"ip":"127.0.0.1","user":"","password":"","token":"","action":"read","path":"live/cam","protocol":"hls","id":null,"query":"","userAgent":"bench"}`},
		{name: "nginx-rtmp on_publish, sha256 user", path: "/hooks/nginx-rtmp", contentType: "application/x-www-form-urlencoded",
			body: "app=live&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%2Flive&pageurl=&addr=127.0.0.1&clientid=1&call=publish&name=cam&type=live&user=testuser&pass=testpass"},
		{name: "OME opening (publish), sha256 user", path: "/hooks/ome", contentType: "application/json",
			body: `{"client":{"address":"127.0.0.1","port":51234},"request":{"direction":"incoming","protocol":"RTMP","status":"opening","time":"2026-05-12T13:45:00.123+00:00","url":"rtmp://127.0.0.1:1935/live/cam?user=testuser&pass=testpass"}}`},
		{name: "SRS on_publish, sha256 user", path: "/hooks/srs", contentType: "application/json",
			body: `{"server_id":"vid-0xk989d","service_id":"9ej8d2b6","action":"on_publish","client_id":"341w361a","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1/live","stream":"cam","param":"?user=testuser&pass=testpass","stream_url":"/live/cam","stream_id":"vid-6r1z1i3"}`},
		{name: "forward-auth playlist, anonymous read", method: "GET", path: "/hooks/forward-auth",
			headers: map[string]string{"X-Original-URI": "/hls/live/cam/index.m3u8", "X-Original-Method": "GET", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "media.example.com"}},
		{name: "nginx-rtmp publish/done alternating, no webhooks", path: "/hooks/nginx-rtmp", contentType: "application/x-www-form-urlencoded", bodies: goLive},
		{name: "nginx-rtmp publish/done alternating, 2 webhooks", path: "/hooks/nginx-rtmp", contentType: "application/x-www-form-urlencoded", bodies: goLive, notify: true},
	}
}

func main() {
	bin := flag.String("gatehouse", "bin/gatehouse", "gatehouse binary")
	cfg := flag.String("config", "testdata/bench.yml", "gatehouse config for the run (it must hold 'level: info' and 'hooks_listen: \"127.0.0.1:0\"' once each: the run makes a copy at level warn on a port of its own)")
	dur := flag.Duration("duration", 4*time.Second, "wrk duration per round")
	conns := flag.Int("conns", 32, "wrk connections")
	rounds := flag.Int("rounds", 3, "interleaved rounds per target and mode")
	cg := flag.Bool("callgrind", false, "count server instructions per request under valgrind's callgrind instead of running wrk")
	requests := flag.Int("requests", 2000, "-callgrind: requests counted per target")
	warm := flag.Int("warmup", 300, "-callgrind: requests before counting")
	reps := flag.Int("reps", 3, "-callgrind: counts per target (the lowest is reported)")
	keep := flag.String("keep", "", "-callgrind: keep callgrind's dumps in this directory (for callgrind_annotate)")
	only := flag.String("only", "", "-callgrind: count only the targets whose name contains this (and the bare and reference handlers)")
	bareOnly := flag.Bool("serve-bare", false, "serve the bare handler only (used by -callgrind)")
	flag.Parse()
	var err error
	switch {
	case *bareOnly:
		err = serveBare()
	case *cg:
		err = runCallgrind(*bin, *cfg, *requests, *warm, *reps, *keep, *only, os.Stdout)
	default:
		err = run(*bin, *cfg, *dur, *conns, *rounds, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookbench:", err)
		os.Exit(1)
	}
}

var startedRe = regexp.MustCompile(`msg="gatehouse started".* hooks_listen=(\S+)`)

func run(bin, cfg string, dur time.Duration, conns, rounds int, out io.Writer) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found (make deps installs it)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dir, err := os.MkdirTemp("", "hookbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// A webhook receiver that counts deliveries, for the gatehouse with notifications.
	var delivered atomic.Int64
	recvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	recv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = recv.Serve(recvLn) }()
	defer recv.Close()
	base, err := os.ReadFile(cfg)
	if err != nil {
		return err
	}
	if _, err := quietConfig(base, "127.0.0.1:1"); err != nil { // before anything starts
		return err
	}
	notifyCfg := filepath.Join(dir, "notify.yml")
	hook := "http://" + recvLn.Addr().String() + "/hook"
	extra := fmt.Sprintf("notify:\n  webhooks:\n    - {name: discord, url: %q, format: discord}\n    - {name: json, url: %q, format: json, secret: bench-secret-0123456789}\n", hook, hook)
	if err := os.WriteFile(notifyCfg, append(base, extra...), 0o600); err != nil {
		return err
	}

	hooks, err := startGatehouse(ctx, bin, cfg)
	if err != nil {
		return err
	}
	defer hooks.stop()
	notifying, err := startGatehouse(ctx, bin, notifyCfg)
	if err != nil {
		return err
	}
	defer notifying.stop()
	// The same gatehouse without its decision log line (level warn): what the line costs.
	quietly, err := startQuietGatehouse(ctx, bin, base, filepath.Join(dir, "quiet.yml"))
	if err != nil {
		return err
	}
	defer quietly.stop()
	for _, g := range []*server{hooks, quietly} {
		if err := checkAllowReply("http://" + g.addr + "/hooks/mediamtx"); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bare := bareServer()
	go func() { _ = bare.Serve(ln) }()
	defer bare.Close()
	// The bare server's CPU is this whole process's: its handlers, and also its garbage
	// collector, the wrk output reads and the gatehouse log drains (small: the logs are only
	// drained, and only the gatehouse under load writes).
	self := &server{addr: ln.Addr().String(), pid: os.Getpid()}

	ts := targets()
	modes := []string{"keep-alive", "new connection"}
	results := map[string][]float64{}
	cpu := map[string][]float64{} // the serving process's CPU time per request, µs
	for r := 0; r < rounds; r++ {
		for _, mode := range modes {
			for i, t := range ts {
				srv := hooks
				switch {
				case t.bare:
					srv = self
				case t.notify:
					srv = notifying
				case t.quiet:
					srv = quietly
				}
				base := "http://" + srv.addr
				script := filepath.Join(dir, fmt.Sprintf("t%d-%d.lua", i, len(mode)))
				if err := os.WriteFile(script, []byte(luaScript(t, mode == "new connection")), 0o600); err != nil {
					return err
				}
				d := dur
				if mode == "new connection" {
					d = dur / 2 // keeps TIME_WAIT sockets within the ephemeral port range
				}
				before, err := srv.cpu()
				if err != nil {
					return err
				}
				rps, requests, err := wrk(ctx, base+t.path, script, d, conns)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", t.name, mode, err)
				}
				after, err := srv.cpu()
				if err != nil {
					return err
				}
				key := mode + "|" + t.name
				results[key] = append(results[key], rps)
				cpu[key] = append(cpu[key], float64((after-before).Microseconds())/float64(max(requests, 1)))
			}
		}
	}

	fmt.Fprintf(out, "hookbench: %s/%s, %d CPUs, Go %s, wrk -t2 -c%d, %v per round (half for new connections), %d interleaved rounds, medians\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), conns, dur, rounds)
	fmt.Fprintf(out, "Go-live webhooks delivered during the run (receiver on loopback): %d\n\n", delivered.Load())
	fmt.Fprintln(out, "Server CPU: user + system time of the serving process (/proc/<pid>/stat) per request, median. System time includes the loopback TCP work done in the server's own system calls (a send runs part of wrk's receive side, and wrk's sends part of the server's). For the bare and reference handlers it is all of hookbench's process (also its GC, its wrk output reads and the gatehouse log drains).")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| mode | target | req/s (median) | ratio to bare | ratio to the encoding/json reference | server CPU µs/request |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|")
	for _, mode := range modes {
		floor := median(results[mode+"|"+ts[0].name])
		ref := median(results[mode+"|"+ts[decodeRef(ts)].name])
		for _, t := range ts {
			m := median(results[mode+"|"+t.name])
			fmt.Fprintf(out, "| %s | %s | %.0f | %.2f× | %.2f× | %.1f |\n", mode, t.name, m, m/floor, m/ref, median(cpu[mode+"|"+t.name]))
		}
	}
	return nil
}

// decodeRef is the index in ts of the reference handler that decodes with encoding/json.
func decodeRef(ts []target) int {
	return slices.IndexFunc(ts, func(t target) bool { return t.bare && t.path == "/decode" })
}

// checkAllowReply makes sure the reference handlers answer with the bytes the MediaMTX hook
// answers an allowed request with, so the ladder compares like with like.
func checkAllowReply(url string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Post(url, "application/json", strings.NewReader(mediamtxBody))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(got) != string(allowReply) || resp.Header.Get("Content-Type") != "application/json" {
		return fmt.Errorf("the MediaMTX hook answered %d %q (%s), the reference handlers answer 200 %q: update allowReply",
			resp.StatusCode, got, resp.Header.Get("Content-Type"), allowReply)
	}
	return nil
}

// quietConfig is the bench config with its log level at warn (no decision lines, no start line)
// and its hooks listener at addr.
func quietConfig(cfg []byte, addr string) ([]byte, error) {
	s := string(cfg)
	for _, r := range [][2]string{{"level: info", "level: warn"}, {`hooks_listen: "127.0.0.1:0"`, fmt.Sprintf("hooks_listen: %q", addr)}} {
		if strings.Count(s, r[0]) != 1 {
			return nil, fmt.Errorf("the bench config must hold %q once", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	return []byte(s), nil
}

// freeLoopbackAddr returns a loopback address with a port free at the time of the call.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startQuietGatehouse runs the binary on the bench config base with its log level at warn,
// written to cfgPath, until stop is called. At that level gatehouse logs no start line, so its
// hooks listener gets a port reserved here; another program may take that port between the
// reservation and gatehouse's bind, in which case gatehouse exits and a new port is tried (three
// times). It returns once the port accepts connections while the process still runs.
func startQuietGatehouse(ctx context.Context, bin string, base []byte, cfgPath string) (*server, error) {
	var lastErr error
	for range 3 {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		cfg, err := quietConfig(base, addr)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
			return nil, err
		}
		gh := exec.CommandContext(ctx, bin, "run", "-config", cfgPath)
		var stderr tailBuffer
		gh.Stderr = &stderr
		if err := gh.Start(); err != nil {
			return nil, err
		}
		stop, exited := waitOwned(gh)
		if err := awaitListening(addr, exited); err != nil {
			stop()
			lastErr = fmt.Errorf("gatehouse (decision log off) on %s: %w: %s", addr, err, stderr.String())
			continue
		}
		return &server{addr: addr, pid: gh.Process.Pid, stop: stop}, nil
	}
	return nil, lastErr
}

// awaitListening waits up to 20 s until addr accepts a connection, and fails at once if the
// process exits first.
func awaitListening(addr string, exited <-chan struct{}) error {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			return errors.New("exited")
		case <-time.After(50 * time.Millisecond):
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			select {
			case <-exited: // someone else's listener answered; ours is gone
				return errors.New("exited")
			default:
				return nil
			}
		}
	}
	return errors.New("not listening after 20 s")
}

// tailBuffer keeps the last 4 KiB written to it (a process's stderr, for an error message).
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - 4096; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

func luaScript(t target, closeConn bool) string {
	var b strings.Builder
	method := t.method
	if method == "" {
		method = "POST"
	}
	fmt.Fprintf(&b, "wrk.method = %q\n", method)
	if t.body != "" {
		fmt.Fprintf(&b, "wrk.body = %q\n", t.body)
		fmt.Fprintf(&b, "wrk.headers[\"Content-Type\"] = %q\n", t.contentType)
	}
	if len(t.bodies) > 0 {
		fmt.Fprintf(&b, "wrk.headers[\"Content-Type\"] = %q\n", t.contentType)
		b.WriteString("local bodies = {")
		for _, body := range t.bodies {
			fmt.Fprintf(&b, "%q, ", body)
		}
		b.WriteString("}\nlocal n = 1\nfunction setup(thread) thread:set(\"tid\", n); n = n + 1 end\n" +
			"local i = 0\nrequest = function()\n  local body = bodies[(i % #bodies) + 1]\n" +
			"  local seq = tostring(tid) .. \"x\" .. tostring(math.floor(i / #bodies))\n  i = i + 1\n" +
			"  return wrk.format(nil, nil, nil, (body:gsub(\"SEQ\", seq)))\nend\n")
	}
	for k, v := range t.headers {
		fmt.Fprintf(&b, "wrk.headers[%q] = %q\n", k, v)
	}
	if closeConn {
		b.WriteString("wrk.headers[\"Connection\"] = \"close\"\n")
	}
	return b.String()
}

var rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
var requestsRe = regexp.MustCompile(`(\d+) requests in `)
var non2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)

// wrk runs one load and returns its req/s and the number of requests answered.
func wrk(ctx context.Context, url, script string, d time.Duration, conns int) (rps float64, requests int64, err error) {
	secs := strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+secs+"s", "-s", script, url).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %v: %s", err, out)
	}
	if m := non2xxRe.FindSubmatch(out); m != nil { // a misconfigured run must not pass as fast
		return 0, 0, fmt.Errorf("non-2xx answers (%s): %s", m[1], out)
	}
	m, n := rpsRe.FindSubmatch(out), requestsRe.FindSubmatch(out)
	if m == nil || n == nil {
		return 0, 0, fmt.Errorf("no Requests/sec or request count in wrk output: %s", out)
	}
	if rps, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
		return 0, 0, err
	}
	requests, err = strconv.ParseInt(string(n[1]), 10, 64)
	return rps, requests, err
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// startGatehouse runs the binary on cfg until stop is called (which kills it and waits for it
// to exit) and returns its hooks address. Its log is read (and discarded) for the whole run, as a
// log shipper would.
func startGatehouse(ctx context.Context, bin, cfg string) (*server, error) {
	gh := exec.CommandContext(ctx, bin, "run", "-config", cfg)
	stderr, err := gh.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := gh.Start(); err != nil {
		return nil, err
	}
	stop, _ := waitOwned(gh)
	hooks := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			if m := startedRe.FindStringSubmatch(line); m != nil {
				hooks <- m[1]
				break
			}
			if err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, r) // the rest only drained: the load driver's CPU is shared
	}()
	select {
	case addr := <-hooks:
		return &server{addr: addr, pid: gh.Process.Pid, stop: stop}, nil
	case <-time.After(20 * time.Second):
		stop()
		return nil, errors.New("gatehouse did not start")
	}
}

// server is a process serving targets.
type server struct {
	addr string
	pid  int
	stop func() // kills the process and waits for it (nil for this program's own bare server)
}

// cpu returns the user + system CPU time the process has used so far.
func (s *server) cpu() (time.Duration, error) { return procstat.CPU(s.pid) }

// waitOwned waits for a started command in a goroutine and returns the function that kills it
// and waits for that goroutine — a process is never left running after hookbench returns (the
// context's kill alone races with the program's exit) — and a channel closed when it has exited.
func waitOwned(cmd *exec.Cmd) (stop func(), exited <-chan struct{}) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = cmd.Process.Kill()
		<-done
	}, done
}
