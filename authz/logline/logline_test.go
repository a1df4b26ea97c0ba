package logline

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

// viaSlog is the oracle: the same line through slog's own handler.
func viaSlog(json bool, t time.Time, level slog.Level, msg string, prefix, attrs []slog.Attr) string {
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	if json {
		h = slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	h = h.WithAttrs(prefix)
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(context.Background(), r)
	return buf.String()
}

func viaLogline(json bool, t time.Time, level slog.Level, msg string, prefix, attrs []slog.Attr) string {
	var buf bytes.Buffer
	l := New(&buf, json, slog.LevelDebug, prefix...)
	ln := l.Begin(t, level, msg)
	for _, a := range attrs {
		ln.attr(a)
	}
	ln.End()
	return buf.String()
}

func check(t *testing.T, tm time.Time, level slog.Level, msg string, prefix, attrs []slog.Attr) {
	t.Helper()
	for _, json := range []bool{false, true} {
		got, want := viaLogline(json, tm, level, msg, prefix, attrs), viaSlog(json, tm, level, msg, prefix, attrs)
		if got != want {
			t.Errorf("json=%v:\ngot  %s\nwant %s", json, got, want)
		}
	}
}

var strangeStrings = []string{
	"", "live/cam", "a b", "a=b", `q"uote`, `back\slash`, "tab\there", "nl\nx", "cr\rx", "\x00\x01\x1f", "\x7f",
	"é", "日本", "\u2028\u2029", "\ufffd", "\xff\xfe", "a\xffb", "\u00a0nbsp", "\u200bzw", "<>&", "k=v w",
	"203.0.113.7", "2001:db8::1", "user@example.com", "?#", "\u0085",
}

// TestSameBytesAsSlog: every field kind the engine writes, with the strings that exercise each
// quoting and escaping rule, gives slog's own bytes in both formats.
func TestSameBytesAsSlog(t *testing.T) {
	tm := time.Date(2026, 11, 30, 7, 1, 10, 571_234_567, time.UTC)
	prefix := []slog.Attr{slog.String("component", "authz")}
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		check(t, tm, level, "decision", prefix, nil)
	}
	for _, s := range strangeStrings {
		check(t, tm, slog.LevelInfo, "decision", prefix, []slog.Attr{slog.String("path", s), slog.String(s+"k", "v")})
		check(t, tm, slog.LevelInfo, s, []slog.Attr{slog.String("c", s)}, nil)
		for _, json := range []bool{false, true} { // Bytes writes what String writes
			var a, b bytes.Buffer
			la, lb := New(&a, json, nil), New(&b, json, nil)
			x, y := la.Begin(tm, slog.LevelInfo, "m"), lb.Begin(tm, slog.LevelInfo, "m")
			x.String("ip", s)
			y.Bytes("ip", []byte(s))
			x.End()
			y.End()
			if a.String() != b.String() {
				t.Errorf("Bytes %q: got %s, want %s", s, b.String(), a.String())
			}
		}
	}
	for _, d := range []time.Duration{0, 1, 999, 1500, 12_345_678, 3 * time.Second, -5} {
		check(t, tm, slog.LevelInfo, "decision", prefix, []slog.Attr{slog.Duration("took", d)})
	}
	times := []time.Time{tm, tm.Add(429 * time.Millisecond), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), time.Now(),
		time.Date(2026, 6, 1, 0, 0, 0, 999_999_999, time.FixedZone("nst", -(3*3600+30*60))), // negative, with minutes
		time.Date(2026, 6, 1, 23, 59, 59, 1_000_000, time.FixedZone("lmt", 3600+75)),        // seconds in the offset
		time.Date(2026, 6, 1, 1, 2, 3, 0, time.FixedZone("m30", -30)), time.Date(2026, 6, 1, 1, 2, 3, 0, time.FixedZone("m1", -1)),
		time.Date(2026, 6, 1, 1, 2, 3, 0, time.FixedZone("m59", -59)), time.Date(2026, 6, 1, 1, 2, 3, 0, time.FixedZone("m61", -61)),
		time.Date(2026, 6, 1, 1, 2, 3, 0, time.FixedZone("m3599", -3599)), time.Date(2026, 6, 1, 1, 2, 3, 0, time.FixedZone("p59", 59)),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 5e6, time.UTC)} // (slog's JSON cannot write years beyond 0–9999)
	for _, at := range times {
		check(t, at, slog.LevelInfo, "decision", prefix, []slog.Attr{slog.Time("expires", at), slog.Bool("expiry_enforced", false), slog.Bool("undecided", true)})
	}
}

// FuzzSameBytesAsSlog holds string fields, keys and messages to slog's bytes.
func FuzzSameBytesAsSlog(f *testing.F) {
	for _, s := range strangeStrings {
		f.Add(s, s, int64(1500))
	}
	f.Fuzz(func(t *testing.T, value, msg string, d int64) {
		tm := time.Unix(d%(1<<36), d%1000*1e6).In(time.FixedZone("z", int(d%(14*3600)))) // years 0–4147
		check(t, tm, slog.LevelWarn, msg, []slog.Attr{slog.String("component", value)},
			[]slog.Attr{slog.String("path", value), slog.String(value, msg), slog.Duration("took", time.Duration(d)), slog.Time("expires", tm)})
	})
}

