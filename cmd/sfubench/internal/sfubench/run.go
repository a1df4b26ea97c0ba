package sfubench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// StepConfig is one measurement: one server, one publisher, Viewers viewers.
type StepConfig struct {
	Mode    Mode
	BaseURL string                        // the server's base URL, e.g. http://127.0.0.1:41234
	CPU     func() (time.Duration, error) // the server process's CPU time so far
	Viewers int
	// Warmup runs after every viewer has received media, before the window. Default 2s.
	Warmup time.Duration
	// Duration is the measured window. Default 10s.
	Duration time.Duration
	// SRTP is the client's SRTP profile choice (SRTPDefault, SRTPGCM128, SRTPCM).
	SRTP string
	// JoinConcurrency bounds parallel WHEP joins. Default 8.
	JoinConcurrency int
	// Profile, when set, receives a CPU profile of the server over the window (the server must
	// serve /debug/pprof/profile, see ServeConfig.Pprof).
	Profile io.Writer
	// Debug, when set, gets one line per viewer: packets received and worst latency per kind.
	Debug io.Writer
}

// Result is one step's measurement.
type Result struct {
	Mode     Mode
	Viewers  int
	Joined   int // viewers that received a video keyframe before the window
	Window   time.Duration
	SRTP     string
	Sent     uint64 // packets the publisher sent in the window (video + audio)
	Expected uint64 // Sent × Viewers
	Received uint64 // of those, packets that reached a viewer (counted once)

	ServerCPU   time.Duration // over the window
	LoadCPU     time.Duration // the load generator's own CPU over the window
	USPerPacket float64       // ServerCPU / Expected, in µs
	LossPct     float64
	LatP50      time.Duration
	LatP99      time.Duration
	JoinP50     time.Duration // POST → first media packet
	KeyP50      time.Duration // POST → first video keyframe packet
	PLIs        uint64        // keyframe requests the publisher received during the step
	RcvbufDrops uint64        // host-wide Udp RcvbufErrors during the window
}

// Step runs one measurement against a running server.
func Step(ctx context.Context, cfg StepConfig) (Result, error) {
	if cfg.Viewers < 1 || cfg.BaseURL == "" || cfg.CPU == nil {
		return Result{}, fmt.Errorf("%w: step needs a server URL, a CPU reader and at least one viewer", ErrConfig)
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 2 * time.Second
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.JoinConcurrency <= 0 {
		cfg.JoinConcurrency = 8
	}
	api, err := ClientAPI(cfg.SRTP)
	if err != nil {
		return Result{}, err
	}
	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	const path = "bench/cam"

	pub, err := Publish(ctx, api, client, cfg.BaseURL+"/whip/"+path)
	if err != nil {
		return Result{}, fmt.Errorf("publish: %w", err)
	}
	defer pub.Close()

	viewers, err := joinAll(ctx, cfg, func(ctx context.Context) (*Viewer, error) {
		return View(ctx, api, client, cfg.BaseURL+"/whep/"+path)
	})
	defer func() {
		var wg sync.WaitGroup
		for _, v := range viewers {
			wg.Go(func() { _ = v.Close() })
		}
		wg.Wait()
	}()
	if err != nil {
		return Result{}, err
	}
	// Wait (bounded) until every viewer has had a video keyframe.
	deadline := time.Now().Add(20 * time.Second)
	for joined(viewers) < len(viewers) && time.Now().Before(deadline) {
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return Result{}, err
		}
	}
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return Result{}, err
	}

	res := Result{Mode: cfg.Mode, Viewers: cfg.Viewers, Joined: joined(viewers), SRTP: cfg.SRTP}
	if res.SRTP == "" {
		res.SRTP = SRTPDefault
	}
	var profErr error
	var profWG sync.WaitGroup
	if cfg.Profile != nil {
		secs := max(1, int(cfg.Duration.Round(time.Second)/time.Second))
		profWG.Go(func() { profErr = fetchProfile(ctx, cfg.BaseURL, secs, cfg.Profile) })
	}
	udp0, _ := UDPCounters()
	load0, _ := ProcessCPU(os.Getpid())
	cpu0, err := cfg.CPU()
	if err != nil {
		return Result{}, err
	}
	v0, a0 := pub.Counters()
	t0 := time.Now()
	if err := sleep(ctx, cfg.Duration); err != nil {
		return Result{}, err
	}
	cpu1, err := cfg.CPU()
	if err != nil {
		return Result{}, err
	}
	v1, a1 := pub.Counters()
	res.Window = time.Since(t0)
	load1, _ := ProcessCPU(os.Getpid())
	udp1, _ := UDPCounters()
	// Let packets of the window still in flight arrive, then stop everything.
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return Result{}, err
	}
	profWG.Wait()
	if profErr != nil {
		return Result{}, fmt.Errorf("cpu profile: %w", profErr)
	}
	if cfg.Debug != nil {
		fmt.Fprint(cfg.Debug, perViewerDebug(viewers, a0, a1, v0, v1))
	}
	res.PLIs, _ = pub.PLIs()
	_ = pub.Close()
	var wg sync.WaitGroup
	for _, v := range viewers {
		wg.Go(func() { _ = v.Close() })
	}
	wg.Wait()

	res.ServerCPU = cpu1 - cpu0
	res.LoadCPU = load1 - load0
	res.RcvbufDrops = udp1["RcvbufErrors"] - udp0["RcvbufErrors"]
	res.Sent = (v1 - v0) + (a1 - a0)
	res.Expected = res.Sent * uint64(len(viewers))
	var lat []int32
	var joins, keys []time.Duration
	for _, v := range viewers {
		for k, rng := range [2][2]uint64{{a0, a1}, {v0, v1}} {
			l := v.lat[k]
			for c := rng[0]; c < rng[1]; c++ {
				if int(c) < len(l) && l[c] != 0 {
					res.Received++
					lat = append(lat, l[c])
				}
			}
		}
		if f := v.firstAt.Load(); f != 0 {
			joins = append(joins, time.Duration(f-v.postAt.UnixNano()))
		}
		if f := v.firstKey.Load(); f != 0 {
			keys = append(keys, time.Duration(f-v.postAt.UnixNano()))
		}
	}
	if res.Expected > 0 {
		res.USPerPacket = float64(res.ServerCPU.Microseconds()) / float64(res.Expected)
		res.LossPct = 100 * float64(res.Expected-res.Received) / float64(res.Expected)
	}
	slices.Sort(lat)
	res.LatP50 = time.Duration(quantile(lat, 0.50)) * time.Microsecond
	res.LatP99 = time.Duration(quantile(lat, 0.99)) * time.Microsecond
	slices.Sort(joins)
	slices.Sort(keys)
	res.JoinP50 = quantile(joins, 0.5)
	res.KeyP50 = quantile(keys, 0.5)
	return res, nil
}

