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
	"strings"
	"sync"
	"time"

	"gatehouse/cmd/internal/procstat"
)

// Workload is the shape of the load in a step.
type Workload string

// Workloads.
const (
	// WorkloadFanout is one publisher on bench/cam watched by N viewers.
	WorkloadFanout Workload = "fanout"
	// WorkloadSimulcast is one publisher sending three RID layers (q, h, f) on bench/sim,
	// watched by N viewers; the report says which layer each viewer got.
	WorkloadSimulcast Workload = "simulcast"
	// WorkloadRoom is N participants, each publishing on room/bench/p<i> and watching every
	// other participant: N WHIP and N×(N-1) WHEP sessions.
	WorkloadRoom Workload = "room"
	// WorkloadEdge is one publisher on bench/edge of an origin A, measured twice against fresh
	// processes: N viewers directly on A, and N viewers on an edge B that pulls the path from
	// A. Both rows report A's CPU (ServerCPU), so their ratio is what an edge saves the origin;
	// the second also reports B's (EdgeCPU). Builtin gatehouse targets only.
	WorkloadEdge Workload = "edge"
)

// Via values of a Result of the edge workload.
const (
	ViaDirect = "direct" // the viewers are on the origin
	ViaEdge   = "edge"   // the viewers are on an edge that pulls from the origin
)

// ParseWorkload parses a Workload name.
func ParseWorkload(s string) (Workload, error) {
	switch Workload(s) {
	case WorkloadFanout, WorkloadSimulcast, WorkloadRoom, WorkloadEdge:
		return Workload(s), nil
	}
	return "", fmt.Errorf("%w: unknown workload %q (want fanout, simulcast, room or edge)", ErrConfig, s)
}

// StepConfig is one measurement: one server, one workload of size N.
type StepConfig struct {
	// Target gives the URL templates, bearer tokens, marker mode and client interfaces.
	Target   Target
	Workload Workload
	// N is the number of viewers (fanout, simulcast) or participants (room, at least 2).
	N   int
	CPU func() (time.Duration, error) // the server's CPU time so far (the origin's, edge workload)
	// EdgeCPU, when set, is the edge node's CPU time so far (edge workload, viewers on the edge).
	EdgeCPU func() (time.Duration, error)
	// Warmup runs after every viewer has received a keyframe, before the window. Default 2s.
	Warmup time.Duration
	// Duration is the measured window. Default 10s.
	Duration time.Duration
	// SRTP is the client's SRTP profile choice (SRTPDefault, SRTPGCM128, SRTPCM).
	SRTP string
	// JoinConcurrency bounds parallel WHEP joins. Default 8.
	JoinConcurrency int
	// Profile, when set, receives a CPU profile of the server over the window from
	// ProfileURL + "/debug/pprof/profile" (builtin servers, see ServeConfig.Pprof).
	Profile    io.Writer
	ProfileURL string
	// Debug, when set, gets one line per viewer: what it received in the window.
	Debug io.Writer
}

// Result is one step's measurement. Loss and latency count video frames (MarkersFrame) or
// video packets (MarkersPacket), plus audio packets in both modes.
type Result struct {
	Target   string
	Workload Workload
	N        int
	// Via is ViaDirect or ViaEdge for the edge workload, "" otherwise.
	Via      string
	Sessions int // WHEP sessions asked for
	Joined   int // viewers that received a video keyframe before the window
	Markers  string
	Window   time.Duration
	SRTP     string
	Sent     uint64 // RTP packets the publishers sent in the window (every layer, audio too)
	// Forwarded is the RTP packets the viewers received in the window: what the server sent.
	Forwarded     uint64
	Expected      uint64 // frames (or packets) the viewers should have received from the window
	Received      uint64 // of those, the ones that arrived complete
	ExpectedBytes uint64 // video frame bytes of the window's frames (frame markers)
	ReceivedBytes uint64

	ServerCPU   time.Duration // over the window (the origin's, edge workload)
	EdgeCPU     time.Duration // the edge node's over the window (edge workload, ViaEdge)
	LoadCPU     time.Duration // the load generator's own CPU over the window
	USPerPacket float64       // ServerCPU / Forwarded, in µs
	LossPct     float64
	ByteLossPct float64 // video bytes (frame markers only)
	LatP50      time.Duration
	LatP99      time.Duration
	JoinP50     time.Duration // POST → first media packet
	KeyP50      time.Duration // POST → first video keyframe packet
	PLIs        uint64        // keyframe requests the publishers received during the step
	RcvbufDrops uint64        // host-wide Udp RcvbufErrors during the window
	// Layers counts viewers by the simulcast layer they mostly received, e.g. "q:0 h:0 f:10".
	Layers string
	// WrongStream counts viewers that received another publisher's frames.
	WrongStream int
	// Err is why the step failed ("" if it did not); the other fields may be partial.
	Err string
}

