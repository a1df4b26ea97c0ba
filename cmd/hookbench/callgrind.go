package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The -callgrind mode counts the user-space instructions the server spends per request, which
// (unlike req/s) does not move when other jobs share the machine. Each server runs under
// valgrind's callgrind: the real gatehouse binary on the bench config, and this program's bare
// handler (-serve-bare, the same net/http settings) in a process of its own. One keep-alive
// connection sends the same bytes wrk would, one request at a time; after a warm-up the counters
// are zeroed (callgrind_control -z), n requests are sent and the counters dumped (-d). The idle
// cost of the process over the same wall time (timers, the log flusher; measured once per
// process) is subtracted. Kernel work (syscalls, TCP) and the client are not counted, so the ratio
// to bare is stricter than the req/s ratio, where both share the machine's fixed costs.

// serveBare runs the bare handler on an ephemeral loopback port until killed, announcing its
// address on stderr as gatehouse does.
func serveBare() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "msg=\"gatehouse started\" hooks_listen=%s\n", ln.Addr())
	return bareServer().Serve(ln)
}

// bareServer is the floor: the same net/http server settings as gatehouse's hooks listener and
// three handlers chosen by path, a ladder of what any handler of a hook request costs before
// gatehouse's own work: "/" does nothing and answers 204 (the floor every ratio is taken
// against); "/reply" reads the body and answers as the MediaMTX hook allows (200, JSON content
// type, the same 55 bytes); "/decode" also decodes the MediaMTX request with encoding/json
// first. The switch costs a string comparison or two, so "/" is the handler it always was.
func bareServer() *http.Server {
	return &http.Server{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/reply":
				_, _ = io.Copy(io.Discard, r.Body)
			case "/decode":
				var req mediamtxRequest
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Action == "" {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
			default:
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(allowReply)
		})}
}

// mediamtxRequest is the body MediaMTX posts to its auth hook (the fields the reference decodes).
type mediamtxRequest struct {
	IP        string  `json:"ip"`
	User      string  `json:"user"`
	Password  string  `json:"password"`
	Token     string  `json:"token"`
	Action    string  `json:"action"`
	Path      string  `json:"path"`
	Protocol  string  `json:"protocol"`
	ID        *string `json:"id"`
	Query     string  `json:"query"`
	UserAgent string  `json:"userAgent"`
}

// allowReply is the MediaMTX hook's answer when it allows (checked against the real one at the
// start of a run).
var allowReply = []byte(`{"allowed":true,"reason":"allowed","message":"allowed"}`)

// cgServer is one process under callgrind.
type cgServer struct {
	pid  int
	addr string
	out  string  // callgrind's output file prefix
	idle float64 // instructions per second while idle
	stop func()  // kills the process and waits for it
}

func startCallgrind(ctx context.Context, dir, name string, args ...string) (*cgServer, error) {
	out := filepath.Join(dir, name)
	vg := append([]string{"--tool=callgrind", "--callgrind-out-file=" + out + ".%p"}, args...)
	cmd := exec.CommandContext(ctx, "valgrind", vg...)
	// Go's asynchronous preemption signals crash callgrind 3.19 (threads.c assertion).
	cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop, _ := waitOwned(cmd)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := startedRe.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		s := &cgServer{pid: cmd.Process.Pid, addr: a, out: out + "." + strconv.Itoa(cmd.Process.Pid), stop: stop}
		return s, nil
	case <-time.After(60 * time.Second):
		stop()
		return nil, fmt.Errorf("%s did not start under callgrind", name)
	}
}

