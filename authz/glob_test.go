package authz

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// globCases are patterns and paths where a byte matcher could part from the regular expression.
var globCases = []struct{ pattern, path string }{
	{"live/*", "live/cam"},
	{"live/*", "live/"},
	{"live/*", "live"},
	{"live/*", "live/cam/"},
	{"live/*", "live/cam/hd"},
	{"live/*", "live//"},
	{"live/*", "live/.."},
	{"live/*", "live/../x"},
	{"live/*", "live/a\nb"},
	{"live/*", "live/é"},
	{"live/*", "live/\xff"},
	{"live/*", "xlive/cam"},
	{"live/**", "live/"},
	{"live/**", "live/a/b/c/"},
	{"live/**", "live/a/../../b"},
	{"live/**", "live/a\nb"},
	{"live/**", "live/\xff/\xfe"},
	{"*", ""},
	{"*", "/"},
	{"*", "a"},
	{"*/", "a/"},
	{"*/", "a/b/"},
	{"/*", "/a"},
	{"/*", "a"},
	{"**", ""},
	{"**", "\n"},
	{"***", "a/b\nc"},
	{"***", "a\nb/c"},
	{"***", "\n"},
	{"****", "a/b"},
	{"*****", "a/\nb"},
	{"*x", "ax"},
	{"*x", "a/x"},
	{"x*", "x"},
	{"a//*", "a//b"},
	{"a//*", "a/b"},
	{"a/*/b", "a//b"},
	{"a/*/b", "a/x/b"},
	{"a/*/b", "a/x/y/b"},
	{"a/**/b", "a/x/y/b"},
	{"a/**/b", "a/b"},
	{"a/**/b", "a//b"},
	{"**/a/*", "/a/a"},
	{"**/a/*", "x/a/a/b"},
	{"**/a*", "/a/a"},
	{"*a*a*", "aaa"},
	{"*a*a*", "a/a"},
	{"*ab*ab", "abab"},
	{"*ab*ab", "abaab"},
	{"**ab*ab", "ab/abab"},
	{"*?*", "x?y"},
	{"*?*", "xzy"},
	{"a.b/*", "axb/c"},
	{"a.b/*", "a.b/c"},
	{"[ab]*", "a"},
	{"[ab]*", "[ab]x"},
	{"(x)*", "(x)y"},
	{"\\*", "\\x"},
	{"\\*", "x"},
	{"^$*", "^$"},
	{"é/*", "é/ü"},
	{"é*", "e\u0301x"},
	{"日本/*/語", "日本/x/語"},
	{"日本/*/語", "日本/\xe8/語"},
	{"*\uFFFD", "x\xff"},
	{"*\uFFFD", "x\uFFFD"},
	{"\uFFFD*", "\xff"},
	{"a\uFFFDb*", "a\xffbc"},
	{"*é", "\xc3\xa9"},
	{"*é", "\xc3"},
	{"*\xc3", "x"}, // not UTF-8: refused
}

// globReference compiles pattern as ParsePathPattern used to: the glob's regular expression.
func globReference(t testing.TB, pattern string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(globRegexp(pattern))
	if err != nil {
		t.Fatalf("reference for %q: %v", pattern, err)
	}
	return re
}

func checkGlob(t testing.TB, pattern, path string) {
	t.Helper()
	p, err := ParsePathPattern(pattern)
	if !utf8.ValidString(pattern) {
		if err == nil {
			t.Fatalf("ParsePathPattern(%q) accepted a pattern that is not UTF-8", pattern)
		}
		return
	}
	if err != nil {
		t.Fatalf("ParsePathPattern(%q): %v", pattern, err)
	}
	want := globReference(t, pattern).MatchString(path)
	if got := p.Match(path); got != want {
		t.Fatalf("%q matching %q: got %v, regexp %v", pattern, path, got, want)
	}
}

func TestGlobMatchesRegexp(t *testing.T) {
	for _, c := range globCases {
		checkGlob(t, c.pattern, c.path)
	}
	long := strings.Repeat("a/", 300) + "b" // past the matcher's stack bit set
	for _, pattern := range []string{"**/b", "*/**/*", "a/**a/*", "**a*b", "*a" + strings.Repeat("/a", 299) + "/*"} {
		checkGlob(t, pattern, long)
		checkGlob(t, pattern, long[:64])
		checkGlob(t, pattern, long[:63])
	}
}

// TestGlobUsesByteMatcher pins that globs do not run the regular expression, but for the one
// form the byte matcher leaves to it.
func TestGlobUsesByteMatcher(t *testing.T) {
	for pattern, wantGlob := range map[string]bool{"live/*": true, "live/**": true, "*": true, "a/*/b/**c": true, "*\uFFFD": false} {
		p, err := ParsePathPattern(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.glob != nil; got != wantGlob || (p.re == nil) != wantGlob {
			t.Errorf("%q: byte matcher %v, want %v", pattern, got, wantGlob)
		}
	}
}

func TestGlobMatchAllocs(t *testing.T) {
	p, err := ParsePathPattern("live/*/hd/**")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { p.Match("live/alice/hd/x/y") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

func FuzzGlobMatchesRegexp(f *testing.F) {
	for _, c := range globCases {
		f.Add(c.pattern, c.path)
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		if !strings.Contains(pattern, "*") || strings.HasPrefix(pattern, "~") {
			pattern = "*" + pattern // a glob, whatever else the input holds
		}
		checkGlob(t, pattern, path)
	})
}
