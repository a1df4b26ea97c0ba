package sfu

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// The SFU sends STUN connectivity checks to every remote ICE candidate a client names (pion
// pings each local × remote pair up to maxBindingRequests times), so a client could aim that
// traffic anywhere. candidatePolicy decides which remote candidates reach pion and how many
// one session may name.

// maxBindingRequests bounds the STUN binding requests pion sends over one candidate pair that
// never answers (pion's own default, pinned here because the per-session bound rests on it).
const maxBindingRequests = 7

// candidatePolicy filters and counts remote candidates.
type candidatePolicy struct {
	max          int  // unique usable candidates per session
	allowPrivate bool // loopback, private and link-local targets allowed (LAN and test setups)
}

// candidateTarget returns a candidate line's ("candidate:..." or "a=candidate:...") target
// address and a key that identifies it (component, transport, address, port), or ok false when
// the address is not an IP literal (mDNS ".local" names, which pion ignores with mDNS off, and
// any other hostname, which pion would resolve).
func candidateTarget(c string) (addr netip.Addr, key string, ok bool) {
	f := strings.Fields(strings.TrimPrefix(strings.TrimPrefix(c, "a="), "candidate:"))
	if len(f) < 6 {
		return netip.Addr{}, "", false
	}
	a, err := netip.ParseAddr(f[4])
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, "", false
	}
	a = a.Unmap()
	return a, f[1] + " " + strings.ToLower(f[2]) + " " + a.String() + " " + f[5], true
}

// allowed reports whether the SFU may send connectivity checks to a. Multicast, broadcast and
// unspecified addresses never name a peer; loopback, private (RFC 1918, RFC 4193, RFC 6598
// shared space) and link-local targets are reachable only from inside the SFU's own networks.
func (p candidatePolicy) allowed(a netip.Addr) bool {
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}),
		a.Is4() && a.As4()[0] == 0: // 0.0.0.0/8, "this network"
		return false
	case a.IsLoopback(), a.IsPrivate(), a.IsLinkLocalUnicast(), sharedSpace.Contains(a):
		return p.allowPrivate
	}
	return true
}

var sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598 carrier-grade NAT

// candidateSet is the set of usable remote candidates a session has named.
type candidateSet map[string]struct{}

// filterOffer removes from an SDP offer every candidate line the policy refuses and returns the
// rewritten offer and the set of usable candidates (a candidate repeated in several bundled
// sections counts once). It fails when the offer names more usable candidates than allowed.
func (p candidatePolicy) filterOffer(offer string) (string, candidateSet, error) {
	set := candidateSet{}
	var b strings.Builder
	b.Grow(len(offer))
	for line := range strings.SplitSeq(offer, "\n") {
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "a=candidate:") {
			a, key, ok := candidateTarget(strings.TrimRight(line, "\r"))
			if !ok || !p.allowed(a) {
				continue
			}
			set[key] = struct{}{}
			if len(set) > p.max {
				return "", nil, fmt.Errorf("the offer names more than %d usable ICE candidates", p.max)
			}
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String(), set, nil
}

// filterFrag removes from a trickled fragment the candidates the policy refuses and adds the
// rest to have. It fails, changing nothing, when have would exceed the per-session limit.
func (p candidatePolicy) filterFrag(f *sdpFrag, have candidateSet) error {
	kept := f.Candidates[:0:0]
	var added []string
	for _, c := range f.Candidates {
		a, key, ok := candidateTarget(c.Candidate)
		if !ok || !p.allowed(a) {
			continue
		}
		kept = append(kept, c)
		if _, dup := have[key]; !dup && !slices.Contains(added, key) {
			added = append(added, key)
		}
	}
	if len(have)+len(added) > p.max {
		return fmt.Errorf("the session would have more than %d usable ICE candidates", p.max)
	}
	for _, k := range added {
		have[k] = struct{}{}
	}
	f.Candidates = kept
	return nil
}
