package hookio

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// FastKind is the kind of a value WalkJSON reports.
type FastKind uint8

// The kinds of value WalkJSON reports.
const (
	FastString FastKind = iota // a string without escapes, valid UTF-8; val is its content
	FastNull                   // null; val is nil
	FastUint                   // 0 or a decimal integer without sign, fraction or exponent; val is its digits
	FastObject                 // a top-level member whose value is an object: its members follow with this key as parent
)

// WalkJSON reads the common shape of a hook body without reflection: one object whose values are
// strings without escapes, null, unsigned integers, or objects (one level deep) of the same. It
// calls field for each member in document order, with parent nil for a top-level member and the
// enclosing key for a member of a nested object; a nested object is announced first with
// FastObject and its members are read only if field returns true for it. It reports false when
// field returns false or the document is anything else (escapes, fractions, booleans, arrays,
// deeper nesting, invalid UTF-8, trailing data, invalid JSON); the caller then decodes with
// encoding/json, so the fast path only ever has to agree with encoding/json on the documents it
// accepts (each adapter's differential fuzz test checks that). The byte slices alias b.
func WalkJSON(b []byte, field func(parent, key, val []byte, kind FastKind) bool) bool {
	i, ok := walkObject(b, skipWS(b, 0), nil, field)
	return ok && skipWS(b, i) == len(b)
}

// walkObject reads the object at b[i] (parent nil: the top level) and returns the index after it.
func walkObject(b []byte, i int, parent []byte, field func(parent, key, val []byte, kind FastKind) bool) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		key, j, ok := scanString(b, i)
		if !ok {
			return j, false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return i, false
		}
		switch c := b[i]; {
		case c == '"':
			var val []byte
			if val, i, ok = scanString(b, i); !ok || !field(parent, key, val, FastString) {
				return i, false
			}
		case c == 'n':
			if !bytes.HasPrefix(b[i:], nullLit) || !field(parent, key, nil, FastNull) {
				return i, false
			}
			i += len(nullLit)
		case '0' <= c && c <= '9':
			j := i + 1
			if c != '0' {
				for j < len(b) && '0' <= b[j] && b[j] <= '9' {
					j++
				}
			}
			if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || ('0' <= b[j] && b[j] <= '9')) {
				return j, false // a fraction, an exponent or a leading zero: leave it to encoding/json
			}
			if !field(parent, key, b[i:j], FastUint) {
				return i, false
			}
			i = j
		case c == '{' && parent == nil:
			if !field(nil, key, nil, FastObject) {
				return i, false
			}
			if i, ok = walkObject(b, i, key, field); !ok {
				return i, false
			}
		default:
			return i, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

var nullLit = []byte("null")

// FoldsToAny reports whether key equals one of names ignoring case (as encoding/json matches
// field names) without equalling it exactly: a key encoding/json would map to a field that an
// exact comparison would miss, which a fast path must leave to encoding/json.
func FoldsToAny(key []byte, names ...string) bool {
	if !isASCII(key) {
		k := string(key)
		for _, n := range names {
			if strings.EqualFold(n, k) && n != k {
				return true
			}
		}
		return false
	}
	// For an ASCII key, strings.EqualFold is a byte-wise ASCII fold at the same length; a name of
	// another length can fold to it only through longer non-ASCII runes (the Kelvin sign folds
	// to 'k', U+017F to 's'), so only such a name needs strings.EqualFold.
	for _, n := range names {
		switch {
		case len(n) == len(key):
			if asciiFoldsTo(key, n) && n != string(key) {
				return true
			}
		case len(n) > len(key) && !isASCIIString(n):
			if strings.EqualFold(n, string(key)) {
				return true
			}
		}
	}
	return false
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// asciiFoldsTo reports whether ASCII key equals n (of the same length) ignoring ASCII case; a
// non-ASCII byte of n never matches.
func asciiFoldsTo(key []byte, n string) bool {
	for i, c := range key {
		if d := n[i]; c != d && (c|0x20 != d|0x20 || c|0x20 < 'a' || c|0x20 > 'z') {
			return false
		}
	}
	return true
}

// plainByte marks the bytes a string without escapes holds as they are: printable ASCII other
// than '"' and '\\' (an immutable lookup table).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Word-at-a-time masks for scanString: every byte of a uint64 set to the same value.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// specialBytes marks, in the high bit of each byte, the bytes of little-endian word v that are not
// plain printable ASCII: '"', '\\', a control byte (< 0x20) or a non-ASCII byte (>= 0x80). A byte
// above a marked one may be marked too (a borrow of a subtraction carries over), but the lowest
// marked byte is always one of those, and scanString only uses the lowest.
func specialBytes(v uint64) uint64 {
	q := v ^ ('"' * ones)
	bs := v ^ ('\\' * ones)
	// (b-0x20)|b has its high bit set for b < 0x20 and b >= 0x80 (without a borrow from below).
	return ((q-ones)&^q | (bs-ones)&^bs | (v - 0x20*ones) | v) & highs
}

// scanString reads a JSON string without escapes starting at b[i] == '"'. It skips plain
// printable ASCII 8 bytes at a time (specialBytes) and leaves the rest, from the first byte that is
// not, to scanStringTail.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	j := i + 1
	for j+8 <= len(b) {
		if m := specialBytes(binary.LittleEndian.Uint64(b[j : j+8])); m != 0 {
			j += bits.TrailingZeros64(m) >> 3
			if b[j] == '"' {
				return b[i+1 : j], j + 1, true
			}
			break
		}
		j += 8
	}
	return scanStringTail(b, i, j)
}

// scanStringTail reads the string starting at b[i] == '"' byte by byte from b[j], all of b[i+1:j]
// being plain printable ASCII.
func scanStringTail(b []byte, i, j int) ([]byte, int, bool) {
	ascii := true
	for ; j < len(b); j++ {
		c := b[j]
		if plainByte[c] {
			continue
		}
		switch {
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

func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