func BenchmarkLine(b *testing.B) {
	tm := time.Now()
	for _, json := range []bool{false, true} {
		name := "text"
		if json {
			name = "json"
		}
		b.Run(name+"/slog", func(b *testing.B) {
			var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
			if json {
				h = slog.NewJSONHandler(io.Discard, nil)
			}
			log := slog.New(h).With("component", "authz")
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(context.Background(), slog.LevelInfo, "decision", slog.String("action", "publish"), slog.String("path", "live/cam"),
					slog.String("protocol", "rtmp"), slog.String("source", "mediamtx"), slog.String("result", "allow"), slog.String("backend", "internal"),
					slog.String("reason", ""), slog.Duration("took", 1234), slog.String("ip", "203.0.113.7"), slog.String("identity", "alice"))
			}
		})
		b.Run(name+"/logline", func(b *testing.B) {
			l := New(io.Discard, json, nil, slog.String("component", "authz"))
			b.ReportAllocs()
			for b.Loop() {
				ln := l.Begin(tm, slog.LevelInfo, "decision")
				ln.String("action", "publish")
				ln.String("path", "live/cam")
				ln.String("protocol", "rtmp")
				ln.String("source", "mediamtx")
				ln.String("result", "allow")
				ln.String("backend", "internal")
				ln.String("reason", "")
				ln.Duration("took", 1234)
				ln.String("ip", "203.0.113.7")
				ln.String("identity", "alice")
				ln.End()
			}
		})
	}
}

// TestOneLoggerManyTimes: one logger (its cached second) writing lines whose times move within a
// second, across seconds, between zones in the same second, and back, gives slog's time each time.
func TestOneLoggerManyTimes(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, false, slog.LevelDebug)
	base := time.Date(2026, 11, 30, 7, 1, 10, 0, time.UTC)
	east, west := time.FixedZone("e", 5*3600+45*60), time.FixedZone("w", -8*3600)
	times := []time.Time{base, base.Add(999 * time.Millisecond), base.Add(time.Second), base.Add(time.Second + 5*time.Millisecond),
		base.In(east), base.In(west), base.Add(999 * time.Millisecond).In(east), base, base.Add(-time.Nanosecond),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), base, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), base.Add(time.Hour)}
	for _, tm := range times {
		buf.Reset()
		ln := l.Begin(tm, slog.LevelInfo, "m")
		ln.End()
		if want := viaSlog(false, tm, slog.LevelInfo, "m", nil, nil); buf.String() != want {
			t.Errorf("%v: got %s, want %s", tm, buf.String(), want)
		}
	}
}

// refTextString is the text string writer as it was before its fast path (a byte-by-byte plain
// check, then slog's rules); refJSONString asks slog itself: the references the fast paths are
// held to.
func refTextString(b []byte, s string) []byte {
	if refPlain(s) || !needsQuoting(s) {
		return append(b, s...)
	}
	return strconv.AppendQuote(b, s)
}

// refJSONString is slog's own JSON string: the value of the only attribute of a line whose
// built-in fields are dropped.
func refJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	drop := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
			return slog.Attr{}
		}
		return a
	}
	slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: drop})).Info("", "k", s)
	v, ok := strings.CutPrefix(buf.String(), `{"k":`)
	if v, ok2 := strings.CutSuffix(v, "}\n"); ok && ok2 {
		return append(b, v...)
	}
	panic("unexpected slog line " + buf.String())
}

func refPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=' {
			return false
		}
	}
	return len(s) > 0
}

// sameAsRef holds every string writer (values and keys) to the reference for s, appended after a
// prefix into buffers with no spare capacity, some, and enough.
func sameAsRef(t *testing.T, s string) {
	t.Helper()
	const pre = "x=1"
	for _, spare := range []int{0, len(s) / 2, len(s) + 8} {
		buf := func() []byte { return append(make([]byte, 0, len(pre)+spare), pre...) }
		for _, c := range []struct {
			name      string
			got, want []byte
		}{
			{"text", appendTextString(buf(), s), refTextString(buf(), s)},
			{"json", appendJSONString(buf(), s), refJSONString(buf(), s)},
			{"text key", appendTextKey(buf(), s), append(refTextString(append(buf(), ' '), s), '=')},
			{"json key", appendJSONKey(buf(), s), append(refJSONString(append(buf(), ','), s), ':')},
		} {
			if !bytes.Equal(c.got, c.want) {
				t.Fatalf("%s %q (spare %d): got %q, want %q", c.name, s, spare, c.got, c.want)
			}
		}
	}
}

// TestFastStringsEveryByteEveryPlace: one byte of every value at every place of a plain string of
// every length up to 24 (each word-at-a-time check and its tail), written as the reference does.
func TestFastStringsEveryByteEveryPlace(t *testing.T) {
	for n := 0; n <= 24; n++ {
		sameAsRef(t, strings.Repeat("a", n))
		for i := 0; i < n; i++ {
			for c := 0; c < 256; c++ {
				s := []byte(strings.Repeat("a", n))
				s[i] = byte(c)
				sameAsRef(t, string(s))
			}
		}
	}
	for _, s := range strangeStrings {
		sameAsRef(t, s)
	}
}

// FuzzFastStrings holds the fast string and key writers to the reference on arbitrary input.
func FuzzFastStrings(f *testing.F) {
	for _, s := range strangeStrings {
		f.Add(s)
	}
	f.Add("identity")
	f.Add("~!#$%&'()*+,-./0123456789:;<>?@[]^_`{|}")
	f.Fuzz(sameAsRef)
}
