package sfubench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// serveEnv makes the test binary act as "sfubench serve" (a separate server process, without
// building cmd/sfubench); edgeEnv carries its EdgeOptions as JSON.
const (
	serveEnv = "SFUBENCH_TEST_SERVE_MODE"
	edgeEnv  = "SFUBENCH_TEST_SERVE_EDGE"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(serveEnv); mode != "" {
		os.Exit(serveChild(mode))
	}
	os.Exit(m.Run())
}

func serveChild(mode string) int {
	m, err := ParseMode(mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var edge EdgeOptions
	if e := os.Getenv(edgeEnv); e != "" {
		if err := json.Unmarshal([]byte(e), &edge); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := Serve(ctx, ServeConfig{Mode: m, Pprof: true, Edge: edge}, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T) func(context.Context, Mode, EdgeOptions) (*Process, error) {
	return func(ctx context.Context, mode Mode, edge EdgeOptions) (*Process, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		e, _ := json.Marshal(edge)
		cmd.Env = append(os.Environ(), serveEnv+"="+string(mode), edgeEnv+"="+string(e))
		cmd.Stderr = os.Stderr
		p, err := StartProcess(ctx, cmd)
		if err == nil {
			t.Cleanup(func() { _ = p.Close() })
		}
		return p, err
	}
}

// TestSweepSmall runs the real driver path (server in a child process, publishers, viewers,
// CPU from /proc) briefly: every workload against the naive forwarder, the fan-out against
// gatehouse, and the naive fan-out once more with per-packet markers.
func TestSweepSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	target := func(name string, mode Mode, markers string) Target {
		tg := Target{Name: name, Builtin: mode, Markers: markers}
		if err := tg.Validate(); err != nil {
			t.Fatal(err)
		}
		return tg
	}
	steps := []struct {
		target Target
		w      Workload
		n      int
	}{
		{target("naive", ModeNaive, ""), WorkloadFanout, 2},
		{target("naive", ModeNaive, ""), WorkloadSimulcast, 2},
		{target("naive", ModeNaive, ""), WorkloadRoom, 3},
		{target("naive-pkt", ModeNaive, MarkersPacket), WorkloadFanout, 2},
		{target("gatehouse", ModeGatehouse, ""), WorkloadFanout, 2},
	}
	var all []Result
	for _, st := range steps {
		t.Run(st.target.Name+"/"+string(st.w), func(t *testing.T) {
			var progress bytes.Buffer
			rs, err := Sweep(ctx, SweepConfig{
				Targets: []Target{st.target}, Workloads: []Workload{st.w}, N: []int{st.n},
				Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond,
				Start: startChild(t), Progress: &progress, ProfileDir: t.TempDir(),
			})
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			if len(rs) != 1 {
				t.Fatalf("results: got %d, want 1", len(rs))
			}
			r := rs[0]
			all = append(all, r)
			t.Log(progress.String())
			if r.Err != "" {
				t.Fatalf("step failed: %s", r.Err)
			}
			wantSessions := st.n
			if st.w == WorkloadRoom {
				wantSessions = st.n * (st.n - 1)
			}
			if r.Sessions != wantSessions || r.Joined != wantSessions {
				t.Errorf("sessions, joined: got %d, %d, want %d", r.Sessions, r.Joined, wantSessions)
			}
			// No lower bound but one: a busy machine sends fewer, and this is not a timing
			// test. The pacer never sends faster, so an upper bound catches a runaway publisher
			// (2 s of 13 video packets per frame and 50 audio packets a second, per publisher).
			pubs := uint64(1)
			if st.w == WorkloadRoom {
				pubs = uint64(st.n)
			}
			if max := 2 * (13*FrameRate + 50) * pubs; r.Sent == 0 || r.Sent > max {
				t.Errorf("sent: got %d packets in %v, want 1..%d", r.Sent, r.Window, max)
			}
			if r.Forwarded == 0 || r.Received == 0 || r.Received > r.Expected {
				t.Errorf("forwarded %d, received %d of %d: want some, at most expected", r.Forwarded, r.Received, r.Expected)
			}
			if r.WrongStream != 0 {
				t.Errorf("wrong stream: %d viewers got another publisher's frames", r.WrongStream)
			}
			if r.LatP50 <= 0 || r.LatP99 < r.LatP50 || r.JoinP50 <= 0 || r.KeyP50 <= 0 {
				t.Errorf("latency p50 %v p99 %v join %v key %v: want positive and ordered", r.LatP50, r.LatP99, r.JoinP50, r.KeyP50)
			}
			if r.ServerCPU < 0 || r.USPerPacket < 0 {
				t.Errorf("cpu: got %v (%.2f µs/pkt), want >= 0", r.ServerCPU, r.USPerPacket)
			}
			if st.w == WorkloadSimulcast && !strings.HasPrefix(r.Layers, "q:") {
				t.Errorf("layers: got %q, want a count per layer", r.Layers)
			}
		})
	}
	var md bytes.Buffer
	if err := Markdown(&md, Summarize(all), "naive", 4.4); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"### fanout", "### simulcast", "### room", "| 2 | gatehouse |", "| 3 | naive |"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("markdown: no %q in\n%s", w, md.String())
		}
	}
	t.Logf("\n%s", md.String())
}

