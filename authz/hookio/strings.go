package hookio

import "strings"

// MaxBatched is the most bytes Strings (and the adapters' own decoders that batch their fields
// the same way) copy into one allocation; the strings made share that allocation, so one kept
// field (a token, a query) keeps at most this much alive.
const MaxBatched = 1024

// Strings makes the string fields a WalkJSON callback reads in one allocation instead of one
// each: Set records a value (which aliases the body) for a field, Flush assigns every recorded
// field in the order Set was called, so a repeated key still ends with its last value. Up to
// 16 fields and 1 KiB are held; beyond that the held ones are assigned first. A caller whose
// walk fails does not call Flush (nothing is assigned). The zero value is ready to use; it
// belongs to one decoding.
type Strings struct {
	dst  [16]*string
	val  [16][]byte
	n    int
	size int
}

// Set records val as the next value of *dst.
func (s *Strings) Set(dst *string, val []byte) {
	if s.n == len(s.dst) || s.size+len(val) > MaxBatched {
		s.Flush()
		if len(val) > MaxBatched {
			*dst = string(val)
			return
		}
	}
	s.dst[s.n], s.val[s.n] = dst, val
	s.n++
	s.size += len(val)
}

// Flush assigns the recorded fields from one copy of their bytes and forgets them.
func (s *Strings) Flush() {
	var b strings.Builder
	b.Grow(s.size)
	for _, v := range s.val[:s.n] {
		b.Write(v)
	}
	all := b.String()
	off := 0
	for i, dst := range s.dst[:s.n] {
		n := len(s.val[i])
		*dst = all[off : off+n]
		off += n
		s.dst[i], s.val[i] = nil, nil
	}
	s.n, s.size = 0, 0
}

// CopyStrings sets dst[i] = string(src[i]) for every i of src, in one allocation that all of
// them share when they total at most MaxBatched bytes (one each otherwise). A decoder that
// collects its fields as slices of the body calls it once the body is known to be well formed.
func CopyStrings(dst []string, src [][]byte) {
	n := 0
	for _, v := range src {
		n += len(v)
	}
	if n > MaxBatched {
		for i, v := range src {
			dst[i] = string(v)
		}
		return
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, v := range src {
		sb.Write(v)
	}
	all, off := sb.String(), 0
	for i, v := range src {
		dst[i] = all[off : off+len(v)]
		off += len(v)
	}
}