// stepPlan is who publishes where and who watches whom.
type stepPlan struct {
	paths   []string // per publisher
	watches []int    // per viewer: the publisher index
}

func plan(w Workload, n int) (stepPlan, error) {
	switch w {
	case WorkloadFanout, WorkloadSimulcast, WorkloadEdge:
		p := stepPlan{paths: []string{"bench/cam"}, watches: make([]int, n)}
		switch w {
		case WorkloadSimulcast:
			p.paths[0] = "bench/sim"
		case WorkloadEdge:
			p.paths[0] = "bench/edge"
		}
		return p, nil
	case WorkloadRoom:
		if n < 2 {
			return stepPlan{}, fmt.Errorf("%w: a room needs at least 2 participants", ErrConfig)
		}
		var p stepPlan
		for i := range n {
			p.paths = append(p.paths, "room/bench/p"+strconv.Itoa(i))
			for j := range n {
				if j != i {
					p.watches = append(p.watches, j)
				}
			}
		}
		return p, nil
	}
	return stepPlan{}, fmt.Errorf("%w: unknown workload %q", ErrConfig, w)
}

// Step runs one measurement against a running server.
func Step(ctx context.Context, cfg StepConfig) (Result, error) {
	if cfg.N < 1 || cfg.CPU == nil || cfg.Target.WHIPURL == "" || cfg.Target.WHEPURL == "" {
		return Result{}, fmt.Errorf("%w: step needs URL templates, a CPU reader and N >= 1", ErrConfig)
	}
	pl, err := plan(cfg.Workload, cfg.N)
	if err != nil {
		return Result{}, err
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
	markers := cfg.Target.Markers
	if markers == "" {
		markers = MarkersFrame
	}
	simulcast := cfg.Workload == WorkloadSimulcast
	api, err := ClientAPI(ClientOptions{SRTP: cfg.SRTP, AllInterfaces: cfg.Target.AllInterfaces})
	if err != nil {
		return Result{}, err
	}
	pubAPI := api
	if simulcast {
		if pubAPI, err = ClientAPI(ClientOptions{SRTP: cfg.SRTP, AllInterfaces: cfg.Target.AllInterfaces, Simulcast: true}); err != nil {
			return Result{}, err
		}
	}
	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()

	var pubs []*Publisher
	defer func() {
		for _, p := range pubs {
			_ = p.Close()
		}
	}()
	for i, path := range pl.paths {
		whip, bearer := cfg.Target.Endpoint(path, true)
		p, err := Publish(ctx, pubAPI, client, whip, PublishOptions{Index: uint16(i), Simulcast: simulcast, Bearer: bearer})
		if err != nil {
			return Result{}, fmt.Errorf("publish %s: %w", path, err)
		}
		pubs = append(pubs, p)
	}

	// A server may answer viewers as soon as it knows one of the publisher's tracks (the naive
	// forwarder does): let every publisher connect and send a few frames of every track first,
	// or an early viewer gets audio only. Bounded; join times are measured per viewer anyway.
	for _, p := range pubs {
		t := time.NewTimer(10 * time.Second)
		select {
		case <-p.connected:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Result{}, ctx.Err()
		}
		t.Stop()
	}
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		return Result{}, err
	}
	viewers, err := joinAll(ctx, len(pl.watches), cfg.JoinConcurrency, func(ctx context.Context, i int) (*Viewer, error) {
		whep, bearer := cfg.Target.Endpoint(pl.paths[pl.watches[i]], false)
		return View(ctx, api, client, whep, bearer)
	})
	closeViewers := func() {
		var wg sync.WaitGroup
		for _, v := range viewers {
			if v != nil {
				wg.Go(func() { _ = v.Close() })
			}
		}
		wg.Wait()
	}
	defer closeViewers()
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

	res := Result{Target: cfg.Target.Name, Workload: cfg.Workload, N: cfg.N, Sessions: len(pl.watches),
		Joined: joined(viewers), SRTP: cfg.SRTP, Markers: markers}
	if res.SRTP == "" {
		res.SRTP = SRTPDefault
	}
	var profErr error
	var profWG sync.WaitGroup
	if cfg.Profile != nil && cfg.ProfileURL != "" {
		secs := max(1, int(cfg.Duration.Round(time.Second)/time.Second))
		profWG.Go(func() { profErr = fetchProfile(ctx, cfg.ProfileURL, secs, cfg.Profile) })
	}
	snapRx := func() []uint64 {
		out := make([]uint64, len(viewers))
		for i, v := range viewers {
			out[i] = v.rx.Load()
		}
		return out
	}
	snapPub := func() []counters {
		out := make([]counters, len(pubs))
		for i, p := range pubs {
			out[i] = p.counters()
		}
		return out
	}
	udp0, _ := UDPCounters()
	load0, _ := procstat.CPU(os.Getpid())
	cpu0, err := cfg.CPU()
	if err != nil {
		return Result{}, err
	}
	edgeCPU := cfg.EdgeCPU
	if edgeCPU == nil {
		edgeCPU = func() (time.Duration, error) { return 0, nil }
	}
	edge0, err := edgeCPU()
	if err != nil {
		return Result{}, err
	}
	c0, rx0 := snapPub(), snapRx()
	t0 := time.Now()
	if err := sleep(ctx, cfg.Duration); err != nil {
		return Result{}, err
	}
	cpu1, err := cfg.CPU()
	if err != nil {
		return Result{}, err
	}
	edge1, err := edgeCPU()
	if err != nil {
		return Result{}, err
	}
	c1, rx1 := snapPub(), snapRx()
	res.Window = time.Since(t0)
	load1, _ := procstat.CPU(os.Getpid())
	udp1, _ := UDPCounters()
	// Let packets of the window still in flight arrive, then stop everything.
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return Result{}, err
	}
	profWG.Wait()
	if profErr != nil {
		return Result{}, fmt.Errorf("cpu profile: %w", profErr)
	}
	for _, p := range pubs {
		n, _ := p.PLIs()
		res.PLIs += n
		_ = p.Close()
	}
	closeViewers()

	res.ServerCPU = cpu1 - cpu0
	res.EdgeCPU = edge1 - edge0
	res.LoadCPU = load1 - load0
	res.RcvbufDrops = udp1["RcvbufErrors"] - udp0["RcvbufErrors"]
	for i := range pubs {
		for l := range maxLayers {
			res.Sent += c1[i].packets[l] - c0[i].packets[l]
		}
		res.Sent += c1[i].audio - c0[i].audio
	}
	var lat []int32
	var joins, keys []time.Duration
	var perLayer [maxLayers]int
	for i, v := range viewers {
		res.Forwarded += rx1[i] - rx0[i]
		p := pubs[pl.watches[i]]
		a, b := c0[pl.watches[i]], c1[pl.watches[i]]
		layer, got := v.dominantLayer(p)
		if got {
			perLayer[layer]++
		}
		if v.frames.publisher >= 0 && v.frames.publisher != int(p.index) || v.frames.wrongPub > 0 {
			res.WrongStream++
		}
		st := v.window(markers, p, layer, a, b)
		res.Expected += st.expected
		res.Received += st.received
		res.ExpectedBytes += st.expBytes
		res.ReceivedBytes += st.rxBytes
		lat = append(lat, st.lat...)
		if cfg.Debug != nil {
			fmt.Fprintf(cfg.Debug, "viewer %d of publisher %d: layer %s, %d/%d received, %d/%d bytes, %d packets\n",
				i, pl.watches[i], layerRIDs[layer], st.received, st.expected, st.rxBytes, st.expBytes, rx1[i]-rx0[i])
		}
		if f := v.firstAt.Load(); f != 0 {
			joins = append(joins, time.Duration(f-v.postAt.UnixNano()))
		}
		if f := v.firstKey.Load(); f != 0 {
			keys = append(keys, time.Duration(f-v.postAt.UnixNano()))
		}
	}
	if simulcast {
		var parts []string
		for l := range maxLayers {
			parts = append(parts, fmt.Sprintf("%s:%d", layerRIDs[l], perLayer[l]))
		}
		res.Layers = strings.Join(parts, " ")
	}
	if res.Forwarded > 0 {
		res.USPerPacket = float64(res.ServerCPU.Microseconds()) / float64(res.Forwarded)
	}
	if res.Expected > 0 {
		res.LossPct = 100 * float64(res.Expected-res.Received) / float64(res.Expected)
	}
	if res.ExpectedBytes > 0 {
		res.ByteLossPct = 100 * (1 - float64(res.ReceivedBytes)/float64(res.ExpectedBytes))
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

// packetsPerFrame returns the packets per frame the publisher sends on a layer.
func (p *Publisher) packetsPerFrame(layer uint8) int {
	for _, l := range p.layers {
		if l.index == layer {
			return l.packets
		}
	}
	return 0
}

// dominantLayer returns the layer the viewer received most complete frames of, and whether it
// received any; without frames it returns the publisher's top layer.
func (v *Viewer) dominantLayer(p *Publisher) (uint8, bool) {
	best, n := p.layers[0].index, uint64(0)
	for l := range maxLayers {
		if c := v.frames.seenLayers[l]; c > n {
			best, n = uint8(l), c
		}
	}
	return best, n > 0
}

type windowStats struct {
	expected, received, expBytes, rxBytes uint64
	lat                                   []int32
}

// window counts what the viewer received of what its publisher sent between snapshots a and
// b: frames (or packets) of one video layer, and audio packets.
func (v *Viewer) window(markers string, p *Publisher, layer uint8, a, b counters) windowStats {
	var st windowStats
	count := func(l []int32, from, to uint64) {
		for c := from; c < to; c++ {
			st.expected++
			if int(c) < len(l) && l[c] != 0 {
				st.received++
				st.lat = append(st.lat, l[c])
			}
		}
	}
	count(v.lat[0], a.audio, b.audio)
	if markers == MarkersPacket {
		count(v.lat[1+int(layer)], a.packets[layer], b.packets[layer])
		return st
	}
	fb := uint64(frameBytes(p.packetsPerFrame(layer)))
	recs := v.frames.frames[layer]
	for id := a.frames[layer]; id < b.frames[layer]; id++ {
		st.expected++
		st.expBytes += fb
		if int(id) >= len(recs) {
			continue
		}
		r := recs[id]
		st.rxBytes += uint64(max(r.Bytes, 0))
		if r.Latency != 0 {
			st.received++
			st.lat = append(st.lat, r.Latency)
		}
	}
	return st
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
		if v != nil && v.joined() {
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

// joinAll connects n viewers, concurrency at a time, retrying while the stream is not live yet
// (409, or 404/400 from servers that do not know the path before its publisher's tracks
// arrive). It returns the viewers connected so far (nil where a join failed) even on error.
func joinAll(ctx context.Context, n, concurrency int, view func(context.Context, int) (*Viewer, error)) ([]*Viewer, error) {
	out := make([]*Viewer, n)
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var v *Viewer
			var err error
			for try := 0; try < 100; try++ {
				v, err = view(ctx, i)
				if err == nil || !errors.Is(err, ErrSignal) || ctx.Err() != nil {
					break
				}
				_ = sleep(ctx, 100*time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("view: %w", err)
				}
				return
			}
			out[i] = v
		})
	}
	wg.Wait()
	if firstErr != nil {
		return out, firstErr
	}
	return out, nil
}

