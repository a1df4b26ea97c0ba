// Command sfubench measures the CPU cost per forwarded packet, loss, latency, join and
// first-keyframe time of WHIP/WHEP servers with one load generator: gatehouse's SFU and a naive
// pion forwarder (sfu-ws style), which it starts itself, and any server the user runs
// (MediaMTX, Broadcast Box), reached by URL templates and measured by PID.
//
//	sfubench run   [-workloads fanout,simulcast,room|edge] [-n 1,10,50,100,200] [-duration 10s]
//	               [-warmup 2s] [-modes gatehouse,naive] [-target SPEC]...
//	               [-whip-url T -whep-url T -pid N [-children] [-bearer TOKEN] [-name NAME]]
//	               [-reps 1] [-srtp default|aes128gcm|aes128cm] [-server-cpu 1] [-load-cpu 0]
//	               [-pin-external] [-profile-dir DIR] [-out FILE]
//	sfubench serve -mode gatehouse|naive [-addr 127.0.0.1:0] [-pprof] [-exit-on-stdin-eof]
//	               [-keys DIR [-node-id ID] [-origin URL [-origin-node ID]]]
//
// run starts "sfubench serve" (this same binary) once per step for builtin targets, pinned to
// -server-cpu with GOMAXPROCS=1 when taskset exists and the machine has two or more CPUs, pins
// itself to -load-cpu, runs the load and prints Markdown tables ("sfubench run -h" explains
// targets). The default sweep takes about 4 minutes. The edge workload (gatehouse only) starts
// two serve processes, an origin and an edge pulling from it, and compares the origin's CPU with
// the viewers on the edge to its CPU with the same viewers on the origin itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gatehouse/cmd/sfubench/internal/sfubench"
)