func (s *cgServer) control(arg string) error {
	out, err := exec.Command("callgrind_control", arg, strconv.Itoa(s.pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("callgrind_control %s: %v: %s", arg, err, out)
	}
	return nil
}

var summaryRe = regexp.MustCompile(`(?m)^summary:\s+(\d+)`)

// measure zeroes the counters, runs fn and returns the instructions counted and the wall time.
func (s *cgServer) measure(fn func() error) (float64, time.Duration, error) {
	if err := s.control("-z"); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := fn(); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	before, _ := filepath.Glob(s.out + ".*")
	if err := s.control("-d"); err != nil {
		return 0, 0, err
	}
	after, _ := filepath.Glob(s.out + ".*")
	if len(after) <= len(before) {
		return 0, 0, errors.New("callgrind wrote no dump")
	}
	sort.Slice(after, func(i, j int) bool { return dumpSeq(after[i]) < dumpSeq(after[j]) })
	b, err := os.ReadFile(after[len(after)-1])
	if err != nil {
		return 0, 0, err
	}
	m := summaryRe.FindSubmatch(b)
	if m == nil {
		return 0, 0, errors.New("no summary in callgrind dump")
	}
	ir, err := strconv.ParseFloat(string(m[1]), 64)
	return ir, took, err
}

func dumpSeq(name string) int {
	n, _ := strconv.Atoi(name[strings.LastIndexByte(name, '.')+1:])
	return n
}

// calibrate measures the process's idle instructions per second.
func (s *cgServer) calibrate(d time.Duration) error {
	ir, took, err := s.measure(func() error { time.Sleep(d); return nil })
	s.idle = ir / took.Seconds()
	return err
}

// keepAlive is one client connection sending one target's request again and again.
type keepAlive struct {
	conn net.Conn
	r    *bufio.Reader
	req  []byte
}

func dialTarget(addr string, t target) (*keepAlive, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	method := t.method
	if method == "" {
		method = "POST"
	}
	// What wrk sends: the request line, Host, the script's headers, Content-Length for a body.
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, t.path, addr)
	keys := make([]string, 0, len(t.headers))
	for k := range t.headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, t.headers[k])
	}
	if t.body != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\n", t.contentType, len(t.body))
	}
	b.WriteString("\r\n")
	b.WriteString(t.body)
	return &keepAlive{conn: c, r: bufio.NewReader(c), req: []byte(b.String())}, nil
}

func (k *keepAlive) do(n int) error {
	for range n {
		if _, err := k.conn.Write(k.req); err != nil {
			return err
		}
		resp, err := http.ReadResponse(k.r, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	return nil
}

// cgResult is one target's count.
type cgResult struct {
	name    string
	perReq  float64
	rawReq  float64 // before subtracting idle
	seconds float64
}

func runCallgrind(bin, cfg string, n, warm, reps int, keep, only string, out io.Writer) error {
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found", tool)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := keep
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil { // valgrind cannot write into a missing one
			return err
		}
	} else {
		d, err := os.MkdirTemp("", "hookbench-cg")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bare, err := startCallgrind(ctx, dir, "bare", self, "-serve-bare")
	if err != nil {
		return err
	}
	defer bare.stop()
	gh, err := startCallgrind(ctx, dir, "gatehouse", bin, "run", "-config", cfg)
	if err != nil {
		return err
	}
	defer gh.stop()
	for _, s := range []*cgServer{bare, gh} {
		if err := s.calibrate(2 * time.Second); err != nil {
			return err
		}
	}
	var results []cgResult
	for _, t := range targets() {
		if len(t.bodies) > 0 || t.notify || t.quiet {
			continue // the go-live transitions need a fresh stream per pair, and only wrk mode starts a gatehouse without the decision log
		}
		if !t.bare && !strings.Contains(t.name, only) {
			continue
		}
		s := gh
		if t.bare {
			s = bare
		}
		k, err := dialTarget(s.addr, t)
		if err != nil {
			return err
		}
		if err := k.do(warm); err != nil {
			return fmt.Errorf("%s: warm-up: %w", t.name, err)
		}
		var best cgResult
		for r := range reps { // the lowest of reps: a stray GC cycle or timer only adds
			ir, took, err := s.measure(func() error { return k.do(n) })
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			res := cgResult{name: t.name, rawReq: ir / float64(n), perReq: (ir - s.idle*took.Seconds()) / float64(n), seconds: took.Seconds()}
			if r == 0 || res.perReq < best.perReq {
				best = res
			}
		}
		k.conn.Close()
		results = append(results, best)
	}
	fmt.Fprintf(out, "hookbench -callgrind: user-space instructions per request in the server process, one keep-alive connection, %d requests after %d warm-up, lowest of %d, idle cost subtracted (bare %.0f, gatehouse %.0f instructions/s under callgrind)\n\n",
		n, warm, reps, bare.idle, gh.idle)
	fmt.Fprintln(out, "| target | instructions/request | ratio bare/target |")
	fmt.Fprintln(out, "|---|---:|---:|")
	floor := results[0].perReq
	for _, r := range results {
		fmt.Fprintf(out, "| %s | %.0f | %.2f× |\n", r.name, r.perReq, floor/r.perReq)
	}
	return nil
}
