package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// State mode (-state, make statebench): the state layer's cost, in one run (docs/benchmarks.md
// "Replicas with Redis"):
//
//  1. throughput: two gatehouse processes with the same users, keys and token provider, one with
//     the in-process state (backend memory: SQLite keys, bans in memory) and one with backend
//     redis on a redis-server this tool starts itself on a free loopback port. Each decision
//     class is driven closed loop against each process in turn, rounds alternating A,B then B,A
//     so that drift of a busy machine falls on both alike. Classes: cached decisions (MediaMTX
//     read hooks, one third each: an internal user with an argon2id hash already verified, a
//     JWT already verified, a static stream key from the YAML), which must not wait on Redis,
//     and managed stream keys (one store read per request: SQLite, or Redis).
//  2. revocation latency: a second redis-mode process (B) joins the first (A) on the same Redis.
//     Per iteration a managed key is created through A's API, published with through B's
//     nginx-rtmp hook (B holds the session), and revoked through A's API; measured from sending
//     the revoke to B's call of nginx-rtmp's control drop for that client (a fake control on
//     loopback), and to B's refusal of the key on a new publish.

const stateConfig = `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
data_dir: %DATA%
watch_config: false
log:
  level: info
auth:
  methods: [internal, keys, jwt]
  bruteforce: {user_max_failures: 0}
  internal:
    users:
      - user: bob
        pass: argon2:$argon2id$v=19$m=19456,t=2,p=1$qRLs9nYhl08i5vzXNUuSJg$TKFnionMl6PgQc09CaIYAbOWyFK92nXOjsYZWBWrmCs
        permissions: [{action: read, path: "live/*"}]
      - user: admin
        pass: statebench-admin-pass
        permissions: [{action: api}]
  keys:
    - {key: ` + benchStaticKey + `, path: live/cam, actions: [read]}
  jwt:
    providers:
      - name: bench
        issuer: statebench
        hmac_secret: ` + benchHMAC + `
hooks:
  nginx_rtmp:
    control_url: %CONTROL%
`

const (
	benchStaticKey = "static-bench-key-0123456789"
	benchHMAC      = "statebench-hmac-secret-0123456789abcdef"
	benchAdmin     = "statebench-admin-pass"
	benchPrefix    = "statebench:"
)

// stateBench is one run of the state mode.
type stateBench struct {
	bin    string
	dir    string // temporary: configs, data dirs, Redis's dir
	round  time.Duration
	rounds int
	conns  int
	revs   int
	out    io.Writer
	client *http.Client
	drops  chan drop // fake nginx-rtmp control: every drop
}

// gh is one gatehouse process of the run.
type gh struct {
	name          string
	public, hooks string
	managedKey    string // a managed key for read on live/cam, created through its API
	exited        <-chan struct{}
	cancel        context.CancelFunc
}