// floorUS is the per-packet cost floor from docs/reference sfu-peers §6 (measured on a 2-vCPU
// VM): SRTP AES-GCM encrypt with marshal ≈ 1.4 µs plus one UDP sendto of 1,200 B ≈ 3 µs.
const floorUS = 4.4

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "run":
		err = run(os.Args[2:], os.Stdout, os.Stderr)
	default:
		usage()
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sfubench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sfubench run [flags] | sfubench serve -mode gatehouse|naive [flags]")
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	mode := fs.String("mode", "gatehouse", "server under test: gatehouse or naive")
	addr := fs.String("addr", "127.0.0.1:0", "HTTP listen address")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof/profile")
	stdinEOF := fs.Bool("exit-on-stdin-eof", false, "stop when standard input closes (used by run)")
	verbose := fs.Bool("v", false, "log at debug level to stderr")
	var edge sfubench.EdgeOptions
	fs.StringVar(&edge.Keys, "keys", "", "gatehouse: the fleet's signing key directory (pulls from and to other nodes)")
	fs.StringVar(&edge.NodeID, "node-id", "", "gatehouse with -keys: this node's id in pulls")
	fs.StringVar(&edge.Origin, "origin", "", "gatehouse with -keys: base URL of the node every path is pulled from")
	fs.StringVar(&edge.OriginNode, "origin-node", "", "gatehouse with -origin: the origin's node id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := sfubench.ParseMode(*mode)
	if err != nil {
		return err
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *stdinEOF {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	return sfubench.Serve(ctx, sfubench.ServeConfig{Mode: m, Addr: *addr, Pprof: *pprof, Log: log, Edge: edge}, os.Stdout)
}

const runUsage = `usage: sfubench run [flags]

Runs every workload at every size against every target, one step at a time, and prints one
Markdown table per workload.

Workloads (-workloads):
  fanout     one publisher on bench/cam, N WHEP viewers
  simulcast  one publisher sending 3 RID layers (q, h, f: 1, 3, 9 packets per frame) on
             bench/sim, N viewers; the "layers" column counts viewers by the layer they got
  room       N participants, each publishing room/bench/p<i> and watching every other one
             (N WHIP and N×(N-1) WHEP sessions)
  edge       one publisher on bench/edge of an origin, N viewers: once on the origin itself,
             once on an edge node pulling the path from the origin (fresh processes each time);
             the table puts the origin's CPU of both side by side with their ratio. Builtin
             gatehouse targets only: run it with -modes gatehouse. Both servers are pinned
             like any builtin server (to -server-cpu), so the edge shares the origin's CPU.

Targets: each -target is comma-separated key=value pairs:
  name=NAME              row label (required)
  start=builtin          the bench starts the server per step; mode= or the name picks it
  mode=gatehouse|naive   builtin server (implies start=builtin)
  whip=URL whep=URL      external server: URL templates, {path} is the stream path and
                         {key} the same with "-" for "/"
  pid=N                  external server: process whose utime+stime is the server CPU
  children=true          also count its live child processes
  bearer=T whip-bearer=T whep-bearer=T   bearer tokens (builtin servers allow any); may
                         hold {path} or {key} (Broadcast Box: the stream key is the token)
  markers=frame|packet   loss/latency per frame (survives re-packetization; default) or per
                         packet (only for servers that forward packets unchanged)
  net=loopback|all       load generator ICE interfaces (default: loopback for loopback URLs)
-whip-url/-whep-url/-pid/... define one more external target named by -name. -modes adds a
builtin target per mode; it is the default when no other target is given.

Pinning: builtin servers run under "taskset -c <-server-cpu>" with GOMAXPROCS=1; the load
generator pins itself to -load-cpu. External servers: start them the same way (e.g.
"GOMAXPROCS=1 taskset -c 1 mediamtx"), or pass -pin-external to move a running process's
threads to -server-cpu with "taskset -a -p"; the report prints every server's CPU affinity.

Examples:
  sfubench run -n 10,50 -workloads fanout,room
  sfubench run -n 10 -target name=gatehouse,start=builtin \
    -target name=mediamtx,whip=http://127.0.0.1:8889/{path}/whip,whep=http://127.0.0.1:8889/{path}/whep,pid=$(pidof mediamtx)
  sfubench run -n 10 -target name=naive,start=builtin \
    -target name=broadcastbox,whip=http://127.0.0.1:8080/api/whip,whep=http://127.0.0.1:8080/api/whep,bearer={key},pid=$(pidof broadcast-box)

Flags:
`

// targetList collects repeated -target flags.
type targetList []string

func (t *targetList) String() string     { return strings.Join(*t, " ") }
func (t *targetList) Set(v string) error { *t = append(*t, v); return nil }

// runConfig is the parsed "run" command line.
type runConfig struct {
	n           []int
	workloads   []sfubench.Workload
	targets     []sfubench.Target
	ref         string
	duration    time.Duration
	warmup      time.Duration
	reps        int
	srtp        string
	serverCPU   string
	loadCPU     string
	pinExternal bool
	profileDir  string
	out         string
}

// parseRunFlags parses the "run" command line without side effects.
func parseRunFlags(args []string, stderr io.Writer) (runConfig, error) {
	var c runConfig
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsage)
		fs.PrintDefaults()
	}
	ns := fs.String("n", "1,10,50,100,200", "comma-separated sizes: viewers (fanout, simulcast) or participants (room)")
	workloads := fs.String("workloads", "fanout", "comma-separated workloads: fanout, simulcast, room, edge")
	var specs targetList
	fs.Var(&specs, "target", "a target, `key=value,...` (repeatable, see above)")
	modes := fs.String("modes", "gatehouse,naive", "comma-separated builtin targets (default when no other target is given)")
	whip := fs.String("whip-url", "", "external target's WHIP URL template, e.g. http://127.0.0.1:8889/{path}/whip")
	whep := fs.String("whep-url", "", "external target's WHEP URL template, e.g. http://127.0.0.1:8889/{path}/whep")
	pid := fs.Int("pid", 0, "external target's process id (CPU from /proc/PID/stat)")
	children := fs.Bool("children", false, "external target: also count the CPU of its child processes")
	name := fs.String("name", "external", "external target's name")
	bearer := fs.String("bearer", "", "external target's bearer token for WHIP and WHEP")
	whipBearer := fs.String("whip-bearer", "", "external target's bearer token for WHIP (overrides -bearer)")
	whepBearer := fs.String("whep-bearer", "", "external target's bearer token for WHEP (overrides -bearer)")
	markers := fs.String("markers", sfubench.MarkersFrame, "markers for -modes and the -whip-url target: frame or packet")
	ref := fs.String("ref", "", "target the ratio column divides by (default naive if present, else the first)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured window per step")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up per step after all viewers have media")
	fs.IntVar(&c.reps, "reps", 1, "repetitions per (N, workload, target); the table shows the median")
	fs.StringVar(&c.srtp, "srtp", sfubench.SRTPDefault, "client SRTP profile: default, aes128gcm or aes128cm")
	fs.StringVar(&c.serverCPU, "server-cpu", "1", "CPU list builtin servers are pinned to with taskset (empty: no pinning)")
	fs.StringVar(&c.loadCPU, "load-cpu", "0", "CPU list the load generator pins itself to (empty: no pinning)")
	fs.BoolVar(&c.pinExternal, "pin-external", false, "move external targets' threads to -server-cpu (taskset -a -p)")
	fs.StringVar(&c.profileDir, "profile-dir", "", "write a builtin server's CPU profile per step into this directory")
	fs.StringVar(&c.out, "out", "", "also write the Markdown report to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	for f := range strings.SplitSeq(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return c, fmt.Errorf("run: bad -n entry %q", f)
		}
		c.n = append(c.n, n)
	}
	for f := range strings.SplitSeq(*workloads, ",") {
		w, err := sfubench.ParseWorkload(strings.TrimSpace(f))
		if err != nil {
			return c, err
		}
		if w == sfubench.WorkloadRoom && slices.Min(c.n) < 2 {
			return c, fmt.Errorf("run: the room workload needs -n entries of at least 2")
		}
		c.workloads = append(c.workloads, w)
	}
	for _, s := range specs {
		t, err := sfubench.ParseTarget(s)
		if err != nil {
			return c, err
		}
		c.targets = append(c.targets, t)
	}
	external := *whip != "" || *whep != "" || *pid != 0
	if external {
		t := sfubench.Target{Name: *name, WHIPURL: *whip, WHEPURL: *whep, PID: *pid, Children: *children,
			WHIPBearer: *bearer, WHEPBearer: *bearer, Markers: *markers}
		if *whipBearer != "" {
			t.WHIPBearer = *whipBearer
		}
		if *whepBearer != "" {
			t.WHEPBearer = *whepBearer
		}
		if err := t.Validate(); err != nil {
			return c, fmt.Errorf("run: -whip-url/-whep-url/-pid: %w", err)
		}
		c.targets = append(c.targets, t)
	} else if *children || set["name"] || *bearer != "" || *whipBearer != "" || *whepBearer != "" {
		return c, fmt.Errorf("run: -children, -name and -bearer flags belong to a -whip-url/-whep-url/-pid target")
	}
	if set["modes"] || len(c.targets) == 0 {
		var builtin []sfubench.Target
		for f := range strings.SplitSeq(*modes, ",") {
			m, err := sfubench.ParseMode(strings.TrimSpace(f))
			if err != nil {
				return c, err
			}
			t := sfubench.Target{Name: string(m), Builtin: m, Markers: *markers}
			if err := t.Validate(); err != nil {
				return c, err
			}
			builtin = append(builtin, t)
		}
		c.targets = append(builtin, c.targets...)
	}
	if slices.Contains(c.workloads, sfubench.WorkloadEdge) {
		for _, t := range c.targets {
			if t.Builtin != sfubench.ModeGatehouse {
				return c, fmt.Errorf("run: the edge workload runs only against builtin gatehouse targets, not %q (use -modes gatehouse)", t.Name)
			}
		}
	}
	seen := map[string]bool{}
	for _, t := range c.targets {
		if seen[t.Name] {
			return c, fmt.Errorf("run: two targets named %q", t.Name)
		}
		seen[t.Name] = true
	}
	c.ref = *ref
	if c.ref == "" {
		c.ref = c.targets[0].Name
		if seen["naive"] {
			c.ref = "naive"
		}
	} else if !seen[c.ref] {
		return c, fmt.Errorf("run: -ref %q is not a target", c.ref)
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	taskset, _ := exec.LookPath("taskset")
	pin := taskset != "" && runtime.NumCPU() >= 2
	pinNote := "none"
	if pin && c.loadCPU != "" {
		if out, err := exec.Command(taskset, "-a", "-p", "-c", c.loadCPU, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset load generator: %v: %s", err, out)
		}
		runtime.GOMAXPROCS(1)
		pinNote = "load generator on CPU " + c.loadCPU + " (GOMAXPROCS=1)"
	}
	var serverNotes []string
	for _, t := range c.targets {
		if !t.External() {
			if pin && c.serverCPU != "" {
				serverNotes = append(serverNotes, t.Name+" on CPU "+c.serverCPU+" (GOMAXPROCS=1)")
			} else {
				serverNotes = append(serverNotes, t.Name+" unpinned")
			}
			continue
		}
		if c.pinExternal && taskset != "" && c.serverCPU != "" {
			if out, err := exec.Command(taskset, "-a", "-p", "-c", c.serverCPU, strconv.Itoa(t.PID)).CombinedOutput(); err != nil {
				fmt.Fprintf(stderr, "sfubench: could not pin %s (pid %d): %v: %s", t.Name, t.PID, err, out)
			}
		}
		cpus := sfubench.CPUsAllowed(t.PID)
		if c.serverCPU != "" && cpus != c.serverCPU {
			fmt.Fprintf(stderr, "sfubench: %s (pid %d) may run on CPUs %s; to pin it like the builtin servers run "+
				"\"taskset -a -p -c %s %d\" (or -pin-external), and start Go servers with GOMAXPROCS=1\n",
				t.Name, t.PID, cpus, c.serverCPU, t.PID)
		}
		serverNotes = append(serverNotes, fmt.Sprintf("%s (pid %d) on CPUs %s", t.Name, t.PID, cpus))
	}
	pinNote += "; servers: " + strings.Join(serverNotes, ", ")
	if c.profileDir != "" {
		if err := os.MkdirAll(c.profileDir, 0o755); err != nil {
			return err
		}
	}
	start := func(ctx context.Context, mode sfubench.Mode, edge sfubench.EdgeOptions) (*sfubench.Process, error) {
		argv := []string{exe, "serve", "-mode", string(mode), "-exit-on-stdin-eof"}
		for _, f := range [][2]string{{"-keys", edge.Keys}, {"-node-id", edge.NodeID}, {"-origin", edge.Origin}, {"-origin-node", edge.OriginNode}} {
			if f[1] != "" {
				argv = append(argv, f[0], f[1])
			}
		}
		if c.profileDir != "" {
			argv = append(argv, "-pprof")
		}
		if pin && c.serverCPU != "" {
			argv = append([]string{taskset, "-c", c.serverCPU}, argv...)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = os.Environ()
		if pin && c.serverCPU != "" {
			cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
		}
		cmd.Stderr = stderr
		return sfubench.StartProcess(ctx, cmd)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	load0, _ := os.ReadFile("/proc/loadavg")
	began := time.Now()
	results, err := sfubench.Sweep(ctx, sfubench.SweepConfig{
		Targets: c.targets, Workloads: c.workloads, N: c.n, Warmup: c.warmup, Duration: c.duration,
		Reps: c.reps, SRTP: c.srtp, Start: start, ProfileDir: c.profileDir, Progress: stderr,
	})
	if err != nil && len(results) == 0 {
		return err
	}
	load1, _ := os.ReadFile("/proc/loadavg")
	var names []string
	for _, t := range c.targets {
		names = append(names, fmt.Sprintf("%s (markers: %s)", t.Name, t.Markers))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## SFU forwarding cost: %s\n\n", strings.Join(names, ", "))
	fmt.Fprintf(&b, "%s, %s, %d CPUs, %s/%s. Pinning: %s. Window %v after %v warm-up, %d rep(s), SRTP %s.\n",
		began.Format("2006-01-02 15:04"), runtime.Version(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		pinNote, c.duration, c.warmup, max(c.reps, 1), c.srtp)
	fmt.Fprintf(&b, "Load average before: %s; after: %s (other processes share the machine).\n",
		strings.TrimSpace(string(load0)), strings.TrimSpace(string(load1)))
	fmt.Fprintf(&b, "Publisher: VP8 %d fps × %d packets of %d B payload (simulcast: 1/3/%d) + Opus %v; viewers read raw RTP, no NACK.\n",
		sfubench.FrameRate, sfubench.PacketsPerFrame, sfubench.VideoPayloadSize, sfubench.PacketsPerFrame, sfubench.AudioInterval)
	fmt.Fprintf(&b, "µs/pkt = server utime+stime over the window ÷ RTP packets the viewers received in it. "+
		"Loss and latency per video frame (frame markers) or packet, plus audio packets; byte loss counts video frame bytes. "+
		"÷ %s: ratio to that target's µs/pkt. × floor: vs %.1f µs (sfu-peers §6: AES-GCM encrypt ≈1.4 µs + UDP sendto ≈3 µs).\n",
		c.ref, floorUS)
	if err := sfubench.Markdown(&b, sfubench.Summarize(results), c.ref, floorUS); err != nil {
		return err
	}
	fmt.Fprint(stdout, b.String())
	if c.out != "" {
		if werr := os.WriteFile(c.out, []byte(b.String()), 0o644); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}