// TestSweepEdge runs the edge workload briefly: an origin and an edge in child processes, three
// viewers on the origin, then three on the edge, and the side-by-side table.
func TestSweepEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tg := Target{Name: "gatehouse", Builtin: ModeGatehouse}
	if err := tg.Validate(); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rs, err := Sweep(ctx, SweepConfig{
		Targets: []Target{tg}, Workloads: []Workload{WorkloadEdge}, N: []int{3},
		Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond,
		Start: startChild(t), Progress: &progress,
	})
	t.Log(progress.String())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if len(rs) != 2 || rs[0].Via != ViaDirect || rs[1].Via != ViaEdge {
		t.Fatalf("results: got %+v, want direct then edge", rs)
	}
	for _, r := range rs {
		if r.Err != "" {
			t.Fatalf("%s: %s", r.Via, r.Err)
		}
		if r.Joined != 3 || r.Forwarded == 0 || r.Received == 0 || r.WrongStream != 0 {
			t.Errorf("%s: joined %d/3, forwarded %d, received %d, wrong stream %d", r.Via, r.Joined, r.Forwarded, r.Received, r.WrongStream)
		}
	}
	if rs[0].EdgeCPU != 0 {
		t.Errorf("direct: edge CPU %v, want none (there is no edge)", rs[0].EdgeCPU)
	}
	var md bytes.Buffer
	if err := Markdown(&md, Summarize(rs), "gatehouse", 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "### edge") || !strings.Contains(md.String(), "| 3 | gatehouse |") {
		t.Errorf("markdown: no edge table in\n%s", md.String())
	}
	t.Logf("\n%s", md.String())
}

func TestMarkdownEdge(t *testing.T) {
	rs := []Result{
		{Target: "gatehouse", Workload: WorkloadFanout, N: 100, USPerPacket: 7, Window: time.Second},
		{Target: "gatehouse", Workload: WorkloadEdge, N: 100, Via: ViaDirect, ServerCPU: 800 * time.Millisecond, Window: 10 * time.Second, Joined: 100, Sessions: 100},
		{Target: "gatehouse", Workload: WorkloadEdge, N: 100, Via: ViaEdge, ServerCPU: 40 * time.Millisecond, EdgeCPU: 820 * time.Millisecond, Window: 10 * time.Second, Joined: 100, Sessions: 100},
		{Target: "gatehouse", Workload: WorkloadEdge, N: 10, Via: ViaDirect, ServerCPU: 80 * time.Millisecond, Window: 10 * time.Second},
		{Target: "gatehouse", Workload: WorkloadEdge, N: 10, Via: ViaEdge, Err: "view: refused"},
	}
	var b bytes.Buffer
	if err := Markdown(&b, rs, "gatehouse", 0); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"### fanout",
		"| 100 | gatehouse | 800 (8) | 40 (0) | 0.050 | 820 (8) | 0.000 | 0.000 |",
		"| 10 | gatehouse | 80 (1) | error: view: refused |  | error: view: refused |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("want %q, got\n%s", want, b.String())
		}
	}
}

