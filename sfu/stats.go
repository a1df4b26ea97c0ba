package sfu

import "sync/atomic"

// packetCounters are an SFU's packet totals, shared by every slot of every stream (a nil
// pointer counts nothing: slots built by tests).
type packetCounters [nCounters]atomic.Uint64

const (
	ctrReceived = iota
	ctrForwarded
	ctrQueueFull
	ctrNotConnected
	ctrMalformed
	nCounters
)

func (c *packetCounters) inc(which int) {
	if c != nil {
		c[which].Add(1)
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

// Stats returns the SFU's sessions and packet totals (since New).
func (s *SFU) Stats() Stats {
	st := Stats{
		PacketsReceived:  s.packets[ctrReceived].Load(),
		PacketsForwarded: s.packets[ctrForwarded].Load(),
		Dropped: map[string]uint64{
			"queue_full":    s.packets[ctrQueueFull].Load(),
			"not_connected": s.packets[ctrNotConnected].Load(),
			"malformed":     s.packets[ctrMalformed].Load(),
		},
	}
	s.mu.Lock()
	for _, sess := range s.sessions {
		if sess.kind == KindPublish {
			st.Publishers++
		} else {
			st.Viewers++
		}
	}
	s.mu.Unlock()
	return st
}
