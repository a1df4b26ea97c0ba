package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseCPU(t *testing.T) {
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
			got, err := ParseCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err: got %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("cpu: got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCPUSelf reads this test process: its CPU time is readable and grows while it spins (read
// from the wrong fields, say a process id or a start time, it would stay put). The spin is bounded
// at 10 s of wall time; at 10 ms a tick it needs about one tick of CPU.
func TestCPUSelf(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatalf("CPU(self): %v", err)
	}
	after, x := before, 0
	for start := time.Now(); after == before && time.Since(start) < 10*time.Second; {
		for range 1 << 20 {
			x++
		}
		if after, err = CPU(os.Getpid()); err != nil {
			t.Fatalf("CPU(self): %v", err)
		}
	}
	if after <= before {
		t.Errorf("CPU time did not grow while spinning: %v then %v (%d)", before, after, x)
	}
}