func TestParseSNMP(t *testing.T) {
	text := "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 10 1 2 20 3 4\nUdpLite: InDatagrams\nUdpLite: 0\n"
	got := parseSNMP(text, "Udp:")
	want := map[string]uint64{"InDatagrams": 10, "NoPorts": 1, "InErrors": 2, "OutDatagrams": 20, "RcvbufErrors": 3, "SndbufErrors": 4}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %d, want %d", k, got[k], v)
		}
	}
}

func TestRTPPayload(t *testing.T) {
	payload := []byte{1, 2, 3, 4}
	hdr := func(b0 byte, extra ...byte) []byte {
		return append(append([]byte{b0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2}, extra...), payload...)
	}
	ext := binary.BigEndian.AppendUint16([]byte{0xbe, 0xde}, 1) // one 32-bit word
	tests := []struct {
		name   string
		pkt    []byte
		want   []byte
		wantOK bool
	}{
		{"plain", hdr(0x80), payload, true},
		{"csrc", hdr(0x81, 9, 9, 9, 9), payload, true},
		{"extension", hdr(0x90, append(ext, 7, 7, 7, 7)...), payload, true},
		{"padding", append(hdr(0xa0), 0, 0, 3), payload, true},
		{"short", []byte{0x80, 96}, nil, false},
		{"version 1", hdr(0x40), nil, false},
		{"truncated extension", append([]byte{0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2}, 0xbe), nil, false},
		{"padding beyond packet", append(hdr(0xa0), 200), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rtpPayload(tt.pkt)
			if ok != tt.wantOK || !bytes.Equal(got, tt.want) {
				t.Errorf("got %v %v, want %v %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestMarkdownRatio(t *testing.T) {
	rs := []Result{
		{Target: "gatehouse", Workload: WorkloadFanout, N: 100, USPerPacket: 7, Window: time.Second},
		{Target: "naive", Workload: WorkloadFanout, N: 100, USPerPacket: 10, Window: time.Second},
		{Target: "mediamtx", Workload: WorkloadFanout, N: 100, Err: "view: refused"},
	}
	var b bytes.Buffer
	if err := Markdown(&b, rs, "naive", 3.5); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 100 | gatehouse | 0 | 7.00 | 0.70 | 2.0 |", "| 100 | naive | 0 | 10.00 | 1.00 |", "| 100 | mediamtx | | error: view: refused |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("want row %q, got\n%s", want, b.String())
		}
	}
}

func TestSummarizeMedian(t *testing.T) {
	rs := []Result{
		{Target: "naive", Workload: WorkloadFanout, N: 10, USPerPacket: 9},
		{Target: "naive", Workload: WorkloadFanout, N: 10, USPerPacket: 1},
		{Target: "naive", Workload: WorkloadFanout, N: 10, USPerPacket: 5},
		{Target: "naive", Workload: WorkloadFanout, N: 10, Err: "failed"},
		{Target: "gatehouse", Workload: WorkloadFanout, N: 1, USPerPacket: 3},
		{Target: "gatehouse", Workload: WorkloadRoom, N: 2, USPerPacket: 3},
	}
	got := Summarize(rs)
	if len(got) != 3 || got[0].N != 1 || got[1].USPerPacket != 5 || got[2].Workload != WorkloadRoom {
		t.Errorf("got %+v, want fanout N=1, the naive median 5 (failed rep dropped), then room", got)
	}
}
