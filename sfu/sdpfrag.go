package sfu

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits on a trickle-ice-sdpfrag body (RFC 8840), checked before anything reaches pion.
const (
	maxFragCandidates = 64
	maxFragLine       = 1024
)

// sdpFrag is a parsed application/trickle-ice-sdpfrag body.
type sdpFrag struct {
	Ufrag, Pwd string // session- or media-level ICE credentials; "" if absent
	Candidates []fragCandidate
	End        bool // a=end-of-candidates seen
}

// fragCandidate is one candidate and the media section it belongs to.
type fragCandidate struct {
	Mid        string // "" if the section had no a=mid
	MLineIndex uint16
	Candidate  string // "candidate:..." without "a="
}

// parseSDPFrag parses an RFC 8840 fragment. Unknown lines are ignored; malformed ones, control
// characters, conflicting credentials and too many candidates are errors (ErrBadFrag).
func parseSDPFrag(body string) (sdpFrag, error) {
	var (
		f     sdpFrag
		mid   string
		index = -1
	)
	setCred := func(dst *string, v, name string) error {
		if v == "" || len(v) > 256 || strings.ContainsAny(v, " \t") {
			return fmt.Errorf("%w: invalid %s", ErrBadFrag, name)
		}
		if *dst != "" && *dst != v {
			return fmt.Errorf("%w: conflicting %s", ErrBadFrag, name)
		}
		*dst = v
		return nil
	}
	for line := range strings.SplitSeq(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) > maxFragLine {
			return sdpFrag{}, fmt.Errorf("%w: line too long", ErrBadFrag)
		}
		for _, r := range line {
			if r < 0x20 || r == 0x7f {
				return sdpFrag{}, fmt.Errorf("%w: control character", ErrBadFrag)
			}
		}
		if len(line) < 2 || line[1] != '=' {
			return sdpFrag{}, fmt.Errorf("%w: not an SDP line", ErrBadFrag)
		}
		typ, val := line[0], line[2:]
		switch {
		case typ == 'm':
			index++
			if index > 0xffff {
				return sdpFrag{}, fmt.Errorf("%w: too many media sections", ErrBadFrag)
			}
			mid = ""
		case typ != 'a':
			// v=, o=, s=, t=, c= ... are legal in a fragment and carry nothing for us
		case strings.HasPrefix(val, "ice-ufrag:"):
			if err := setCred(&f.Ufrag, strings.TrimPrefix(val, "ice-ufrag:"), "ice-ufrag"); err != nil {
				return sdpFrag{}, err
			}
		case strings.HasPrefix(val, "ice-pwd:"):
			if err := setCred(&f.Pwd, strings.TrimPrefix(val, "ice-pwd:"), "ice-pwd"); err != nil {
				return sdpFrag{}, err
			}
		case strings.HasPrefix(val, "mid:"):
			mid = strings.TrimPrefix(val, "mid:")
			if mid == "" || strings.ContainsAny(mid, " \t") {
				return sdpFrag{}, fmt.Errorf("%w: invalid mid", ErrBadFrag)
			}
		case strings.HasPrefix(val, "candidate:"):
			if len(f.Candidates) == maxFragCandidates {
				return sdpFrag{}, fmt.Errorf("%w: more than %d candidates", ErrBadFrag, maxFragCandidates)
			}
			if err := checkCandidate(val); err != nil {
				return sdpFrag{}, err
			}
			f.Candidates = append(f.Candidates, fragCandidate{Mid: mid, MLineIndex: uint16(max(index, 0)), Candidate: val})
		case val == "end-of-candidates":
			f.End = true
		}
	}
	if (f.Ufrag == "") != (f.Pwd == "") {
		return sdpFrag{}, fmt.Errorf("%w: ice-ufrag and ice-pwd must come together", ErrBadFrag)
	}
	return f, nil
}

// checkCandidate checks the RFC 8839 shape: foundation, component, transport, priority, address,
// port, "typ", type.
func checkCandidate(c string) error {
	fields := strings.Fields(strings.TrimPrefix(c, "candidate:"))
	if len(fields) < 8 || fields[6] != "typ" {
		return fmt.Errorf("%w: malformed candidate", ErrBadFrag)
	}
	if _, err := strconv.ParseUint(fields[1], 10, 8); err != nil {
		return fmt.Errorf("%w: malformed candidate component", ErrBadFrag)
	}
	if _, err := strconv.ParseUint(fields[3], 10, 32); err != nil {
		return fmt.Errorf("%w: malformed candidate priority", ErrBadFrag)
	}
	if p, err := strconv.ParseUint(fields[5], 10, 16); err != nil || p == 0 && !strings.EqualFold(fields[2], "tcp") {
		return fmt.Errorf("%w: malformed candidate port", ErrBadFrag)
	}
	return nil
}