// SweepConfig configures Sweep.
type SweepConfig struct {
	Targets   []Target
	Workloads []Workload
	N         []int // viewers (fanout, simulcast) or participants (room)
	Warmup    time.Duration
	Duration  time.Duration
	Reps      int // repetitions of every (N, workload, target); default 1
	SRTP      string
	// Start starts a fresh builtin server process for one step, placed in a fleet by edge (the
	// edge workload; zero otherwise); Sweep closes it after the step.
	Start func(ctx context.Context, mode Mode, edge EdgeOptions) (*Process, error)
	// ProfileDir, if set, gets a builtin server's CPU profile per step, named
	// <target>-<workload>-<N>-<rep>.pprof.
	ProfileDir string
	// Progress, if set, gets one line per finished step.
	Progress io.Writer
	// Between is a pause between two steps against the same external server, so that it
	// drops the previous step's sessions. Default 1s.
	Between time.Duration
}

// Sweep runs every N with every workload and every target, interleaved (the target order
// alternates from one step to the next so none always runs first). Builtin targets get a fresh
// server process per step. A failed step becomes a Result with Err and the sweep goes on; only
// a cancelled ctx stops it.
func Sweep(ctx context.Context, cfg SweepConfig) ([]Result, error) {
	if len(cfg.Targets) == 0 || len(cfg.Workloads) == 0 || len(cfg.N) == 0 {
		return nil, fmt.Errorf("%w: sweep needs targets, workloads and sizes", ErrConfig)
	}
	for _, t := range cfg.Targets {
		if !t.External() && cfg.Start == nil {
			return nil, fmt.Errorf("%w: builtin target %q needs a Start func", ErrConfig, t.Name)
		}
	}
	if cfg.Between <= 0 {
		cfg.Between = time.Second
	}
	reps := max(cfg.Reps, 1)
	var out []Result
	turn := 0
	for _, n := range cfg.N {
		for _, w := range cfg.Workloads {
			for rep := range reps {
				targets := slices.Clone(cfg.Targets)
				if turn%2 == 1 {
					slices.Reverse(targets)
				}
				turn++
				for _, t := range targets {
					var rs []Result
					if w == WorkloadEdge {
						rs = edgeSteps(ctx, cfg, t, n, rep)
					} else {
						r, err := sweepStep(ctx, cfg, t, w, n, rep)
						if err != nil {
							r = Result{Target: t.Name, Workload: w, N: n, Markers: t.Markers, Err: err.Error()}
						}
						rs = []Result{r}
					}
					if ctx.Err() != nil {
						return out, ctx.Err()
					}
					out = append(out, rs...)
					if cfg.Progress != nil {
						for _, r := range rs {
							progress(cfg.Progress, r)
						}
					}
					if t.External() {
						if err := sleep(ctx, cfg.Between); err != nil {
							return out, err
						}
					}
				}
			}
		}
	}
	return out, nil
}

