package sfubench

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gatehouse/cmd/internal/procstat"
)

// Marker modes: how viewers count loss and latency.
const (
	// MarkersFrame counts per video frame, from the marker at the start of each frame; it
	// survives servers that re-packetize frames (MediaMTX). The default.
	MarkersFrame = "frame"
	// MarkersPacket counts per packet, from the trailer of each payload; only for servers that
	// forward packets unchanged.
	MarkersPacket = "packet"
)

// Placeholders in URL templates and bearer tokens.
const (
	// PathPlaceholder is replaced by the stream path, e.g. room/bench/p0.
	PathPlaceholder = "{path}"
	// KeyPlaceholder is replaced by the stream path with every "/" replaced by "-", for
	// servers that take a stream key rather than a path (Broadcast Box: the key is the
	// bearer token).
	KeyPlaceholder = "{key}"
)

func expand(tmpl, path string) string {
	return strings.NewReplacer(PathPlaceholder, path, KeyPlaceholder, strings.ReplaceAll(path, "/", "-")).Replace(tmpl)
}

func hasPlaceholder(s string) bool {
	return strings.Contains(s, PathPlaceholder) || strings.Contains(s, KeyPlaceholder)
}

// Target is one server under test: a builtin server the bench starts for every step
// (Builtin set), or an external server the user runs, reached by URL templates, whose CPU is
// read from /proc/<PID>.
type Target struct {
	// Name labels the target's rows in the report.
	Name string
	// Builtin is the mode of a server the bench starts itself ("" for an external server).
	Builtin Mode
	// WHIPURL and WHEPURL are URL templates, e.g. "http://127.0.0.1:8889/{path}/whip".
	// Builtin targets get theirs from the started process.
	WHIPURL, WHEPURL string
	// WHIPBearer and WHEPBearer are sent as bearer tokens if not empty; they may contain the
	// placeholders too. Each direction needs a placeholder in its URL or its token. Builtin
	// targets use "sfubench" (their authorizer allows everything).
	WHIPBearer, WHEPBearer string
	// PID is the external server's process id, whose utime+stime is the server CPU.
	PID int
	// Children adds the CPU of the process's live descendants (servers that fork workers).
	Children bool
	// Markers is MarkersFrame (default) or MarkersPacket.
	Markers string
	// AllInterfaces lets the load generator's ICE use every interface, not only loopback.
	// Default: true when a URL's host is not a loopback address.
	AllInterfaces bool
}

// External reports whether the bench does not start this target itself.
func (t Target) External() bool { return t.Builtin == "" }

// Endpoint returns the WHIP (publish) or WHEP URL and bearer token for a stream path, with the
// placeholders replaced.
func (t Target) Endpoint(path string, publish bool) (endpoint, bearer string) {
	if publish {
		return expand(t.WHIPURL, path), expand(t.WHIPBearer, path)
	}
	return expand(t.WHEPURL, path), expand(t.WHEPBearer, path)
}