func quantile[T int32 | time.Duration](sorted []T, q float64) T {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func joined(vs []*Viewer) int {
	n := 0
	for _, v := range vs {
		if v.joined() {
			n++
		}
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// joinAll connects cfg.Viewers viewers, JoinConcurrency at a time, retrying while the stream
// is not live yet (409). It returns the viewers connected so far even on error.
func joinAll(ctx context.Context, cfg StepConfig, view func(context.Context) (*Viewer, error)) ([]*Viewer, error) {
	var mu sync.Mutex
	var out []*Viewer
	var firstErr error
	sem := make(chan struct{}, cfg.JoinConcurrency)
	var wg sync.WaitGroup
	for range cfg.Viewers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var v *Viewer
			var err error
			for try := 0; try < 100; try++ {
				v, err = view(ctx)
				if err == nil || !errors.Is(err, ErrSignal) || ctx.Err() != nil {
					break
				}
				_ = sleep(ctx, 100*time.Millisecond) // 409 until the publisher's tracks arrive
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("view: %w", err)
				}
				return
			}
			out = append(out, v)
		})
	}
	wg.Wait()
	return out, firstErr
}

func fetchProfile(ctx context.Context, base string, secs int, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
	if err != nil {
		return err
	}
	res, err := (&http.Client{Timeout: time.Duration(secs+30) * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: profile: %s", ErrServer, res.Status)
	}
	_, err = io.Copy(w, res.Body)
	return err
}

// SweepConfig configures Sweep.
type SweepConfig struct {
	Modes    []Mode
	Viewers  []int
	Warmup   time.Duration
	Duration time.Duration
	Reps     int // repetitions of every (N, mode); default 1
	SRTP     string
	// Start starts a fresh server process for one step; Sweep closes it after the step.
	Start func(ctx context.Context, mode Mode) (*Process, error)
	// ProfileDir, if set, gets a server CPU profile per step, named <mode>-<N>-<rep>.pprof.
	ProfileDir string
	// Progress, if set, gets one line per finished step.
	Progress io.Writer
}

// Sweep runs every viewer count with every mode, interleaved (the mode order alternates from
// one step to the next so neither always runs first), each step against a fresh server
// process.
func Sweep(ctx context.Context, cfg SweepConfig) ([]Result, error) {
	if len(cfg.Modes) == 0 || len(cfg.Viewers) == 0 || cfg.Start == nil {
		return nil, fmt.Errorf("%w: sweep needs modes, viewer counts and a Start func", ErrConfig)
	}
	reps := max(cfg.Reps, 1)
	var out []Result
	turn := 0
	for _, n := range cfg.Viewers {
		for rep := range reps {
			modes := slices.Clone(cfg.Modes)
			if turn%2 == 1 {
				slices.Reverse(modes)
			}
			turn++
			for _, mode := range modes {
				r, err := sweepStep(ctx, cfg, mode, n, rep)
				if err != nil {
					return out, fmt.Errorf("%s N=%d: %w", mode, n, err)
				}
				out = append(out, r)
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "%-9s N=%-4d %6.2f µs/pkt  loss %.3f%%  p50 %v  server %v  load %v\n",
						r.Mode, r.Viewers, r.USPerPacket, r.LossPct, r.LatP50.Round(10*time.Microsecond),
						r.ServerCPU.Round(10*time.Millisecond), r.LoadCPU.Round(10*time.Millisecond))
				}
			}
		}
	}
	return out, nil
}

