// Command hookbench measures gatehouse's hook endpoints under HTTP load, side by side in one run
// with a bare net/http handler that answers 204 (the floor). It starts the real gatehouse binary
// on testdata/bench.yml, drives every target with wrk (Debian's package), with keep-alive and
// with a new connection per request (as MediaMTX and nginx-rtmp call), interleaving rounds so
// machine noise hits every target alike, and prints a Markdown table of medians and ratios.
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
	"sync/atomic"
	"time"
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
	bare        bool
	notify      bool // send to the gatehouse whose go-live webhooks are configured
}

// goLive alternates on_publish and on_publish_done for one stream, so every pair of requests is a
// live and an offline transition that produces two notifications when webhooks are configured.
// Each pair uses its own stream name and client id (SEQ is replaced per pair), because the
// registry rightly ignores a session that has ended.
var goLive = []string{
	"app=live&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%2Flive&pageurl=&addr=127.0.0.1&clientid=SEQ&call=publish&name=showSEQ&type=live&user=testuser&pass=testpass",
	"app=live&flashver=FMLE%2F3.0&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%2Flive&pageurl=&addr=127.0.0.1&clientid=SEQ&call=publish_done&name=showSEQ",
}

func targets() []target {
	return []target{
		{name: "bare handler (204)", bare: true, path: "/", contentType: "application/json", body: `{"x":1}`},
		{name: "MediaMTX hook, sha256 user, allow", path: "/hooks/mediamtx", contentType: "application/json",
			body: `{"ip":"127.0.0.1","user":"testuser","password":"testpass","token":"testpass","action":"publish","path":"live/cam","protocol":"rtmp","id":null,"query":"","userAgent":"bench"}`},
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
	cfg := flag.String("config", "testdata/bench.yml", "gatehouse config for the run")
	dur := flag.Duration("duration", 4*time.Second, "wrk duration per round")
	conns := flag.Int("conns", 32, "wrk connections")
	rounds := flag.Int("rounds", 3, "interleaved rounds per target and mode")
	cg := flag.Bool("callgrind", false, "count server instructions per request under valgrind's callgrind instead of running wrk")
	requests := flag.Int("requests", 2000, "-callgrind: requests counted per target")
	warm := flag.Int("warmup", 300, "-callgrind: requests before counting")
	reps := flag.Int("reps", 3, "-callgrind: counts per target (the lowest is reported)")
	keep := flag.String("keep", "", "-callgrind: keep callgrind's dumps in this directory (for callgrind_annotate)")
	only := flag.String("only", "", "-callgrind: count only the targets whose name contains this (and the bare handler)")
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
	notifyCfg := filepath.Join(dir, "notify.yml")
	hook := "http://" + recvLn.Addr().String() + "/hook"
	extra := fmt.Sprintf("notify:\n  webhooks:\n    - {name: discord, url: %q, format: discord}\n    - {name: json, url: %q, format: json, secret: bench-secret-0123456789}\n", hook, hook)
	if err := os.WriteFile(notifyCfg, append(base, extra...), 0o600); err != nil {
		return err
	}

	hooksAddr, stopHooks, err := startGatehouse(ctx, bin, cfg)
	if err != nil {
		return err
	}
	defer stopHooks()
	notifyAddr, stopNotify, err := startGatehouse(ctx, bin, notifyCfg)
	if err != nil {
		return err
	}
	defer stopNotify()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bare := bareServer()
	go func() { _ = bare.Serve(ln) }()
	defer bare.Close()

	ts := targets()
	modes := []string{"keep-alive", "new connection"}
	results := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, mode := range modes {
			for i, t := range ts {
				base := "http://" + hooksAddr
				switch {
				case t.bare:
					base = "http://" + ln.Addr().String()
				case t.notify:
					base = "http://" + notifyAddr
				}
				script := filepath.Join(dir, fmt.Sprintf("t%d-%d.lua", i, len(mode)))
				if err := os.WriteFile(script, []byte(luaScript(t, mode == "new connection")), 0o600); err != nil {
					return err
				}
				d := dur
				if mode == "new connection" {
					d = dur / 2 // keeps TIME_WAIT sockets within the ephemeral port range
				}
				rps, err := wrk(ctx, base+t.path, script, d, conns)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", t.name, mode, err)
				}
				key := mode + "|" + t.name
				results[key] = append(results[key], rps)
			}
		}
	}

	fmt.Fprintf(out, "hookbench: %s/%s, %d CPUs, Go %s, wrk -t2 -c%d, %v per round (half for new connections), %d interleaved rounds, medians\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), conns, dur, rounds)
	fmt.Fprintf(out, "Go-live webhooks delivered during the run (receiver on loopback): %d\n\n", delivered.Load())
	fmt.Fprintln(out, "| mode | target | req/s (median) | ratio to bare |")
	fmt.Fprintln(out, "|---|---|---:|---:|")
	for _, mode := range modes {
		floor := median(results[mode+"|"+ts[0].name])
		for _, t := range ts {
			m := median(results[mode+"|"+t.name])
			fmt.Fprintf(out, "| %s | %s | %.0f | %.2f× |\n", mode, t.name, m, m/floor)
		}
	}
	return nil
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
var non2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)

func wrk(ctx context.Context, url, script string, d time.Duration, conns int) (float64, error) {
	secs := strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+secs+"s", "-s", script, url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v: %s", err, out)
	}
	if m := non2xxRe.FindSubmatch(out); m != nil { // a misconfigured run must not pass as fast
		return 0, fmt.Errorf("non-2xx answers (%s): %s", m[1], out)
	}
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no Requests/sec in wrk output: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
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
func startGatehouse(ctx context.Context, bin, cfg string) (addr string, stop func(), err error) {
	gh := exec.CommandContext(ctx, bin, "run", "-config", cfg)
	stderr, err := gh.StderrPipe()
	if err != nil {
		return "", nil, err
	}
	if err := gh.Start(); err != nil {
		return "", nil, err
	}
	stop = waitOwned(gh)
	hooks := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := startedRe.FindStringSubmatch(sc.Text()); m != nil {
				hooks <- m[1]
			}
		}
	}()
	select {
	case addr := <-hooks:
		return addr, stop, nil
	case <-time.After(20 * time.Second):
		stop()
		return "", nil, errors.New("gatehouse did not start")
	}
}

// waitOwned waits for a started command in a goroutine and returns the function that kills it
// and waits for that goroutine: a process is never left running after hookbench returns (the
// context's kill alone races with the program's exit).
func waitOwned(cmd *exec.Cmd) func() {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = cmd.Process.Kill()
		<-done
	}
}