// progress writes one line about a finished step.
func progress(w io.Writer, r Result) {
	name := r.Target
	switch r.Via {
	case ViaDirect:
		name += " (direct)"
	case ViaEdge:
		name += " (via edge)"
	}
	if r.Err != "" {
		fmt.Fprintf(w, "%-10s %-9s N=%-4d error: %s\n", name, r.Workload, r.N, r.Err)
		return
	}
	edge := ""
	if r.Via == ViaEdge {
		edge = fmt.Sprintf("  edge node %v", r.EdgeCPU.Round(10*time.Millisecond))
	}
	fmt.Fprintf(w, "%-10s %-9s N=%-4d %6.2f µs/pkt  loss %.3f%%  p50 %v  server %v%s  load %v\n",
		name, r.Workload, r.N, r.USPerPacket, r.LossPct, r.LatP50.Round(10*time.Microsecond),
		r.ServerCPU.Round(10*time.Millisecond), edge, r.LoadCPU.Round(10*time.Millisecond))
}

// edgeSteps measures the edge workload: the origin's CPU with N viewers on it, and with N
// viewers on an edge pulling from it, each against fresh processes sharing a temporary fleet
// key, in an order that alternates with rep. It returns both results, failed ones with Err.
func edgeSteps(ctx context.Context, cfg SweepConfig, t Target, n, rep int) []Result {
	vias := []string{ViaDirect, ViaEdge}
	if rep%2 == 1 {
		slices.Reverse(vias)
	}
	out := make([]Result, 0, 2)
	for _, via := range vias {
		r, err := edgeStep(ctx, cfg, t, via, n, rep)
		if err != nil {
			r = Result{Target: t.Name, Workload: WorkloadEdge, N: n, Via: via, Markers: t.Markers, Err: err.Error()}
		}
		out = append(out, r)
		if ctx.Err() != nil {
			break
		}
	}
	if out[0].Via != ViaDirect {
		slices.Reverse(out)
	}
	return out
}