func runState(bin string, round time.Duration, rounds, conns, revs int, redisBin string, out io.Writer) error {
	dir, err := os.MkdirTemp("", "statebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &stateBench{bin: bin, dir: dir, round: round, rounds: rounds, conns: conns, revs: revs, out: out,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns * 2, MaxConnsPerHost: conns * 2},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		drops: make(chan drop, 16)}

	control, err := b.fakeControl()
	if err != nil {
		return err
	}
	defer control.Close()

	rdb, err := startRedis(redisBin, filepath.Join(dir, "redis"))
	if err != nil {
		return err
	}
	defer rdb.stop()

	mem, err := b.start("memory", "", control.URL)
	if err != nil {
		return err
	}
	defer mem.stop()
	red, err := b.start("redis", rdb.addr, control.URL)
	if err != nil {
		return err
	}
	defer red.stop()

	fmt.Fprintf(out, "statebench: %s/%s, %d CPUs, Go %s, %s; per class and mode %d rounds of %v closed loop at %d connections, alternating A,B / B,A; %d revocations\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), rdb.version, rounds, round, conns, revs)
	if err := b.throughput(mem, red, rdb.addr); err != nil {
		return err
	}
	// B joins A's fleet only now, so that its heartbeats are not part of the throughput run.
	nodeB, err := b.start("redis-b", rdb.addr, control.URL)
	if err != nil {
		return err
	}
	defer nodeB.stop()
	return b.revocation(red, nodeB)
}

// stop ends the process and waits for it.
func (g *gh) stop() { g.cancel(); <-g.exited }

// start writes a config (state in Redis at redisAddr, or in process when it is "") and starts
// the binary on it.
func (b *stateBench) start(name, redisAddr, control string) (*gh, error) {
	d := filepath.Join(b.dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	src := strings.NewReplacer("%DATA%", filepath.Join(d, "data"), "%CONTROL%", control).Replace(stateConfig)
	if redisAddr != "" {
		src += "state:\n  backend: redis\n  node_id: statebench-" + name + "\n  redis:\n    addrs: [" + redisAddr + "]\n    key_prefix: \"" + benchPrefix + "\"\n"
	}
	cfg := filepath.Join(d, "gatehouse.yml")
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	public, hooks, _, exited, err := start(ctx, b.bin, cfg)
	g := &gh{name: name, public: "http://" + public, hooks: "http://" + hooks, exited: exited, cancel: cancel}
	if err != nil {
		g.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return g, nil
}

// benchJWT mints the token every process accepts: HS256 from provider "bench", read on live/*.
func benchJWT() string {
	now := time.Now()
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "statebench", "sub": "viewer", "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		"mediamtx_permissions": []map[string]string{{"action": "read", "path": "live/*"}},
	}).SignedString([]byte(benchHMAC))
	return tok
}

// mtxRead is a MediaMTX read hook for live/cam with the given credentials.
func mtxRead(hooks, user, pass, token, query string) *http.Request {
	body, _ := json.Marshal(map[string]any{"ip": "127.0.0.1", "user": user, "password": pass, "token": token,
		"action": "read", "path": "live/cam", "protocol": "rtsp", "id": nil, "query": query, "userAgent": "statebench"})
	r, _ := http.NewRequest("POST", hooks+"/hooks/mediamtx", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// cachedClass is the index in classes of the decisions that must not wait on Redis.
const cachedClass = 0

// classes returns the decision classes driven against g.
func classes(g *gh, token string) []endpoint {
	return []endpoint{
		{"cached (argon2id user, JWT, static key)", func(i int) (*http.Request, kind) {
			switch i % 3 {
			case 0:
				return mtxRead(g.hooks, "bob", "bob-pass", "", ""), allowed
			case 1:
				return mtxRead(g.hooks, "", "", token, ""), allowed
			}
			return mtxRead(g.hooks, "", "", "", "key="+benchStaticKey), allowed
		}},
		{"managed stream key", func(int) (*http.Request, kind) {
			return mtxRead(g.hooks, "", "", "", "key="+g.managedKey), allowed
		}},
	}
}

// api calls g's public API as the admin.
func (b *stateBench) api(g *gh, method, path, body string, out any) (int, error) {
	req, _ := http.NewRequest(method, g.public+path, strings.NewReader(body))
	req.SetBasicAuth("admin", benchAdmin)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, nil
}

// createKey creates a managed key on g's store and returns its id and secret.
func (b *stateBench) createKey(g *gh, body string) (id, secret string, err error) {
	var k struct{ ID, Secret string }
	code, err := b.api(g, "POST", "/api/v1/keys", body, &k)
	if err != nil {
		return "", "", err
	}
	if code != http.StatusCreated || k.Secret == "" {
		return "", "", fmt.Errorf("%s: create key: %d", g.name, code)
	}
	return k.ID, k.Secret, nil
}

// sample is one (class, mode, round) measurement.
type sample struct {
	rate float64
	lats []time.Duration
	bad  int
	cmds int64 // commands Redis processed meanwhile (Redis mode), -1 when not counted
}

func (b *stateBench) throughput(mem, red *gh, redisAddr string) error {
	token := benchJWT()
	modes := []*gh{mem, red}
	for _, g := range modes {
		_, secret, err := b.createKey(g, `{"path":"live/cam","label":"statebench","actions":["read"]}`)
		if err != nil {
			return err
		}
		g.managedKey = secret
		// Every credential once (fills the verification caches) and correct before measuring.
		for ci, c := range classes(g, token) {
			for i := range 3 {
				if e := do(b.client, c, i); e >= 0 {
					return fmt.Errorf("%s: class %d request %d: error kind %d before the run (wrong config?)", g.name, ci, i, e)
				}
			}
		}
	}
	fmt.Fprintln(b.out, "### Decisions: in-process state (A) vs Redis state (B)")
	fmt.Fprintln(b.out)
	fmt.Fprintln(b.out, "| class | state | req/s per round | req/s (all rounds) | p50 | p99 | errors | Redis commands per decision | B/A |")
	fmt.Fprintln(b.out, "|---|---|---|---:|---:|---:|---:|---:|---:|")
	failed := false
	nClasses := len(classes(mem, token))
	for ci := range nClasses {
		samples := make([][]sample, len(modes))
		for g := range modes { // warm-up: connections, caches
			closedLoopLat(b.client, classes(modes[g], token)[ci], min(time.Second, b.round), b.conns)
		}
		for r := range b.rounds {
			order := []int{0, 1}
			if r%2 == 1 {
				order = []int{1, 0}
			}
			for _, m := range order {
				before, _ := redisCommands(redisAddr)
				s := closedLoopLat(b.client, classes(modes[m], token)[ci], b.round, b.conns)
				after, err := redisCommands(redisAddr)
				if err != nil {
					return err
				}
				s.cmds = after - before - 1 // the INFO that read before
				samples[m] = append(samples[m], s)
			}
		}
		var rates, perDecisions [2]float64
		for m, g := range modes {
			var per []string
			var all []time.Duration
			sum, bad, cmds := 0.0, 0, int64(0)
			for _, s := range samples[m] {
				per = append(per, fmt.Sprintf("%.0f", s.rate))
				sum += s.rate
				all = append(all, s.lats...)
				bad += s.bad
				cmds += s.cmds
			}
			// Redis's background traffic (heartbeats, ban sync, feed polls: a few commands a
			// second from every node) is counted in both modes' windows; what a decision adds
			// shows in the difference between the modes.
			perDecision := float64(cmds) / float64(max(1, len(all)))
			perDecisions[m] = perDecision
			slices.Sort(all)
			rates[m] = sum / float64(len(samples[m]))
			ratio := ""
			if m == 1 && rates[0] > 0 {
				ratio = fmt.Sprintf("%.2f×", rates[1]/rates[0])
			}
			label := "in-process (A)"
			if m == 1 {
				label = "Redis (B)"
			}
			fmt.Fprintf(b.out, "| %s | %s | %s | %.0f | %s | %s | %d | %.3f | %s |\n", classes(g, token)[ci].name, label,
				strings.Join(per, ", "), rates[m], pct(all, 0.50), pct(all, 0.99), bad, perDecision, ratio)
			if bad > 0 {
				failed = true
			}
		}
		// The cached classes must not touch Redis: what the Redis mode's decisions add over the
		// in-process mode's windows (which see the same background traffic: heartbeats, ban
		// sync, feed polls) must be nothing — one command in 200 decisions is a hot path that
		// sometimes waits on a round trip.
		if added := perDecisions[1] - perDecisions[0]; ci == cachedClass && added > 0.005 {
			failed = true
			fmt.Fprintf(b.out, "\n**%.4f Redis commands per cached decision beyond the background traffic: the hot path talks to Redis**\n\n", added)
		}
	}
	fmt.Fprintln(b.out)
	if failed {
		return errors.New("throughput: requests failed or got the wrong answer")
	}
	return nil
}

// closedLoopLat runs conns workers through ep for d and returns the rate, every latency and the
// number of wrong answers.
func closedLoopLat(client *http.Client, ep endpoint, d time.Duration, conns int) sample {
	var mu sync.Mutex
	var s sample
	begin := time.Now()
	stop := begin.Add(d)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			lats := make([]time.Duration, 0, 4096)
			bad := 0
			for i := w; time.Now().Before(stop); i += conns {
				t0 := time.Now()
				if do(client, ep, i) >= 0 {
					bad++
				}
				lats = append(lats, time.Since(t0))
			}
			mu.Lock()
			s.lats = append(s.lats, lats...)
			s.bad += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	s.rate = float64(len(s.lats)) / time.Since(begin).Seconds()
	return s
}

// nginxHook sends one nginx-rtmp notification to g and returns the status and Location.
func (b *stateBench) nginxHook(g *gh, call, name, clientID string) (int, string, error) {
	form := url.Values{"app": {"live"}, "flashver": {"FMLE/3.0"}, "tcurl": {"rtmp://127.0.0.1:1935/live"},
		"addr": {"127.0.0.1"}, "clientid": {clientID}, "call": {call}, "name": {name}, "type": {"live"}}
	resp, err := b.client.PostForm(g.hooks+"/hooks/nginx-rtmp", form)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// revocation measures A → B revocation b.revs times.
func (b *stateBench) revocation(a, nodeB *gh) error {
	var ended, refused []time.Duration
	for i := range b.revs {
		path := fmt.Sprintf("rev%d", i)
		clientID := strconv.Itoa(100000 + i)
		id, secret, err := b.createKey(a, `{"path":"live/`+path+`","label":"statebench revocation"}`)
		if err != nil {
			return err
		}
		code, loc, err := b.nginxHook(nodeB, "publish", secret, clientID)
		if err != nil {
			return err
		}
		if code != http.StatusFound || loc != path {
			return fmt.Errorf("revocation %d: publish on B with A's key: %d %q, want 302 %q", i, code, loc, path)
		}
		// Drain stale drops (there should be none).
		for len(b.drops) > 0 {
			<-b.drops
		}
		t0 := time.Now()
		if code, err := b.api(a, "DELETE", "/api/v1/keys/"+id, "", nil); err != nil || code != http.StatusOK {
			return fmt.Errorf("revocation %d: revoke on A: %d %v", i, code, err)
		}
		code, _, err = b.nginxHook(nodeB, "publish", secret, strconv.Itoa(200000+i))
		if err != nil {
			return err
		}
		if code/100 == 2 || code == http.StatusFound {
			return fmt.Errorf("revocation %d: B still admits the key revoked on A (%d)", i, code)
		}
		refused = append(refused, time.Since(t0))
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case got := <-b.drops:
				if got.clientID == clientID {
					ended = append(ended, got.at.Sub(t0))
					break wait
				}
			case <-deadline:
				return fmt.Errorf("revocation %d: B did not end the session within 10 s", i)
			}
		}
		// nginx-rtmp reports the dropped publisher's end under its renamed name.
		if code, _, err := b.nginxHook(nodeB, "publish_done", path, clientID); err != nil || code != http.StatusOK {
			return fmt.Errorf("revocation %d: publish_done on B: %d %v", i, code, err)
		}
	}
	slices.Sort(ended)
	slices.Sort(refused)
	fmt.Fprintln(b.out, "### Revocation A → B (key revoked through A's API, session held by B)")
	fmt.Fprintln(b.out)
	fmt.Fprintln(b.out, "| measured from sending DELETE /api/v1/keys/{id} to A, until | n | p50 | p99 | max |")
	fmt.Fprintln(b.out, "|---|---:|---:|---:|---:|")
	fmt.Fprintf(b.out, "| B refuses the key (answer to the next publish with it) | %d | %s | %s | %s |\n", len(refused), pct(refused, 0.5), pct(refused, 0.99), pct(refused, 1))
	fmt.Fprintf(b.out, "| B ends the session holding it (its drop reaches nginx-rtmp's control) | %d | %s | %s | %s |\n", len(ended), pct(ended, 0.5), pct(ended, 0.99), pct(ended, 1))
	fmt.Fprintln(b.out)
	return nil
}

// drop is one call of the fake control's drop: the session's client id and when it arrived.
type drop struct {
	clientID string
	at       time.Time
}

// fakeControl serves nginx-rtmp's control module on loopback: every drop goes to b.drops and is
// answered "1" (one session dropped).
func (b *stateBench) fakeControl() (*controlServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/drop/") {
			select {
			case b.drops <- drop{clientID: r.URL.Query().Get("clientid"), at: time.Now()}:
			default:
			}
		}
		_, _ = io.WriteString(w, "1")
	})}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	return &controlServer{URL: "http://" + l.Addr().String(), srv: srv, done: done}, nil
}

// controlServer is the fake nginx-rtmp control; Close stops it and waits for it.
type controlServer struct {
	URL  string
	srv  *http.Server
	done chan struct{}
}

// Close stops the server.
func (c *controlServer) Close() { _ = c.srv.Close(); <-c.done }

// redisProc is the redis-server this tool started (never another one).
type redisProc struct {
	addr, version string
	cmd           *exec.Cmd
	exited        chan struct{}
}

// startRedis runs bin on a free loopback port in dir, without persistence, until it answers.
func startRedis(bin, dir string) (*redisProc, error) {
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, errors.New("redis-server not installed (make deps installs it)")
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var log bytes.Buffer
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &redisProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("redis-server exited: %s", log.String())
		default:
		}
		if v, ok := redisVersion(p.addr); ok {
			p.version = v
			return p, nil
		}
	}
	p.stop()
	return nil, errors.New("redis-server did not answer within 10 s")
}

// stop ends this tool's redis-server (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (p *redisProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// redisCommands returns the commands addr has processed (INFO stats, total_commands_processed;
// the INFO itself counts as one).
func redisCommands(addr string) (int64, error) {
	v, ok := redisInfo(addr, "stats", "total_commands_processed:")
	if !ok {
		return 0, errors.New("redis-server: no total_commands_processed in INFO stats")
	}
	return strconv.ParseInt(v, 10, 64)
}

// redisVersion asks addr for INFO server and returns "Redis <version>".
func redisVersion(addr string) (string, bool) {
	v, ok := redisInfo(addr, "server", "redis_version:")
	return "Redis " + v, ok
}

// redisInfo asks addr for INFO section and returns the value of the line starting with field.
func redisInfo(addr, section, field string) (string, bool) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return "", false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO " + section + "\r\n")); err != nil {
		return "", false
	}
	// A bulk string: $<length>\r\n<text>\r\n; read until the whole text is in.
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return "", false
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		return "", false
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", false
	}
	for line := range strings.SplitSeq(string(buf), "\r\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return v, true
		}
	}
	return "", false
}
