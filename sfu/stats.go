package sfu

// Packet counters are kept per track, by the one goroutine that forwards it (a publisher
// track's reader, a viewer's writer), and summed when scraped (Stats): a single set of SFU-wide
// atomics would make every reader and writer goroutine of every stream write one cache line per
// packet. A closed session's counts move to the SFU's retired totals once its goroutines have
// stopped, so the sums never go down; so do a closed pull attempt's (an edge's tracks pulled
// from its origin count as received).

// Indexes of the packet totals.
const (
	ctrReceived = iota
	ctrForwarded
	ctrQueueFull
	ctrNotConnected
	ctrMalformed
	nCounters
)

// packetTotals are summed packet counts, indexed by ctrReceived... .
type packetTotals [nCounters]uint64

// add adds the counts of sess's tracks.
func (t *packetTotals) add(sess *session) {
	t.addUps(sess.ups)
	for _, d := range sess.downs {
		t[ctrForwarded] += d.forwarded.Load()
		t[ctrQueueFull] += d.queueFull.Load()
		t[ctrNotConnected] += d.notConnected.Load()
	}
}

// addUps adds the counts of publisher (or pulled) tracks.
func (t *packetTotals) addUps(ups []*upTrack) {
	for _, u := range ups {
		t[ctrReceived] += u.received.Load()
		t[ctrMalformed] += u.malformed.Load()
	}
}

// Stats is a snapshot of an SFU for metrics.
type Stats struct {
	Publishers, Viewers int // sessions now held, connected or not
	PacketsReceived     uint64
	PacketsForwarded    uint64
	// Dropped counts packets not forwarded by reason: queue_full (a slow viewer's queue
	// overflowed), not_connected (the viewer's transport was not up yet), malformed (a
	// publisher's packet that did not parse, or padding only).
	Dropped map[string]uint64
}

// Stats returns the SFU's sessions and packet totals (since New), summing every track's
// counters: O(sessions), for a scrape.
func (s *SFU) Stats() Stats {
	var st Stats
	s.mu.Lock()
	t := s.retired
	for _, sess := range s.sessions {
		if sess.kind == KindPublish {
			st.Publishers++
		} else {
			st.Viewers++
		}
		t.add(sess)
	}
	for sess := range s.retiring {
		t.add(sess)
	}
	for a := range s.pulling {
		t.addUps(a.ups)
	}
	s.mu.Unlock()
	st.PacketsReceived, st.PacketsForwarded = t[ctrReceived], t[ctrForwarded]
	st.Dropped = map[string]uint64{
		"queue_full":    t[ctrQueueFull],
		"not_connected": t[ctrNotConnected],
		"malformed":     t[ctrMalformed],
	}
	return st
}