func edgeStep(ctx context.Context, cfg SweepConfig, t Target, via string, n, rep int) (Result, error) {
	if t.Builtin != ModeGatehouse {
		return Result{}, fmt.Errorf("%w: the edge workload needs the builtin gatehouse target", ErrConfig)
	}
	keys, err := os.MkdirTemp("", "sfubench-fleet-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(keys)
	// The origin starts first: it creates the fleet's key that the edge then loads.
	origin, err := cfg.Start(ctx, t.Builtin, EdgeOptions{Keys: keys, NodeID: "origin"})
	if err != nil {
		return Result{}, err
	}
	defer origin.Close()
	sc := StepConfig{Target: t, Workload: WorkloadEdge, N: n, Warmup: cfg.Warmup, Duration: cfg.Duration, SRTP: cfg.SRTP, CPU: origin.CPU}
	sc.Target.WHIPURL = origin.URL + "/whip/" + PathPlaceholder
	sc.Target.WHEPURL = origin.URL + "/whep/" + PathPlaceholder
	if via == ViaEdge {
		edge, err := cfg.Start(ctx, t.Builtin, EdgeOptions{Keys: keys, NodeID: "edge", Origin: origin.URL, OriginNode: "origin"})
		if err != nil {
			return Result{}, err
		}
		defer edge.Close() // before the origin's
		sc.Target.WHEPURL = edge.URL + "/whep/" + PathPlaceholder
		sc.EdgeCPU = edge.CPU
	}
	if cfg.ProfileDir != "" { // the origin's profile
		f, err := os.Create(filepath.Join(cfg.ProfileDir, fmt.Sprintf("%s-edge-%s-%d-%d.pprof", t.Name, via, n, rep)))
		if err != nil {
			return Result{}, err
		}
		defer f.Close()
		sc.Profile, sc.ProfileURL = f, origin.URL
	}
	r, err := Step(ctx, sc)
	r.Via = via
	return r, err
}

func sweepStep(ctx context.Context, cfg SweepConfig, t Target, w Workload, n, rep int) (Result, error) {
	sc := StepConfig{Target: t, Workload: w, N: n, Warmup: cfg.Warmup, Duration: cfg.Duration, SRTP: cfg.SRTP}
	if t.External() {
		if _, err := procstat.CPU(t.PID); err != nil {
			return Result{}, fmt.Errorf("%w: pid %d: %w", ErrServer, t.PID, err)
		}
		sc.CPU = PIDCPU(t.PID, t.Children)
	} else {
		p, err := cfg.Start(ctx, t.Builtin, EdgeOptions{})
		if err != nil {
			return Result{}, err
		}
		defer p.Close()
		sc.Target.WHIPURL = p.URL + "/whip/" + PathPlaceholder
		sc.Target.WHEPURL = p.URL + "/whep/" + PathPlaceholder
		sc.CPU = p.CPU
		if cfg.ProfileDir != "" {
			f, err := os.Create(filepath.Join(cfg.ProfileDir, fmt.Sprintf("%s-%s-%d-%d.pprof", t.Name, w, n, rep)))
			if err != nil {
				return Result{}, err
			}
			defer f.Close()
			sc.Profile, sc.ProfileURL = f, p.URL
		}
	}
	return Step(ctx, sc)
}

// Summarize keeps, for every (workload, N, target), the result with the median µs/packet
// (failed repetitions only if all failed), ordered by workload, then N, then target as first
// seen.
func Summarize(rs []Result) []Result {
	type key struct {
		w   Workload
		n   int
		t   string
		via string
	}
	groups := map[key][]Result{}
	var order []key
	for _, r := range rs {
		k := key{r.Workload, r.N, r.Target, r.Via}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	wOrder := map[Workload]int{}
	for _, k := range order {
		if _, ok := wOrder[k.w]; !ok {
			wOrder[k.w] = len(wOrder)
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].w != order[j].w {
			return wOrder[order[i].w] < wOrder[order[j].w]
		}
		return order[i].n < order[j].n
	})
	var out []Result
	for _, k := range order {
		g := groups[k]
		ok := slices.DeleteFunc(slices.Clone(g), func(r Result) bool { return r.Err != "" })
		if len(ok) > 0 {
			g = ok
		}
		sort.Slice(g, func(i, j int) bool { return g[i].USPerPacket < g[j].USPerPacket })
		out = append(out, g[len(g)/2])
	}
	return out
}

// Markdown writes results (use Summarize first) as one table per workload. The ratio column
// compares each row with the ref target's row of the same workload and N; floorUS (if > 0)
// adds each row's multiple of the per-packet cost floor. The edge workload gets its own table
// (markdownEdge).
func Markdown(w io.Writer, rs []Result, ref string, floorUS float64) error {
	var edge []Result
	rs = slices.DeleteFunc(slices.Clone(rs), func(r Result) bool {
		if r.Workload == WorkloadEdge {
			edge = append(edge, r)
			return true
		}
		return false
	})
	if err := markdownWorkloads(w, rs, ref, floorUS); err != nil || len(edge) == 0 {
		return err
	}
	return markdownEdge(w, edge)
}

func markdownWorkloads(w io.Writer, rs []Result, ref string, floorUS float64) error {
	type key struct {
		w Workload
		n int
	}
	refUS := map[key]float64{}
	for _, r := range rs {
		if r.Target == ref && r.Err == "" {
			refUS[key{r.Workload, r.N}] = r.USPerPacket
		}
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	var cur Workload
	for _, r := range rs {
		if r.Workload != cur {
			cur = r.Workload
			if _, err := fmt.Fprintf(w, "\n### %s\n\n| N | target | sessions | server CPU µs/pkt | ÷ %s | × floor | loss %% | byte loss %% | p50 ms | p99 ms | join p50 ms | keyframe p50 ms | server CPU %% | load CPU %% | joined | layers | wrong stream | PLIs | rcvbuf drops |\n"+
				"|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n", cur, ref); err != nil {
				return err
			}
		}
		if r.Err != "" {
			if _, err := fmt.Fprintf(w, "| %d | %s | | error: %s |\n", r.N, r.Target, strings.ReplaceAll(r.Err, "|", "/")); err != nil {
				return err
			}
			continue
		}
		ratio, floor, byteLoss := "", "", ""
		if nv := refUS[key{r.Workload, r.N}]; nv > 0 {
			ratio = strconv.FormatFloat(r.USPerPacket/nv, 'f', 2, 64)
		}
		if floorUS > 0 {
			floor = strconv.FormatFloat(r.USPerPacket/floorUS, 'f', 1, 64)
		}
		if r.Markers != MarkersPacket {
			byteLoss = strconv.FormatFloat(r.ByteLossPct, 'f', 3, 64)
		}
		pct := func(d time.Duration) string {
			if r.Window <= 0 {
				return ""
			}
			return strconv.FormatFloat(100*float64(d)/float64(r.Window), 'f', 0, 64)
		}
		if _, err := fmt.Fprintf(w, "| %d | %s | %d | %.2f | %s | %s | %.3f | %s | %s | %s | %s | %s | %s | %s | %d/%d | %s | %d | %d | %d |\n",
			r.N, r.Target, r.Sessions, r.USPerPacket, ratio, floor, r.LossPct, byteLoss, ms(r.LatP50), ms(r.LatP99), ms(r.JoinP50), ms(r.KeyP50),
			pct(r.ServerCPU), pct(r.LoadCPU), r.Joined, r.Sessions, r.Layers, r.WrongStream, r.PLIs, r.RcvbufDrops); err != nil {
			return err
		}
	}
	return nil
}

// markdownEdge writes the edge workload's results as one row per (N, target): the origin's CPU
// with the viewers on it and with them on an edge, side by side, and their ratio.
func markdownEdge(w io.Writer, rs []Result) error {
	type key struct {
		n int
		t string
	}
	pairs := map[key]*[2]*Result{}
	var order []key
	for i := range rs {
		r := &rs[i]
		k := key{r.N, r.Target}
		if pairs[k] == nil {
			pairs[k] = &[2]*Result{}
			order = append(order, k)
		}
		if r.Via == ViaEdge {
			pairs[k][1] = r
		} else {
			pairs[k][0] = r
		}
	}
	if _, err := fmt.Fprint(w, "\n### edge\n\n"+
		"Origin CPU (utime+stime of the origin process over the window) with N viewers on the origin (direct) and with "+
		"the same N viewers on one edge that pulls the path from it (via edge); same publisher, same window.\n\n"+
		"| N | target | origin CPU direct ms (%) | origin CPU via edge ms (%) | via edge ÷ direct | edge node CPU ms (%) | "+
		"loss % direct | loss % via edge | p50 ms direct | p50 ms via edge | joined direct | joined via edge |\n"+
		"|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"); err != nil {
		return err
	}
	cpu := func(r *Result, d time.Duration) string {
		if r == nil || r.Err != "" || r.Window <= 0 {
			return ""
		}
		return fmt.Sprintf("%d (%.0f)", d.Milliseconds(), 100*float64(d)/float64(r.Window))
	}
	field := func(r *Result, f func(*Result) string) string {
		switch {
		case r == nil:
			return ""
		case r.Err != "":
			return "error: " + strings.ReplaceAll(r.Err, "|", "/")
		}
		return f(r)
	}
	for _, k := range order {
		d, e := pairs[k][0], pairs[k][1]
		ratio := ""
		if d != nil && e != nil && d.Err == "" && e.Err == "" && d.ServerCPU > 0 && d.Window > 0 && e.Window > 0 {
			// Per second of window, so that slightly different windows compare.
			ratio = strconv.FormatFloat((float64(e.ServerCPU)/float64(e.Window))/(float64(d.ServerCPU)/float64(d.Window)), 'f', 3, 64)
		}
		loss := func(r *Result) string { return strconv.FormatFloat(r.LossPct, 'f', 3, 64) }
		p50 := func(r *Result) string { return strconv.FormatFloat(float64(r.LatP50)/1e6, 'f', 2, 64) }
		joinedOf := func(r *Result) string { return fmt.Sprintf("%d/%d", r.Joined, r.Sessions) }
		if _, err := fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", k.n, k.t,
			field(d, func(r *Result) string { return cpu(r, r.ServerCPU) }), field(e, func(r *Result) string { return cpu(r, r.ServerCPU) }),
			ratio, field(e, func(r *Result) string { return cpu(r, r.EdgeCPU) }),
			field(d, loss), field(e, loss), field(d, p50), field(e, p50), field(d, joinedOf), field(e, joinedOf)); err != nil {
			return err
		}
	}
	return nil
}