// ParseTarget parses a -target value: comma-separated key=value pairs.
//
//	name=NAME              label (required)
//	start=builtin          the bench starts it; mode=gatehouse|naive, default the name
//	mode=gatehouse|naive   builtin mode (implies start=builtin)
//	whip=URL, whep=URL     URL templates with {path} or {key} (external targets)
//	bearer=TOKEN           both directions; whip-bearer=, whep-bearer= for one; may hold
//	                       {path} or {key}
//	pid=N                  process whose CPU is measured (external targets)
//	children=true          also count the CPU of its live descendants
//	markers=frame|packet   loss and latency per frame (default) or per packet
//	net=loopback|all       interfaces for the load generator's ICE (default from the URLs)
func ParseTarget(spec string) (Target, error) {
	var t Target
	var start, netMode string
	for kv := range strings.SplitSeq(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || v == "" {
			return Target{}, fmt.Errorf("%w: target %q: want key=value, got %q", ErrConfig, spec, kv)
		}
		switch k {
		case "name":
			t.Name = v
		case "start":
			start = v
		case "mode":
			m, err := ParseMode(v)
			if err != nil {
				return Target{}, err
			}
			t.Builtin = m
		case "whip":
			t.WHIPURL = v
		case "whep":
			t.WHEPURL = v
		case "bearer":
			t.WHIPBearer, t.WHEPBearer = v, v
		case "whip-bearer":
			t.WHIPBearer = v
		case "whep-bearer":
			t.WHEPBearer = v
		case "pid":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Target{}, fmt.Errorf("%w: target %q: pid %q is not a process id", ErrConfig, spec, v)
			}
			t.PID = n
		case "children":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Target{}, fmt.Errorf("%w: target %q: children %q is not a boolean", ErrConfig, spec, v)
			}
			t.Children = b
		case "markers":
			t.Markers = v
		case "net":
			netMode = v
		default:
			return Target{}, fmt.Errorf("%w: target %q: unknown key %q", ErrConfig, spec, k)
		}
	}
	if start != "" && start != "builtin" {
		return Target{}, fmt.Errorf("%w: target %q: start=%q (want builtin, or no start for an external server)", ErrConfig, spec, start)
	}
	if start == "builtin" && t.Builtin == "" {
		m, err := ParseMode(t.Name)
		if err != nil {
			return Target{}, fmt.Errorf("%w: target %q: start=builtin needs mode=gatehouse|naive or that name", ErrConfig, spec)
		}
		t.Builtin = m
	}
	if netMode != "" && netMode != "loopback" && netMode != "all" {
		return Target{}, fmt.Errorf("%w: target %q: net=%q (want loopback or all)", ErrConfig, spec, netMode)
	}
	if err := t.finish(netMode); err != nil {
		return Target{}, fmt.Errorf("target %q: %w", spec, err)
	}
	return t, nil
}

// Validate checks a Target built in code (ParseTarget already does) and fills its defaults:
// "sfubench" bearer tokens for builtin targets, frame markers, and AllInterfaces for external
// URLs whose host is not a loopback address.
func (t *Target) Validate() error { return t.finish("") }

func (t *Target) finish(netMode string) error {
	if t.Name == "" {
		return fmt.Errorf("%w: a target needs name=", ErrConfig)
	}
	switch t.Markers {
	case "":
		t.Markers = MarkersFrame
	case MarkersFrame, MarkersPacket:
	default:
		return fmt.Errorf("%w: markers=%q (want frame or packet)", ErrConfig, t.Markers)
	}
	if !t.External() {
		if t.WHIPURL != "" || t.WHEPURL != "" || t.PID != 0 || t.Children {
			return fmt.Errorf("%w: builtin target %q takes no whip, whep, pid or children (the bench starts it)", ErrConfig, t.Name)
		}
		if t.WHIPBearer == "" && t.WHEPBearer == "" {
			t.WHIPBearer, t.WHEPBearer = "sfubench", "sfubench"
		}
		t.AllInterfaces = netMode == "all"
		return nil
	}
	if t.WHIPURL == "" || t.WHEPURL == "" || t.PID == 0 {
		return fmt.Errorf("%w: external target %q needs whip=, whep= and pid= (or start=builtin)", ErrConfig, t.Name)
	}
	loop := true
	for _, d := range [][2]string{{t.WHIPURL, t.WHIPBearer}, {t.WHEPURL, t.WHEPBearer}} {
		tmpl := d[0]
		if !hasPlaceholder(tmpl) && !hasPlaceholder(d[1]) {
			return fmt.Errorf("%w: URL template %q has no %s or %s (nor has its bearer token)", ErrConfig, tmpl, PathPlaceholder, KeyPlaceholder)
		}
		u, err := url.Parse(expand(tmpl, "p"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: URL template %q is not an http(s) URL", ErrConfig, tmpl)
		}
		loop = loop && isLoopbackHost(u.Hostname())
	}
	switch netMode {
	case "all":
		t.AllInterfaces = true
	case "loopback":
		t.AllInterfaces = false
	default:
		t.AllInterfaces = !loop
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// PIDCPU returns a reader of the CPU time (utime+stime) of process pid and, with children, of
// its live descendants. CPU of descendants that exit during a window is not counted.
func PIDCPU(pid int, children bool) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		total, err := procstat.CPU(pid)
		if err != nil || !children {
			return total, err
		}
		for _, c := range descendants(pid) {
			if d, err := procstat.CPU(c); err == nil {
				total += d
			}
		}
		return total, nil
	}
}

// descendants lists the live descendants of pid from /proc/*/stat.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		kids[pp] = append(kids[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 4096 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range kids[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// CPUsAllowed returns the Cpus_allowed_list of a process (its CPU affinity), or "?".
func CPUsAllowed(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
