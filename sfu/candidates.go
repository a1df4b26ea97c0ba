package sfu

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"

	"gatehouse/authz/clientip"
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
	// internal networks are allowed whatever their kind: the fleet's nodes, for node-to-node
	// pulls only (SFU.pullCands; the viewer and publisher policy never has any).
	internal clientip.Proxies
}

// candidateTarget returns a candidate's ("candidate:..." or "a=candidate:...") target address
// and a key that identifies it (component, transport, address, port), or ok false when pion would
// not parse it or its address is not an IP literal (mDNS ".local" names, which pion ignores with
// mDNS off, and any other hostname, which pion would resolve). It reads the candidate with pion's
// own parser, so the address judged is exactly the one pion would send checks to: a hand-written
// tokenizer disagreed with pion on tabs and non-ASCII spaces and let 127.0.0.1 through.
func candidateTarget(c string) (addr netip.Addr, key string, ok bool) {
	cand, err := ice.UnmarshalCandidate(strings.TrimPrefix(c, "a="))
	if err != nil {
		return netip.Addr{}, "", false
	}
	a, err := netip.ParseAddr(cand.Address())
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, "", false
	}
	a = a.Unmap()
	return a, fmt.Sprintf("%d %s %s %d", cand.Component(), cand.NetworkType(), a, cand.Port()), true
}

// allowed reports whether the SFU may send connectivity checks to a. Multicast, broadcast and
// unspecified addresses never name a peer; loopback, private (RFC 1918, RFC 4193, RFC 6598
// shared space) and link-local targets are reachable only from inside the SFU's own networks.
func (p candidatePolicy) allowed(a netip.Addr) bool {
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}),
		a.Is4() && a.As4()[0] == 0: // 0.0.0.0/8, "this network"
		return false
	case p.internal.Trusts(a):
		return true
	case a.IsLoopback(), a.IsPrivate(), a.IsLinkLocalUnicast(), sharedSpace.Contains(a):
		return p.allowPrivate
	}
	return true
}

var sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598 carrier-grade NAT

// candidateSet is the set of usable remote candidates a session has named.
type candidateSet map[string]struct{}

// filterOffer removes from an SDP offer every candidate the policy refuses and returns the
// rewritten offer and the set of usable candidates (a candidate repeated in several bundled
// sections counts once). It works on the offer as pion's SDP parser reads it and returns that
// parse re-marshalled, so pion is handed exactly what was judged (a line-based filter missed
// candidate lines that pion's lexer accepts, such as one after a bare CR). It fails when the
// offer is not SDP or names more usable candidates than allowed.
func (p candidatePolicy) filterOffer(offer string) (string, candidateSet, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return "", nil, errors.New("the body is not valid SDP")
	}
	set := candidateSet{}
	filter := func(attrs []sdp.Attribute) ([]sdp.Attribute, error) {
		kept := attrs[:0]
		for _, at := range attrs {
			if at.Key == "candidate" {
				a, key, ok := candidateTarget(at.Value)
				if !ok || !p.allowed(a) {
					continue
				}
				set[key] = struct{}{}
				if len(set) > p.max {
					return nil, fmt.Errorf("the offer names more than %d usable ICE candidates", p.max)
				}
			}
			kept = append(kept, at)
		}
		return kept, nil
	}
	var err error
	if sd.Attributes, err = filter(sd.Attributes); err != nil {
		return "", nil, err
	}
	for _, md := range sd.MediaDescriptions {
		if md.Attributes, err = filter(md.Attributes); err != nil {
			return "", nil, err
		}
	}
	out, err := sd.Marshal()
	if err != nil {
		return "", nil, errors.New("the offer cannot be re-encoded as SDP")
	}
	return string(out), set, nil
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