func sweepStep(ctx context.Context, cfg SweepConfig, mode Mode, n, rep int) (Result, error) {
	p, err := cfg.Start(ctx, mode)
	if err != nil {
		return Result{}, err
	}
	defer p.Close()
	sc := StepConfig{Mode: mode, BaseURL: p.URL, CPU: p.CPU, Viewers: n, Warmup: cfg.Warmup,
		Duration: cfg.Duration, SRTP: cfg.SRTP}
	if cfg.ProfileDir != "" {
		f, err := os.Create(filepath.Join(cfg.ProfileDir, fmt.Sprintf("%s-%d-%d.pprof", mode, n, rep)))
		if err != nil {
			return Result{}, err
		}
		defer f.Close()
		sc.Profile = f
	}
	return Step(ctx, sc)
}

// Summarize keeps, for every (mode, N), the result with the median µs/packet, ordered by N
// then mode as first given.
func Summarize(rs []Result) []Result {
	type key struct {
		m Mode
		n int
	}
	groups := map[key][]Result{}
	var order []key
	for _, r := range rs {
		k := key{r.Mode, r.Viewers}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].n < order[j].n })
	var out []Result
	for _, k := range order {
		g := groups[k]
		sort.Slice(g, func(i, j int) bool { return g[i].USPerPacket < g[j].USPerPacket })
		out = append(out, g[len(g)/2])
	}
	return out
}

// Markdown writes results (use Summarize first) as a table. The ratio column compares each
// gatehouse row with the naive row of the same N; floorUS (if > 0) adds gatehouse's multiple of
// the per-packet cost floor.
func Markdown(w io.Writer, rs []Result, floorUS float64) error {
	naive := map[int]float64{}
	for _, r := range rs {
		if r.Mode == ModeNaive {
			naive[r.Viewers] = r.USPerPacket
		}
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	_, err := fmt.Fprintf(w, "| N | mode | server CPU µs/pkt | gatehouse/naive | × floor | loss %% | p50 ms | p99 ms | join p50 ms | keyframe p50 ms | server CPU %% | load CPU %% | joined | PLIs | rcvbuf drops |\n"+
		"|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	if err != nil {
		return err
	}
	for _, r := range rs {
		ratio, floor := "", ""
		if r.Mode == ModeGatehouse {
			if nv := naive[r.Viewers]; nv > 0 {
				ratio = strconv.FormatFloat(r.USPerPacket/nv, 'f', 2, 64)
			}
		}
		if floorUS > 0 {
			floor = strconv.FormatFloat(r.USPerPacket/floorUS, 'f', 1, 64)
		}
		pct := func(d time.Duration) string {
			if r.Window <= 0 {
				return ""
			}
			return strconv.FormatFloat(100*float64(d)/float64(r.Window), 'f', 0, 64)
		}
		if _, err := fmt.Fprintf(w, "| %d | %s | %.2f | %s | %s | %.3f | %s | %s | %s | %s | %s | %s | %d/%d | %d | %d |\n",
			r.Viewers, r.Mode, r.USPerPacket, ratio, floor, r.LossPct, ms(r.LatP50), ms(r.LatP99), ms(r.JoinP50), ms(r.KeyP50),
			pct(r.ServerCPU), pct(r.LoadCPU), r.Joined, r.Viewers, r.PLIs, r.RcvbufDrops); err != nil {
			return err
		}
	}
	return nil
}

// perViewerDebug formats each viewer's received packets and worst latency in the window.
func perViewerDebug(vs []*Viewer, a0, a1, v0, v1 uint64) string {
	var b []byte
	for i, v := range vs {
		var rx, maxl [2]int
		for k, rng := range [2][2]uint64{{a0, a1}, {v0, v1}} {
			l := v.lat[k]
			for c := rng[0]; c < rng[1]; c++ {
				if int(c) < len(l) && l[c] != 0 {
					rx[k]++
					maxl[k] = max(maxl[k], int(l[c]))
				}
			}
		}
		b = fmt.Appendf(b, "viewer %d: audio %d/%d max %dus, video %d/%d max %dus\n", i, rx[0], a1-a0, maxl[0], rx[1], v1-v0, maxl[1])
	}
	return string(b)
}
