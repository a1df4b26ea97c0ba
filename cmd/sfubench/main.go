// Command sfubench compares the CPU cost per forwarded packet of gatehouse's SFU with a naive
// pion forwarder (sfu-ws style), on loopback.
//
//	sfubench run   [-n 1,10,50,100,200] [-duration 10s] [-warmup 2s] [-modes gatehouse,naive]
//	               [-reps 1] [-srtp default|aes128gcm|aes128cm] [-server-cpu 1] [-load-cpu 0]
//	               [-profile-dir DIR] [-out FILE]
//	sfubench serve -mode gatehouse|naive [-addr 127.0.0.1:0] [-pprof] [-exit-on-stdin-eof]
//
// run starts "sfubench serve" (this same binary) once per step, pinned to -server-cpu with
// GOMAXPROCS=1 when taskset exists and the machine has two or more CPUs, pins itself to
// -load-cpu, runs the load and prints a Markdown table. The default sweep takes about 4 minutes.
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
	return sfubench.Serve(ctx, sfubench.ServeConfig{Mode: m, Addr: *addr, Pprof: *pprof, Log: log}, os.Stdout)
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	ns := fs.String("n", "1,10,50,100,200", "comma-separated viewer counts")
	duration := fs.Duration("duration", 10*time.Second, "measured window per step")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up per step after all viewers have media")
	modes := fs.String("modes", "gatehouse,naive", "comma-separated modes, interleaved at each N")
	reps := fs.Int("reps", 1, "repetitions per (N, mode); the table shows the median")
	srtp := fs.String("srtp", sfubench.SRTPDefault, "client SRTP profile: default, aes128gcm or aes128cm")
	serverCPU := fs.String("server-cpu", "1", "CPU list the server is pinned to with taskset (empty: no pinning)")
	loadCPU := fs.String("load-cpu", "0", "CPU list the load generator pins itself to (empty: no pinning)")
	profileDir := fs.String("profile-dir", "", "write a server CPU profile per step into this directory")
	out := fs.String("out", "", "also write the Markdown report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var viewers []int
	for f := range strings.SplitSeq(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -n entry %q", f)
		}
		viewers = append(viewers, n)
	}
	var ms []sfubench.Mode
	for f := range strings.SplitSeq(*modes, ",") {
		m, err := sfubench.ParseMode(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	taskset, _ := exec.LookPath("taskset")
	pin := taskset != "" && runtime.NumCPU() >= 2
	pinNote := "none"
	if pin && *loadCPU != "" {
		if out, err := exec.Command(taskset, "-a", "-p", "-c", *loadCPU, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset load generator: %v: %s", err, out)
		}
		runtime.GOMAXPROCS(1)
		pinNote = "load generator on CPU " + *loadCPU + " (GOMAXPROCS=1)"
	}
	if pin && *serverCPU != "" {
		pinNote += "; server on CPU " + *serverCPU + " (GOMAXPROCS=1)"
	}
	if *profileDir != "" {
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			return err
		}
	}
	start := func(ctx context.Context, mode sfubench.Mode) (*sfubench.Process, error) {
		argv := []string{exe, "serve", "-mode", string(mode), "-exit-on-stdin-eof"}
		if *profileDir != "" {
			argv = append(argv, "-pprof")
		}
		if pin && *serverCPU != "" {
			argv = append([]string{taskset, "-c", *serverCPU}, argv...)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = os.Environ()
		if pin && *serverCPU != "" {
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
		Modes: ms, Viewers: viewers, Warmup: *warmup, Duration: *duration, Reps: *reps, SRTP: *srtp,
		Start: start, ProfileDir: *profileDir, Progress: stderr,
	})
	if err != nil && len(results) == 0 {
		return err
	}
	load1, _ := os.ReadFile("/proc/loadavg")
	var b strings.Builder
	fmt.Fprintf(&b, "## SFU forwarding cost: gatehouse vs naive (sfu-ws style)\n\n")
	fmt.Fprintf(&b, "%s, %s, %d CPUs, %s/%s. Pinning: %s. Window %v after %v warm-up, %d rep(s), SRTP %s.\n",
		began.Format("2006-01-02 15:04"), runtime.Version(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		pinNote, *duration, *warmup, max(*reps, 1), *srtp)
	fmt.Fprintf(&b, "Load average before: %s; after: %s (other processes share the machine).\n",
		strings.TrimSpace(string(load0)), strings.TrimSpace(string(load1)))
	fmt.Fprintf(&b, "Publisher: VP8 %d fps × %d packets of %d B payload + Opus %v; viewers read raw RTP, no NACK.\n",
		sfubench.FrameRate, sfubench.PacketsPerFrame, sfubench.VideoPayloadSize, sfubench.AudioInterval)
	fmt.Fprintf(&b, "µs/pkt = server utime+stime over the window ÷ (packets sent × N). × floor: vs %.1f µs "+
		"(sfu-peers §6: AES-GCM encrypt ≈1.4 µs + UDP sendto ≈3 µs).\n\n", floorUS)
	if err := sfubench.Markdown(&b, sfubench.Summarize(results), floorUS); err != nil {
		return err
	}
	fmt.Fprint(stdout, b.String())
	if *out != "" {
		if werr := os.WriteFile(*out, []byte(b.String()), 0o644); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}
