package authz

import (
	"strings"
	"unicode/utf8"
)

// glob is a compiled glob PathPattern, matched by bytes instead of a regular expression. It
// answers exactly as globRegexp, the regular expression a glob means and the reference of
// glob_test.go: a literal is compared byte for byte, a "*" takes any bytes but '/', a "**" any
// bytes but '\n' (RE2's '.' without the s flag).
//
// The pattern is prefix, then groups of wildcards and literals alternating (toks; the first is a
// wildcard group), the last of which may be a literal suffix.
type glob struct {
	prefix string
	toks   []globTok
}

// globTok is a literal (kind globLit) or one run of '*' (the other kinds).
type globTok struct {
	kind globKind
	lit  string
}

type globKind uint8

const (
	globLit    globKind = iota
	globSeg             // "*": [^/]*
	globAny             // "**", "****", ...: [^\n]*
	globAnySeg          // "***", "*****", ...: [^\n]*[^/]* (the regexp read "**" first)
)

// compileGlob compiles s, which contains a '*'. ok is false when the byte matcher cannot promise
// the regular expression's answer: s holds U+FFFD, which RE2 also reads for an invalid byte in a
// path (such a pattern keeps the regular expression). s must be valid UTF-8.
func compileGlob(s string) (g *glob, ok bool) {
	if strings.ContainsRune(s, utf8.RuneError) {
		return nil, false
	}
	g = &glob{}
	i := strings.IndexByte(s, '*')
	g.prefix, s = s[:i], s[i:]
	for s != "" {
		n := len(s) - len(strings.TrimLeft(s, "*"))
		if n > 0 {
			k := globSeg
			switch {
			case n%2 == 0:
				k = globAny
			case n > 1:
				k = globAnySeg
			}
			g.toks = append(g.toks, globTok{kind: k})
			s = s[n:]
			continue
		}
		j := strings.IndexByte(s, '*')
		if j < 0 {
			j = len(s)
		}
		g.toks = append(g.toks, globTok{kind: globLit, lit: s[:j]})
		s = s[j:]
	}
	return g, true
}

// match reports whether path matches the glob.
func (g *glob) match(path string) bool {
	s, ok := strings.CutPrefix(path, g.prefix)
	if !ok {
		return false
	}
	toks := g.toks
	if last := len(toks) - 1; toks[last].kind == globLit {
		if s, ok = strings.CutSuffix(s, toks[last].lit); !ok {
			return false
		}
		toks = toks[:last]
	}
	if len(toks) == 1 { // one wildcard run takes all of s: the common "live/*", "live/**"
		return wildAll(toks[0].kind, s)
	}
	return matchToks(toks, s)
}

// wildAll reports whether a wildcard run of kind k takes all of s.
func wildAll(k globKind, s string) bool {
	switch k {
	case globSeg:
		return strings.IndexByte(s, '/') < 0
	case globAny:
		return strings.IndexByte(s, '\n') < 0
	}
	// [^\n]*[^/]*: s splits where every '/' is before and every '\n' after.
	nl := strings.IndexByte(s, '\n')
	if nl < 0 {
		nl = len(s)
	}
	return strings.LastIndexByte(s, '/') < nl
}

// matchToks matches s against toks, which start and end with a wildcard run, by carrying the
// set of offsets in s the tokens so far can end at (a bit set): O(len(toks) * len(s)) steps, no
// backtracking, whatever the path.
func matchToks(toks []globTok, s string) bool {
	var buf [8]uint64
	words := len(s)/64 + 1
	set := buf[:]
	if words > len(buf) {
		set = make([]uint64, words)
	} else {
		set = set[:words]
	}
	set[0] = 1 // offset 0
	for _, t := range toks {
		switch t.kind {
		case globLit:
			if !litStep(set, s, t.lit) {
				return false
			}
		case globSeg:
			wildStep(set, s, '/')
		case globAny:
			wildStep(set, s, '\n')
		case globAnySeg:
			wildStep(set, s, '\n')
			wildStep(set, s, '/')
		}
	}
	return set[len(s)/64]&(1<<(len(s)%64)) != 0
}

// wildStep extends set by a run of bytes other than stop: offset q is in it afterwards when some
// offset p <= q was, with no stop in s[p:q].
func wildStep(set []uint64, s string, stop byte) {
	reach := false
	for q := 0; q <= len(s); q++ {
		w, b := q/64, uint64(1)<<(q%64)
		if set[w]&b != 0 {
			reach = true
		} else if reach {
			set[w] |= b
		}
		if q < len(s) && s[q] == stop {
			reach = false
		}
	}
}

// litStep replaces each offset p in set by p+len(lit) where s[p:] starts with lit, and reports
// whether any is left. lit is not empty, so walking down never meets an offset it has set.
func litStep(set []uint64, s, lit string) bool {
	found := false
	for p := len(s); p >= 0; p-- {
		w, b := p/64, uint64(1)<<(p%64)
		if set[w]&b == 0 {
			continue
		}
		set[w] &^= b
		if strings.HasPrefix(s[p:], lit) {
			e := p + len(lit)
			set[e/64] |= 1 << (e % 64)
			found = true
		}
	}
	return found
}
