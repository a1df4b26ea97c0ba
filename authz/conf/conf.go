// Package conf decodes gatehouse's YAML configuration strictly: unknown keys are errors, every
// error names the file, line and key path, and all errors are reported at once. ${VAR} and
// ${VAR:-default} in scalar values are expanded from the environment after parsing, so line
// numbers stay true and a value can never inject YAML.
//
// Types with their own rules implement yaml.Unmarshaler, decode their raw form with Strict (which
// applies the same unknown-key check) and report problems with Errorf so decoding continues and
// every problem is collected.
package conf

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrInvalid is wrapped by every *Errors returned from Decode.
var ErrInvalid = errors.New("conf: invalid configuration")

// Problem is one configuration error.
type Problem struct {
	File string
	Line int // 0 if unknown
	Path string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors lists every problem found in one file, in line order.
type Errors struct {
	Problems []Problem
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *Errors) Unwrap() error { return ErrInvalid }

// Errorf returns an error located at node. Returned from an UnmarshalYAML method, it is collected
// and decoding continues; Decode reports it with the node's line and key path.
func Errorf(node *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{at(node) + fmt.Sprintf(format, args...)}}
}

// Join merges errors returned by Errorf (nil entries ignored) into one that Decode still collects.
func Join(errs ...error) error {
	var out yaml.TypeError
	for _, err := range errs {
		if err == nil {
			continue
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			out.Errors = append(out.Errors, te.Errors...)
		} else {
			out.Errors = append(out.Errors, err.Error())
		}
	}
	if len(out.Errors) == 0 {
		return nil
	}
	return &out
}

func at(node *yaml.Node) string {
	if node == nil {
		return ""
	}
	return fmt.Sprintf("line %d col %d: ", node.Line, node.Column)
}

// Strict decodes node into v like node.Decode, but first reports unknown keys anywhere below node.
// Use it inside UnmarshalYAML methods.
func Strict(node *yaml.Node, v any) error {
	var errs []string
	checkKeys(node, reflect.TypeOf(v), &errs)
	err := node.Decode(v)
	if len(errs) == 0 {
		return err
	}
	te := &yaml.TypeError{Errors: errs}
	var inner *yaml.TypeError
	if errors.As(err, &inner) {
		te.Errors = append(te.Errors, inner.Errors...)
	} else if err != nil {
		te.Errors = append(te.Errors, err.Error())
	}
	return te
}

// Decode parses src (called file in messages) strictly into v, a pointer to a struct. lookup
// resolves ${VAR} (os.LookupEnv in production; nil: no expansion). The error, if any, is *Errors.
func Decode(file string, src []byte, lookup func(string) (string, bool), v any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return &Errors{Problems: parseYAMLError(file, err, nil)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}}}
	}
	paths := map[[2]int]string{}
	recordPaths(doc.Content[0], "", paths)

	var msgs []string
	if lookup != nil {
		expandNode(doc.Content[0], lookup, &msgs)
	}
	checkKeys(doc.Content[0], reflect.TypeOf(v), &msgs)
	if err := doc.Content[0].Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs = append(msgs, te.Errors...)
		} else {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return &Errors{Problems: parseYAMLError(file, &yaml.TypeError{Errors: msgs}, paths)}
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+)(?: col (\d+))?: `)

func parseYAMLError(file string, err error, paths map[[2]int]string) []Problem {
	var raw []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		raw = te.Errors
	} else {
		raw = []string{err.Error()}
	}
	seen := map[string]bool{}
	var out []Problem
	for _, s := range raw {
		p := Problem{File: file, Msg: strings.TrimPrefix(s, "yaml: ")}
		if m := lineRe.FindStringSubmatch(s); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			col := 0
			if m[2] != "" {
				col, _ = strconv.Atoi(m[2])
			}
			p.Msg = s[len(m[0]):]
			p.Path = lookupPath(paths, p.Line, col)
		}
		if key := p.String(); !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

func lookupPath(paths map[[2]int]string, line, col int) string {
	if paths == nil {
		return ""
	}
	if col > 0 {
		if p, ok := paths[[2]int{line, col}]; ok {
			return p
		}
	}
	best := ""
	for k, p := range paths { // line-only: the deepest path starting on that line
		if k[0] == line && len(p) > len(best) {
			best = p
		}
	}
	return best
}

func recordPaths(n *yaml.Node, path string, out map[[2]int]string) {
	if n == nil {
		return
	}
	pos := [2]int{n.Line, n.Column}
	if _, ok := out[pos]; !ok && path != "" {
		out[pos] = path
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			out[[2]int{k.Line, k.Column}] = p
			recordPaths(v, p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			recordPaths(c, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

var varRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

func expandNode(n *yaml.Node, lookup func(string) (string, bool), msgs *[]string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = varRe.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := varRe.FindStringSubmatch(m)
			if v, ok := lookup(sub[1]); ok && v != "" {
				return v
			}
			if sub[2] != "" {
				return sub[3]
			}
			*msgs = append(*msgs, at(n)+fmt.Sprintf("environment variable %s is not set", sub[1]))
			return ""
		})
		if n.Style == 0 { // plain: let yaml resolve the expanded value's type (ports, booleans)
			n.Tag = ""
		}
	default:
		for _, c := range n.Content {
			expandNode(c, lookup, msgs)
		}
	}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKeys walks node alongside t and reports mapping keys that t has no field for. Types that
// implement yaml.Unmarshaler check themselves (with Strict).
func checkKeys(n *yaml.Node, t reflect.Type, errs *[]string) {
	if n == nil || t == nil {
		return
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) {
			return
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // yaml reports the type mismatch
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, at(k)+fmt.Sprintf("unknown key %q (known keys: %s)", k.Value, knownKeys(fields)))
				continue
			}
			if nonZero(t, k.Value) && writtenZero(n.Content[i+1]) {
				*errs = append(*errs, at(n.Content[i+1])+fmt.Sprintf("%s must not be 0: leave the key out for the default, or write a positive value", k.Value))
			}
			checkKeys(n.Content[i+1], ft, errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				checkKeys(c, t.Elem(), errs)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				checkKeys(n.Content[i], t.Elem(), errs)
			}
		}
	}
}

// nonZero reports whether the field of struct t named key in YAML carries the tag conf:"nonzero":
// a number or duration for which 0 is no sensible value and the Go zero value means "the
// default". Written in a file, such a 0 is refused (it would silently become the default); only
// an absent key takes the default. Keys for which 0 is meaningful (a leeway of 0s) have no tag
// and keep a written 0 instead.
func nonZero(t reflect.Type, key string) bool {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f.Tag.Get("conf") == "nonzero"
		}
	}
	return false
}

// writtenZero reports whether n is a scalar that decodes to the number or duration 0.
func writtenZero(n *yaml.Node) bool {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
		return false
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
		return f == 0
	}
	if d, err := time.ParseDuration(n.Value); err == nil {
		return d == 0
	}
	return false
}

func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, out)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

func knownKeys(fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// Duration is a time.Duration written as a Go duration string ("10s", "1h30m") in YAML.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return Errorf(n, "want a duration such as 10s or 1h")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return Errorf(n, "invalid duration %q (want e.g. 500ms, 10s, 1h)", n.Value)
	}
	if v < 0 {
		return Errorf(n, "duration %q must not be negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML renders the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}
