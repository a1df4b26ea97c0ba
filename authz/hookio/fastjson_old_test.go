package hookio

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The reference implementations below are FoldsToAny and scanString before the hook-speed work
// (issue 12); the differential fuzz tests hold the faster code to them.

func oldFoldsToAny(key []byte, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(n, string(key)) && n != string(key) {
			return true
		}
	}
	return false
}

func oldScanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			if !ascii && !utf8.Valid(s) {
				return nil, j, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, j, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, len(b), false
}

func FuzzFoldsToAnyMatchesOld(f *testing.F) {
	for _, s := range [][3]string{{"URL", "url", "new_url"}, {"\u212aey", "key", "x"}, {"ſtream", "stream", "app"}, {"stream", "stream", "STREAM"}, {"a@", "a`", "b"}, {"k", "\u212a", ""}} {
		f.Add([]byte(s[0]), s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, key []byte, n1, n2 string) {
		if got, want := FoldsToAny(key, n1, n2), oldFoldsToAny(key, n1, n2); got != want {
			t.Fatalf("FoldsToAny(%q, %q, %q) = %v, want %v", key, n1, n2, got, want)
		}
	})
}

func FuzzScanStringMatchesOld(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, "\"\xff\"", "\"é\\\"", "\"é\x01\"", `"abc`, `x"`, "\"a\x00", "\"\xe2\x82\"x\"", "\"abcdefgh\x7f\"", "\"abcdefghijklmnopqrstuvwx\"yz", "\"abcdé\x01fghijklmnopq\"", "\"ab\\\\cdefghijklmn\"", "\"éééééééé\xff\"123456789\"", "\"abcdefg\x1fhij\"xyz"} {
		f.Add([]byte(s), 0)
	}
	f.Fuzz(func(t *testing.T, b []byte, i int) {
		if i < 0 || i > len(b) {
			return
		}
		got, gotEnd, gotOK := scanString(b, i)
		want, wantEnd, wantOK := oldScanString(b, i)
		if gotOK != wantOK || string(got) != string(want) || gotEnd != wantEnd || (got == nil) != (want == nil) {
			t.Fatalf("scanString(%q, %d) = %q, %d, %v; want %q, %d, %v", b, i, got, gotEnd, gotOK, want, wantEnd, wantOK)
		}
	})
}

// TestScanStringEveryByte puts every byte value at every offset of the first two words a string
// scan reads (and just past them), before and after a non-ASCII byte, and compares with the old
// scanString.
func TestScanStringEveryByte(t *testing.T) {
	for _, prefix := range []string{"", "é"} {
		for pos := 0; pos < 20; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(`"` + prefix + strings.Repeat("a", pos) + string(rune(0)) + strings.Repeat("b", 20) + `"tail`)
				b[1+len(prefix)+pos] = byte(c)
				got, gotEnd, gotOK := scanString(b, 0)
				want, wantEnd, wantOK := oldScanString(b, 0)
				if gotOK != wantOK || string(got) != string(want) || gotEnd != wantEnd {
					t.Fatalf("scanString(%q) = %q, %d, %v; want %q, %d, %v", b, got, gotEnd, gotOK, want, wantEnd, wantOK)
				}
			}
		}
	}
}
