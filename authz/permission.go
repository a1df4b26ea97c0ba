package authz

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// PathPattern matches stream paths. The syntax is MediaMTX's plus globs:
//   - ""          any path
//   - "~re"       Go regular expression, unanchored (MediaMTX semantics: "~cam" matches "mycam2")
//   - with a '*'  glob: '*' matches within one segment, '**' across segments ("live/*", "live/**")
//   - otherwise   the exact path
//
// MediaMTX path names cannot contain '*', so the glob form never changes what a MediaMTX config
// means. The zero PathPattern matches any path.
type PathPattern struct {
	src  string
	re   *regexp.Regexp // the "~" form, or a glob that glob cannot match exactly (see compileGlob)
	glob *glob          // a glob; nil with re nil: exact or any
}

// ParsePathPattern compiles s. An invalid regular expression is an error (MediaMTX silently never
// matches it), as is a glob that is not valid UTF-8.
func ParsePathPattern(s string) (PathPattern, error) {
	switch {
	case s == "":
		return PathPattern{}, nil
	case strings.HasPrefix(s, "~"):
		re, err := regexp.Compile(s[1:])
		if err != nil {
			return PathPattern{}, fmt.Errorf("%w: regular expression %q: %v", ErrInvalidPath, s[1:], err)
		}
		return PathPattern{src: s, re: re}, nil
	case strings.Contains(s, "*"):
		if !utf8.ValidString(s) {
			return PathPattern{}, fmt.Errorf("%w: glob %q is not valid UTF-8", ErrInvalidPath, s)
		}
		if g, ok := compileGlob(s); ok {
			return PathPattern{src: s, glob: g}, nil
		}
		return PathPattern{src: s, re: regexp.MustCompile(globRegexp(s))}, nil
	}
	return PathPattern{src: s}, nil
}

// globRegexp is the regular expression glob s means: '*' matches within one segment, '**' across
// segments, everything else literally.
func globRegexp(s string) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "**"):
			b.WriteString(".*")
			i += 2
		case s[i] == '*':
			b.WriteString("[^/]*")
			i++
		default:
			j := i
			for j < len(s) && s[j] != '*' {
				j++
			}
			b.WriteString(regexp.QuoteMeta(s[i:j]))
			i = j
		}
	}
	b.WriteString("$")
	return b.String()
}

// Match reports whether path matches the pattern.
func (p PathPattern) Match(path string) bool {
	switch {
	case p.glob != nil:
		return p.glob.match(path)
	case p.src == "":
		return true
	case p.re != nil:
		return p.re.MatchString(path)
	}
	return p.src == path
}

// String returns the pattern as written.
func (p PathPattern) String() string { return p.src }

// Permission grants one action, optionally limited to paths and protocols. This is MediaMTX's
// {action, path} plus an optional protocol list (MediaMTX #4103).
type Permission struct {
	Action    Action
	Path      PathPattern
	Protocols []string // lower-case; empty: any protocol
}

// NewPermission builds a validated Permission from its written form.
func NewPermission(action, path string, protocols []string) (Permission, error) {
	a, err := ParseAction(action)
	if err != nil {
		return Permission{}, err
	}
	p, err := ParsePathPattern(path)
	if err != nil {
		return Permission{}, err
	}
	if len(protocols) > 0 && !a.HasPath() {
		return Permission{}, fmt.Errorf("authz: protocols apply only to publish, read and playback, not %q", a)
	}
	perm := Permission{Action: a, Path: p}
	for _, pr := range protocols {
		pr = normProtocol(pr)
		if pr == "" {
			return Permission{}, fmt.Errorf("authz: empty protocol name")
		}
		perm.Protocols = append(perm.Protocols, pr)
	}
	return perm, nil
}

// Matches reports whether the permission covers req. api, metrics and pprof ignore the path, as
// in MediaMTX.
func (p *Permission) Matches(req *Request) bool {
	if p.Action != req.Action {
		return false
	}
	if len(p.Protocols) > 0 && !slices.Contains(p.Protocols, normProtocol(req.Protocol)) {
		return false
	}
	if !req.Action.HasPath() {
		return true
	}
	return p.Path.Match(req.Path)
}

// Permissions is a list of grants; it matches if any element does.
type Permissions []Permission

// Match reports whether any permission covers req.
func (ps Permissions) Match(req *Request) bool {
	for i := range ps {
		if ps[i].Matches(req) {
			return true
		}
	}
	return false
}

// String renders a permission as "action:path" (path omitted when any), for CLI output.
func (p Permission) String() string {
	s := string(p.Action)
	if p.Path.src != "" {
		s += ":" + p.Path.src
	}
	if len(p.Protocols) > 0 {
		s += " (" + strings.Join(p.Protocols, ",") + ")"
	}
	return s
}
