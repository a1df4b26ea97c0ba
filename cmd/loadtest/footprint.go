package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/cmd/internal/procstat"
)

// runFootprint measures what a small device cares about (docs/benchmarks.md "Small devices"):
// the server's resident memory (VmRSS now, VmHWM the peak, from /proc/PID/status) and CPU (share
// of one core, from /proc/PID/stat) idle for idle, then while MediaMTX hook decisions arrive at
// rate per second, open loop, for dur. The mix suits config.example.yml: 70 % anonymous reads,
// 20 % the example publisher (argon2id, answered from the verification cache after the first),
// 10 % a publish without credentials (denied). Wrong passwords are left out on purpose: each costs
// a full argon2id verification (19 MiB, paced to a share of the cores), which is the brute-force
// case the bans bound, not a steady rate.
func runFootprint(bin, cfg string, idle, dur time.Duration, rate float64, out io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	_, hooks, pid, exited, err := start(ctx, bin, cfg)
	defer func() { cancel(); <-exited }() // the server is gone before main may os.Exit
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "footprint: %s/%s, %d CPUs, Go %s; %s on %s; idle %v, then %.0f decisions/s for %v\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), bin, cfg, idle, rate, dur)
	fmt.Fprintln(out, "| phase | CPU (% of one core) | VmRSS MiB at end | VmHWM MiB (peak) | held req/s | p50 | p99 | errors |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|")

	c0, _ := procstat.CPU(pid)
	t0 := time.Now()
	time.Sleep(idle)
	rss, hwm := memory(pid)
	fmt.Fprintf(out, "| idle | %.1f | %.1f | %.1f | - | - | - | - |\n", cpuShare(pid, c0, t0), rss, hwm)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	ep := footprintEndpoint(hooks)
	c0, _ = procstat.CPU(pid)
	t0 = time.Now()
	res, held := openLoop(client, ep, dur, rate, 1024, 0)
	share := cpuShare(pid, c0, t0)
	rss, hwm = memory(pid)
	lats := make([]time.Duration, 0, len(res))
	bad := 0
	for _, r := range res {
		lats = append(lats, r.lat)
		if r.err >= 0 {
			bad++
		}
	}
	slices.Sort(lats)
	fmt.Fprintf(out, "| %.0f decisions/s | %.1f | %.1f | %.1f | %.0f | %s | %s | %d |\n", rate, share, rss, hwm, held,
		pct(lats, 0.50), pct(lats, 0.99), bad)
	if bad > 0 {
		return fmt.Errorf("%d requests failed or got the wrong answer", bad)
	}
	return nil
}

func footprintEndpoint(hooks string) endpoint {
	return endpoint{"MediaMTX (example config)", func(i int) (*http.Request, kind) {
		user, pass, action, ip, k := "", "", "read", "127.0.0.1", allowed
		switch r := i % 10; {
		case r >= 7 && r < 9:
			user, pass, action = "streamer", "changeme", "publish"
		case r == 9:
			action, k = "publish", denied
		}
		body := fmt.Sprintf(`{"ip":%q,"user":%q,"password":%q,"token":"","action":%q,"path":"live/cam","protocol":"rtmp","id":null,"query":"","userAgent":"footprint"}`,
			ip, user, pass, action)
		r, _ := http.NewRequest("POST", "http://"+hooks+"/hooks/mediamtx", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r, k
	}}
}

// memory returns VmRSS and VmHWM of pid in MiB (0 when /proc cannot be read).
func memory(pid int) (rss, hwm float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// cpuShare is the CPU pid used since (c0, t0), in percent of one core (0 when /proc cannot be read).
func cpuShare(pid int, c0 time.Duration, t0 time.Time) float64 {
	c, err := procstat.CPU(pid)
	if err != nil {
		return 0
	}
	return float64(c-c0) / float64(time.Since(t0)) * 100
}
