// Package logline writes one hot log line (the engine's decision line) without slog's generic
// path: the line is appended field by field into a pooled buffer and written with one Write. The
// bytes are those slog.NewTextHandler or slog.NewJSONHandler (no ReplaceAttr, no AddSource)
// would write for the same record: time, level, msg, the logger's own attributes, then the
// line's, with the same quoting and escaping (a differential test holds it to slog's handlers).
package logline

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Logger writes lines in one format to one writer. Its zero value is not usable; build it with
// New. It starts no goroutines and is safe for concurrent use when its writer accepts concurrent
// Writes of whole lines (as slog's handlers, it makes one Write per line).
type Logger struct {
	w      io.Writer
	json   bool
	level  slog.Leveler
	prefix []byte // the logger's attributes, rendered once
	pool   sync.Pool
	stamp  atomic.Pointer[stamp] // the text time of the last second a line was begun in
}

const dateLen = len("2006-01-02T15:04:05")

// stamp is a second's text time without its milliseconds: lines begun in the same second (most
// of them, under load) only append their milliseconds.
type stamp struct {
	sec  int64
	loc  *time.Location
	date [dateLen]byte
	zone string // "Z" or "+hh:mm"
}

// New returns a Logger writing to w in slog's JSON (json) or text format, the lines at or above
// level (nil: slog.LevelInfo), each carrying attrs after msg (as slog.Logger.With would). attrs
// are rendered once, here.
func New(w io.Writer, json bool, level slog.Leveler, attrs ...slog.Attr) *Logger {
	if level == nil {
		level = slog.LevelInfo
	}
	l := &Logger{w: w, json: json, level: level}
	l.pool.New = func() any { b := make([]byte, 0, 512); return &b }
	ln := Line{json: json}
	for _, a := range attrs {
		ln.attr(a)
	}
	l.prefix = ln.b
	return l
}

// Enabled reports whether a line at level is written.
func (l *Logger) Enabled(level slog.Level) bool { return level >= l.level.Level() }

// Line is one line being built. Its methods append a field; End writes it.
type Line struct {
	l    *Logger
	bp   *[]byte
	b    []byte
	json bool
}

// Begin starts a line at time t (the record's time) and level with msg. The caller must End it.
func (l *Logger) Begin(t time.Time, level slog.Level, msg string) Line {
	bp := l.pool.Get().(*[]byte)
	ln := Line{l: l, bp: bp, b: (*bp)[:0], json: l.json}
	if ln.json {
		ln.b = append(ln.b, `{"time":"`...)
		ln.b = t.Round(0).AppendFormat(ln.b, time.RFC3339Nano)
		ln.b = append(ln.b, `","level":"`...)
		ln.b = append(ln.b, level.String()...)
		ln.b = append(ln.b, `","msg":`...)
		ln.b = appendJSONString(ln.b, msg)
	} else {
		ln.b = append(ln.b, "time="...)
		ln.b = l.appendTime(ln.b, t.Round(0))
		ln.b = append(ln.b, " level="...)
		ln.b = append(ln.b, level.String()...) // letters, digits, '+' or '-': never quoted
		ln.b = append(ln.b, " msg="...)
		ln.b = appendTextString(ln.b, msg)
	}
	ln.b = append(ln.b, l.prefix...)
	return ln
}

// End finishes the line and writes it.
func (ln *Line) End() {
	if ln.json {
		ln.b = append(ln.b, '}')
	}
	ln.b = append(ln.b, '\n')
	_, _ = ln.l.w.Write(ln.b)
	if cap(ln.b) <= 16<<10 { // as slog, an unusually long line's buffer is not kept
		*ln.bp = ln.b
		ln.l.pool.Put(ln.bp)
	}
	ln.b = nil
}

func (ln *Line) key(k string) {
	if ln.json {
		ln.b = appendJSONKey(ln.b, k)
	} else {
		ln.b = appendTextKey(ln.b, k)
	}
}

// appendTextKey appends " key=".
func appendTextKey(b []byte, k string) []byte {
	b = append(b, ' ')
	if plain(k) {
		b = append(b, k...)
	} else {
		b = appendTextStringSlow(b, k)
	}
	return append(b, '=')
}

// appendJSONKey appends `,"key":`.
func appendJSONKey(b []byte, k string) []byte {
	if plain(k) {
		b = append(b, ',', '"')
		b = append(b, k...)
		return append(b, '"', ':')
	}
	b = append(b, ',')
	b = appendJSONStringSlow(b, k)
	return append(b, ':')
}

// String appends key=value.
func (ln *Line) String(key, value string) {
	if ln.json {
		ln.b = appendJSONString(appendJSONKey(ln.b, key), value)
	} else {
		ln.b = appendTextString(appendTextKey(ln.b, key), value)
	}
}

// Bytes appends key=value for a value held in bytes (an address appended to a stack array):
// no string is made for it unless it needs quoting or escaping.
func (ln *Line) Bytes(key string, value []byte) {
	if !plain(value) {
		ln.String(key, string(value))
		return
	}
	if ln.json {
		b := appendJSONKey(ln.b, key)
		b = append(b, '"')
		b = append(b, value...)
		ln.b = append(b, '"')
	} else {
		ln.b = append(appendTextKey(ln.b, key), value...)
	}
}

