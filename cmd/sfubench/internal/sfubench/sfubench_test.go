package sfubench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// serveEnv makes the test binary act as "sfubench serve" (a separate server process, without
// building cmd/sfubench).
const serveEnv = "SFUBENCH_TEST_SERVE_MODE"

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
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := Serve(ctx, ServeConfig{Mode: m, Pprof: true}, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T) func(context.Context, Mode) (*Process, error) {
	return func(ctx context.Context, mode Mode) (*Process, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), serveEnv+"="+string(mode))
		cmd.Stderr = os.Stderr
		p, err := StartProcess(ctx, cmd)
		if err == nil {
			t.Cleanup(func() { _ = p.Close() })
		}
		return p, err
	}
}

// TestSweepSmall runs the real driver path (server in a child process, publisher, viewers, CPU
// from /proc) for two viewers and both modes, briefly.
func TestSweepSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progress bytes.Buffer
	rs, err := Sweep(ctx, SweepConfig{
		Modes: []Mode{ModeGatehouse, ModeNaive}, Viewers: []int{2},
		Warmup: 300 * time.Millisecond, Duration: 2 * time.Second,
		Start: startChild(t), Progress: &progress, ProfileDir: t.TempDir(),
	})
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if len(rs) != 2 {
		t.Fatalf("results: got %d, want 2", len(rs))
	}
	for _, r := range rs {
		t.Run(string(r.Mode), func(t *testing.T) {
			if r.Joined != 2 {
				t.Errorf("joined: got %d, want 2", r.Joined)
			}
			// 2 s of 270 video + 50 audio pps, about 640. No lower bound but one packet: a busy
			// machine sends fewer, and this is not a timing test. The pacer never sends faster,
			// so an upper bound catches a runaway publisher.
			if r.Sent == 0 || r.Sent > 1200 {
				t.Errorf("sent: got %d packets in %v, want 1..1200 (about 640)", r.Sent, r.Window)
			}
			if r.Expected != 2*r.Sent {
				t.Errorf("expected: got %d, want 2 × %d", r.Expected, r.Sent)
			}
			if r.Received == 0 || r.Received > r.Expected {
				t.Errorf("received: got %d, want 1..%d", r.Received, r.Expected)
			}
			if r.LatP50 <= 0 || r.LatP99 < r.LatP50 || r.JoinP50 <= 0 {
				t.Errorf("latency p50 %v p99 %v join %v: want positive and ordered", r.LatP50, r.LatP99, r.JoinP50)
			}
			if r.ServerCPU < 0 || r.USPerPacket < 0 {
				t.Errorf("cpu: got %v (%.2f µs/pkt), want >= 0", r.ServerCPU, r.USPerPacket)
			}
		})
	}
	var md bytes.Buffer
	if err := Markdown(&md, Summarize(rs), 4.4); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(md.String(), "\n| 2 | "); got != 2 {
		t.Errorf("markdown rows for N=2: got %d, want 2\n%s", got, md.String())
	}
	t.Logf("\n%s%s", progress.String(), md.String())
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "42 (sfubench) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 0 0", 3 * time.Second, false},
		{"name with spaces and parens", "42 (a) b) c) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 100 * time.Millisecond, false},
		{"no paren", "42 sfubench S 1", 0, true},
		{"short", "42 (x) S 1 2 3", 0, true},
		{"not a number", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 x 3 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err: got %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("cpu: got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := ProcessCPU(os.Getpid()); err != nil {
		t.Errorf("ProcessCPU(self): %v", err)
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
		{Mode: ModeGatehouse, Viewers: 100, USPerPacket: 7, Window: time.Second},
		{Mode: ModeNaive, Viewers: 100, USPerPacket: 10, Window: time.Second},
	}
	var b bytes.Buffer
	if err := Markdown(&b, rs, 3.5); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| 100 | gatehouse | 7.00 | 0.70 | 2.0 |") {
		t.Errorf("gatehouse row: want ratio 0.70 and 2.0× floor, got\n%s", b.String())
	}
}

func TestSummarizeMedian(t *testing.T) {
	rs := []Result{
		{Mode: ModeNaive, Viewers: 10, USPerPacket: 9},
		{Mode: ModeNaive, Viewers: 10, USPerPacket: 1},
		{Mode: ModeNaive, Viewers: 10, USPerPacket: 5},
		{Mode: ModeGatehouse, Viewers: 1, USPerPacket: 3},
	}
	got := Summarize(rs)
	if len(got) != 2 || got[0].Viewers != 1 || got[1].USPerPacket != 5 {
		t.Errorf("got %+v, want N=1 first and the naive median 5", got)
	}
}
