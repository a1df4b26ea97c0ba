package hookio

import (
	"strings"
	"testing"
)

// TestStrings: the fields end as direct assignments in the same order would leave them.
func TestStrings(t *testing.T) {
	big := strings.Repeat("x", MaxBatched+1)
	tests := []struct {
		name string
		sets []string // alternately a field name (a..z) and its value
	}{
		{"none", nil},
		{"some", []string{"a", "1", "b", "22", "c", ""}},
		{"repeated, last wins", []string{"a", "1", "b", "2", "a", "3"}},
		{"more than 16", strings.Split(strings.Repeat("a,1,b,2,c,3,d,4,e,5,f,6,g,7,h,8,i,9,", 2)+"a,last", ",")},
		{"too big for one batch", []string{"a", "1", "a", big, "b", "2"}},
		{"big then small", []string{"a", big, "a", "small"}},
		{"over the byte bound", []string{"a", big[:MaxBatched-1], "b", "xy", "a", "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got, want [26]string
			var s Strings
			for i := 0; i+1 < len(tt.sets); i += 2 {
				f := tt.sets[i][0] - 'a'
				s.Set(&got[f], []byte(tt.sets[i+1]))
				want[f] = tt.sets[i+1]
			}
			s.Flush()
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// TestCopyStrings: every value arrives; values totalling at most MaxBatched share one
// allocation, larger ones get one each (so one kept field never holds more than MaxBatched).
func TestCopyStrings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		src    []string
		allocs float64
	}{
		{"none", []string{"", ""}, 0},
		{"small", []string{"a", "", "bc", "def"}, 1},
		{"at the bound", []string{strings.Repeat("x", MaxBatched-1), "y"}, 1},
		{"over the bound", []string{strings.Repeat("x", MaxBatched), "yy", "zz"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := make([][]byte, len(tc.src))
			for i, s := range tc.src {
				src[i] = []byte(s)
			}
			dst := make([]string, len(src))
			CopyStrings(dst, src)
			for i := range src {
				if dst[i] != tc.src[i] {
					t.Errorf("dst[%d] = %q, want %q", i, dst[i], tc.src[i])
				}
			}
			if n := testing.AllocsPerRun(20, func() { CopyStrings(dst, src) }); n != tc.allocs {
				t.Errorf("%v allocations, want %v", n, tc.allocs)
			}
		})
	}
}