// Duration appends key=d: d.String() in text, nanoseconds in JSON.
func (ln *Line) Duration(key string, d time.Duration) {
	ln.key(key)
	if ln.json {
		ln.b = strconv.AppendInt(ln.b, int64(d), 10)
	} else {
		ln.b = append(ln.b, d.String()...)
	}
}

// Bool appends key=v.
func (ln *Line) Bool(key string, v bool) {
	ln.key(key)
	ln.b = strconv.AppendBool(ln.b, v)
}

// Time appends key=t: RFC 3339 with milliseconds in text, with nanoseconds in JSON.
func (ln *Line) Time(key string, t time.Time) {
	ln.key(key)
	t = t.Round(0)
	if ln.json {
		ln.b = append(ln.b, '"')
		ln.b = t.AppendFormat(ln.b, time.RFC3339Nano)
		ln.b = append(ln.b, '"')
		return
	}
	ln.b = appendRFC3339Millis(ln.b, t)
}

// attr renders a logger attribute given to New (the kinds above; others as slog's
// Value.String, quoted as a string).
func (ln *Line) attr(a slog.Attr) {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindDuration:
		ln.Duration(a.Key, v.Duration())
	case slog.KindBool:
		ln.Bool(a.Key, v.Bool())
	case slog.KindTime:
		ln.Time(a.Key, v.Time())
	default:
		ln.String(a.Key, v.String())
	}
}

// appendTime is appendRFC3339Millis through the logger's cache of the current second.
func (l *Logger) appendTime(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	s := l.stamp.Load()
	if s == nil || s.sec != sec || s.loc != loc {
		full := appendRFC3339Millis(make([]byte, 0, 32), t)
		if len(full) < dateLen+4 || full[dateLen] != '.' { // a year beyond 0–9999
			return append(b, full...)
		}
		s = &stamp{sec: sec, loc: loc, zone: string(full[dateLen+4:])}
		copy(s.date[:], full)
		l.stamp.Store(s)
	}
	ms := uint(t.Nanosecond()) / uint(time.Millisecond)
	b = append(b, s.date[:]...)
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, s.zone...)
}

// appendRFC3339Millis is slog's text time: RFC 3339 with exactly three fractional digits. Written
// by hand (the per-line cost of time.AppendFormat was a tenth of a hook's own work); years
// outside 0–9999 go through the general formatter, as RFC 3339 cannot write them either.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return appendRFC3339MillisSlow(b, t)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/int(time.Millisecond), 3)
	_, off := t.Zone()
	if off == 0 {
		return append(b, 'Z')
	}
	zone := off / 60 // minutes, truncated toward zero as time.Format does: -30 s is "+00:00"
	sign := byte('+')
	if zone < 0 {
		sign, zone = '-', -zone
	}
	b = append(b, sign)
	b = appendDigits(b, zone/60, 2)
	b = append(b, ':')
	return appendDigits(b, zone%60, 2)
}

// appendRFC3339MillisSlow is appendRFC3339Millis through time.AppendFormat.
func appendRFC3339MillisSlow(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
}

// appendDigits appends v (≥ 0) in decimal, zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [8]byte
	i := len(buf)
	for ; v > 0 || width > 0; width-- {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[i:]...)
}

// plainByte marks the bytes both formats write as they are wherever they stand in a string:
// printable ASCII other than space, '"', '\\' and '=' (an immutable lookup table).
var plainByte = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '='
	}
	return t
}()

// plain reports whether s is non-empty and all plainByte: written as it is by both formats (the
// common case, checked first, one table lookup a byte).
func plain[S string | []byte](s S) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return len(s) > 0
}

// appendTextString is slog's text string: as it is unless needsQuoting, else quoted.
func appendTextString(b []byte, s string) []byte {
	if plain(s) {
		return append(b, s...)
	}
	return appendTextStringSlow(b, s)
}

// appendTextStringSlow is appendTextString by slog's own rule, for strings that are not plain.
func appendTextStringSlow(b []byte, s string) []byte {
	if !needsQuoting(s) {
		return append(b, s...)
	}
	return strconv.AppendQuote(b, s)
}

// needsQuoting is slog's text handler's rule.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b != '\\' && (b == ' ' || b == '=' || !safe(b)) {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// safe is slog's safeSet: ASCII that needs no escaping in a JSON string.
func safe(b byte) bool { return b >= ' ' && b != '"' && b != '\\' && b < utf8.RuneSelf }

const hex = "0123456789abcdef"

// appendJSONString is slog's JSON string: quoted, escaped as appendEscapedJSONString does.
func appendJSONString(b []byte, s string) []byte {
	if plain(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return appendJSONStringSlow(b, s)
}

// appendJSONStringSlow is appendJSONString escaping byte by byte, for strings that are not plain.
func appendJSONStringSlow(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe(c) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, '\\')
			switch c {
			case '\\', '"':
				b = append(b, c)
			case '\n':
				b = append(b, 'n')
			case '\r':
				b = append(b, 'r')
			case '\t':
				b = append(b, 't')
			default:
				b = append(b, 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
