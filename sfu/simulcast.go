package sfu

import (
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Simulcast: a publisher may send up to maxLayers RID layers of its video (OBS 32, browsers with
// sendEncodings). Each layer is its own upTrack in the slot; every viewer follows one layer at a
// time (selection), chosen by its layerPicker from the viewer's REMB estimate and loss reports,
// or pinned through the session's layer resource (layer_api.go). A switch waits for a keyframe
// of the target layer (requested on that layer, throttled per layer) and the viewer's writer
// rebases seq and timestamps exactly as for a publisher reconnect, so the viewer sees one
// continuous stream.
//
// Instant start: every video upTrack keeps the packets of its last keyframe and what followed
// (gop, at most gopMaxBytes); a new viewer's first packet makes its writer replay them, so the
// first frame needs no keyframe request to the publisher.

const (
	// maxLayers bounds the simulcast layers accepted per publisher track (OBS sends 1–4).
	maxLayers = 4
	// gopMaxBytes bounds one layer's keyframe cache; a longer GOP is dropped until the next
	// keyframe (new viewers then ask the publisher for one, as before).
	gopMaxBytes = 2 << 20
	// gopMaxPackets bounds one layer's keyframe cache in packets (a 2 MB GOP of full-size
	// packets has about 1500).
	gopMaxPackets = 4096
	// gopPacketCost is what the cache keeps alive per packet besides its buffer: the packet
	// struct and the slice entry pointing at it.
	gopPacketCost = int(unsafe.Sizeof(packet{}) + unsafe.Sizeof((*packet)(nil)))
	// The automatic choice (layerPicker.decide). A receiver's REMB estimate never says much more
	// than what it receives (Chromium caps it at 1.5 × the incoming rate + 10 kbit/s) and layers
	// are 2–4 × apart, so no estimate can show that the next layer fits before the viewer gets
	// it: moving up is a probe. layerUpMargin and layerUpHold: a viewer probes one layer up once
	// its estimate has stayed above its current layer's bitrate × layerUpMargin for the hold,
	// which doubles after each failed probe up to layerUpHoldMax.
	layerUpMargin  = 1.25
	layerUpHold    = 3 * time.Second
	layerUpHoldMax = 30 * time.Second
	// layerSettle: estimates in the first layerSettle after joining or switching are ignored (the
	// receiver's estimator is still converging on the new rate).
	layerSettle = 2 * time.Second
	// layerGrace: for layerGrace after moving up, only sustained loss or an estimate below the
	// new layer's bitrate × layerDownFar moves the viewer down (a failed probe); then the probe
	// succeeds if the estimate has reached the layer's bitrate × layerDownMargin, else fails.
	layerGrace = 5 * time.Second
	// layerDownMargin and layerDownHold: outside a probe, an estimate below the current layer's
	// bitrate × layerDownMargin for layerDownHold moves the viewer down to what fits; one below
	// × layerDownFar moves it at once.
	layerDownMargin = 0.75
	layerDownHold   = 1500 * time.Millisecond
	layerDownFar    = 0.5
	// lossyFraction (of 256) in lossyReports consecutive receiver reports is sustained loss: the
	// viewer moves down one layer at once and stays there for lossHold.
	lossyFraction = 26 // ≈ 10 %
	lossyReports  = 2
	lossHold      = 10 * time.Second
	// rateWindow is how often a layer's bitrate is measured.
	rateWindow = time.Second
)

// selection is the layer a viewer follows (cur) and the one it switches to at that layer's next
// keyframe (next); both are RIDs, "" for a track without simulcast. Immutable once stored.
type selection struct{ cur, next string }

// ridRank orders the usual RID names from low to high quality; unknown names rank in the
// middle, and the measured bitrate decides as soon as there is one.
func ridRank(rid string) (int, bool) {
	switch strings.ToLower(rid) {
	case "q", "l", "low", "lo":
		return 0, true
	case "h", "m", "mid", "medium":
		return 1, true
	case "f", "hi", "high", "full":
		return 2, true
	}
	return 1, false
}

// isSource reports whether u is one of the slot's current tracks.
func (s *slot) isSource(u *upTrack) bool {
	if l := s.layers.Load(); l != nil {
		return slices.Contains(*l, u)
	}
	return false
}

// sources returns the slot's current tracks (one, or one per simulcast layer).
func (s *slot) sources() []*upTrack {
	if l := s.layers.Load(); l != nil {
		return *l
	}
	return nil
}

// setSource makes u the slot's only track. Callers hold SFU.mu.
func (s *slot) setSource(u *upTrack) {
	s.up.Store(u)
	s.layers.Store(&[]*upTrack{u})
}

// addLayer adds a simulcast layer: to the current layers if they come from the same
// PeerConnection, else replacing them (a new publisher). It reports false when the source
// already has maxLayers layers or this RID. Callers hold SFU.mu.
func (s *slot) addLayer(u *upTrack) bool {
	cur := s.sources()
	if len(cur) > 0 && cur[0].owner == u.owner && cur[0].rid != "" {
		if len(cur) >= maxLayers || slices.ContainsFunc(cur, func(x *upTrack) bool { return x.rid == u.rid }) {
			return false
		}
		next := append(slices.Clone(cur), u)
		s.layers.Store(&next)
		s.up.Store(u)
		return true
	}
	s.setSource(u)
	return true
}

// drop removes u from the slot's tracks. Callers hold SFU.mu.
func (s *slot) drop(u *upTrack) {
	cur := s.sources()
	if !slices.Contains(cur, u) {
		return
	}
	next := slices.DeleteFunc(slices.Clone(cur), func(x *upTrack) bool { return x == u })
	s.layers.Store(&next)
	if len(next) == 0 {
		s.up.Store(nil)
	} else {
		s.up.Store(next[len(next)-1])
	}
}

// ordered returns the current simulcast layers from lowest to highest quality: by measured
// bitrate once every layer has one, else by RID name. Nil without simulcast.
func (s *slot) ordered() []*upTrack {
	cur := s.sources()
	if len(cur) == 0 || cur[0].rid == "" {
		return nil
	}
	out := slices.Clone(cur)
	// Well-known names (q/h/f, l/m/h, ...) say the order; a measured bitrate can flip for a moment
	// (an encoder that pauses a layer) and would fake a move up. Other names are ordered by what
	// each layer carries once every one has been measured.
	ranks := map[*upTrack]int{}
	named := true
	for _, u := range out {
		r, ok := ridRank(u.rid)
		ranks[u] = r
		named = named && ok
	}
	if named && len(out) > 1 {
		seen := map[int]bool{}
		for _, r := range ranks {
			named = named && !seen[r]
			seen[r] = true
		}
	}
	measured := !slices.ContainsFunc(out, func(u *upTrack) bool { return u.bps.Load() == 0 })
	slices.SortStableFunc(out, func(a, b *upTrack) int {
		if measured && !named {
			if d := a.bps.Load() - b.bps.Load(); d != 0 {
				return int(max(-1, min(1, d)))
			}
		}
		return ranks[a] - ranks[b]
	})
	return out
}

// layer returns the current track with the given RID, or nil.
func (s *slot) layer(rid string) *upTrack {
	for _, u := range s.sources() {
		if u.rid == rid {
			return u
		}
	}
	return nil
}

// measure adds n bytes to the track's bitrate window; run's goroutine only.
func (u *upTrack) measure(now time.Time, n int) {
	if u.rateAt.IsZero() {
		u.rateAt = now
	}
	u.rateBytes += n
	if el := now.Sub(u.rateAt); el >= rateWindow {
		u.bps.Store(int64(float64(u.rateBytes*8) / el.Seconds()))
		u.rateAt, u.rateBytes = now, 0
	}
}

// keep adds p, received in a buffer of n bytes, to the keyframe cache: a keyframe's first
// packet starts a new one, later packets are appended until the cache would exceed gopMaxBytes
// or gopMaxPackets (then it is dropped until the next keyframe). A packet counts for its whole
// buffer (its payload keeps it alive) plus gopPacketCost, so many tiny packets cannot hold
// more than the bound. Run's goroutine only writes; readers take a snapshot (gopSnapshot).
func (u *upTrack) keep(p *packet, n int) {
	size := n + gopPacketCost
	u.gopMu.Lock()
	defer u.gopMu.Unlock()
	if p.key && (len(u.gop) == 0 || u.gop[0].hdr.Timestamp != p.hdr.Timestamp) {
		u.gop, u.gopBytes = make([]*packet, 0, 64), 0
	} else if len(u.gop) == 0 {
		return
	}
	if u.gopBytes+size > gopMaxBytes || len(u.gop) >= gopMaxPackets {
		u.gop, u.gopBytes = nil, 0
		return
	}
	u.gop = append(u.gop, p)
	u.gopBytes += size
}

// gopSnapshot returns the cached packets from the last keyframe on. The slice is never
// modified in place, so the caller may read it without the lock.
func (u *upTrack) gopSnapshot() []*packet {
	u.gopMu.Lock()
	defer u.gopMu.Unlock()
	return u.gop
}

// layerInfo is one layer as the picker sees it.
type layerInfo struct {
	rid string
	bps int64
}

// layerPicker chooses a viewer's layer from its REMB estimate and loss reports, or its pin.
// Safe for concurrent use.
type layerPicker struct {
	mu        sync.Mutex
	pin       string // "": automatic
	est       int64  // the viewer's last REMB estimate in bit/s; 0: none
	lossRun   int    // consecutive lossy receiver reports
	lossy     bool   // sustained loss seen and not yet acted on
	last      string // the layer followed at the last decision
	switchAt  time.Time
	upSince   time.Time // the estimate has allowed a probe up since (zero: it does not)
	downSince time.Time // the estimate has been below the layer since (zero: it is not)
	probe     time.Time // the grace of a probe up ends (zero: no probe running)
	fails     int       // failed probes in a row
	holdUntil time.Time // no move up before this (after a loss-driven move down)
	want      string    // the last move decided, kept until the viewer has switched
}

// remb records a REMB estimate.
func (lp *layerPicker) remb(bps float32) {
	lp.mu.Lock()
	lp.est = int64(bps)
	lp.mu.Unlock()
}

// report records a receiver report's loss fraction (of 256).
func (lp *layerPicker) report(fraction uint8) {
	lp.mu.Lock()
	if fraction >= lossyFraction {
		lp.lossRun++
		if lp.lossRun >= lossyReports {
			lp.lossy, lp.lossRun = true, 0
		}
	} else {
		lp.lossRun = 0
	}
	lp.mu.Unlock()
}

// setPin pins a layer ("" or "auto": automatic).
func (lp *layerPicker) setPin(rid string) {
	if rid == "auto" {
		rid = ""
	}
	lp.mu.Lock()
	lp.pin = rid
	lp.upSince, lp.downSince, lp.probe, lp.want = time.Time{}, time.Time{}, time.Time{}, ""
	lp.last, lp.switchAt = "", time.Time{} // the next decision restarts the settle time
	lp.mu.Unlock()
}

func (lp *layerPicker) pinned() string {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.pin
}

// upHold is how long the estimate must allow a probe before it starts: layerUpHold, doubled
// for each failed probe in a row, at most layerUpHoldMax. Callers hold mu.
func (lp *layerPicker) upHold() time.Duration {
	h := layerUpHold
	for range lp.fails {
		if h *= 2; h >= layerUpHoldMax {
			return layerUpHoldMax
		}
	}
	return h
}

// decide returns the layer a viewer following cur ("" at the start) should follow now. layers
// go from lowest to highest quality. A pin wins. A new viewer gets the top layer, or with an
// estimate the best layer it fits. Estimates in the first layerSettle after joining or a
// switch are ignored, and so is loss then unless the switch was a move up. Moving up is a
// probe, one layer at a time (further only if the estimate already allows it): after the
// estimate has stayed above the current layer's bitrate × layerUpMargin for upHold. During
// the probe's layerGrace only sustained loss or an estimate far below the new layer moves the
// viewer back; at its end the estimate must have reached the layer's bitrate ×
// layerDownMargin. A failed probe doubles the next hold (capped); a successful one resets it.
// Otherwise an estimate below the layer × layerDownMargin for layerDownHold, or far below it,
// moves the viewer down to what fits, and sustained loss moves it down one layer and holds it
// there for lossHold. Without an estimate the viewer stays on, or returns to, the top layer.
// A move decided earlier stands until the viewer has switched (at the target's keyframe) or a
// new move replaces it.
func (lp *layerPicker) decide(now time.Time, layers []layerInfo, cur string) string {
	if len(layers) == 0 {
		return cur
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	idx := func(rid string) int {
		return slices.IndexFunc(layers, func(l layerInfo) bool { return l.rid == rid })
	}
	if p := idx(lp.pin); lp.pin != "" && p >= 0 {
		lp.track(now, idx, cur)
		lp.lossy = false
		return lp.pin
	}
	w, moved := lp.choose(now, layers, idx, cur)
	if !moved && lp.want != cur && idx(lp.want) >= 0 {
		return lp.want
	}
	lp.want = w
	return w
}

// track notes a switch of the followed layer (or the first decision): it restarts the settle
// time and, for a move up in automatic mode, starts a probe. Callers hold mu.
func (lp *layerPicker) track(now time.Time, idx func(string) int, cur string) {
	if !lp.switchAt.IsZero() && cur == lp.last {
		return
	}
	if p := idx(lp.last); lp.pin == "" && p >= 0 && idx(cur) > p {
		lp.probe = now.Add(layerGrace)
	}
	lp.last, lp.switchAt = cur, now
	lp.upSince, lp.downSince = time.Time{}, time.Time{}
}

// choose applies decide's rules; moved reports a new move (false: stay on cur). Callers hold mu.
func (lp *layerPicker) choose(now time.Time, layers []layerInfo, idx func(string) int, cur string) (rid string, moved bool) {
	lp.track(now, idx, cur)
	c := idx(cur)
	top := len(layers) - 1
	fits := func(margin float64) int { // the best layer the estimate allows
		if lp.est <= 0 {
			return top
		}
		best := 0
		for i, l := range layers {
			if float64(l.bps)*margin <= float64(lp.est) {
				best = i
			}
		}
		return best
	}
	if c < 0 { // starting, or the layer went away: take what fits now
		lp.lossy = false
		return layers[fits(1)].rid, true
	}
	probing := !lp.probe.IsZero()
	down := func(to int) (string, bool) {
		if probing {
			lp.fails++
		}
		lp.probe, lp.upSince, lp.downSince = time.Time{}, time.Time{}, time.Time{}
		return layers[max(0, min(to, c-1))].rid, true
	}
	if lp.lossy && !probing && now.Before(lp.switchAt.Add(layerSettle)) {
		lp.lossy, lp.lossRun = false, 0 // loss reports about the start or a move down: not the link
	}
	if lp.lossy {
		lp.lossy = false
		lp.holdUntil = now.Add(lossHold)
		return down(c - 1)
	}
	if lp.est <= 0 {
		if c < top && !now.Before(lp.holdUntil) {
			return layers[top].rid, true
		}
		return cur, false
	}
	est, bps := float64(lp.est), float64(layers[c].bps)
	if now.Before(lp.switchAt.Add(layerSettle)) || bps <= 0 {
		lp.upSince, lp.downSince = time.Time{}, time.Time{}
		return cur, false
	}
	if est < bps*layerDownFar {
		return down(fits(1))
	}
	if probing {
		if now.Before(lp.probe) {
			return cur, false
		}
		if est < bps*layerDownMargin {
			return down(fits(1))
		}
		lp.probe, lp.fails = time.Time{}, 0
	}
	if est < bps*layerDownMargin {
		if lp.downSince.IsZero() {
			lp.downSince = now
		}
		if now.Sub(lp.downSince) >= layerDownHold {
			return down(fits(1))
		}
	} else {
		lp.downSince = time.Time{}
	}
	if c == top || now.Before(lp.holdUntil) || est < bps*layerUpMargin {
		lp.upSince = time.Time{}
		return cur, false
	}
	if lp.upSince.IsZero() {
		lp.upSince = now
	}
	if now.Sub(lp.upSince) < lp.upHold() {
		return cur, false
	}
	lp.upSince = time.Time{}
	return layers[max(c+1, fits(layerUpMargin))].rid, true
}

// repick re-evaluates a video viewer's layer and, when it changes, asks the target layer for a
// keyframe (throttled per layer). Safe for concurrent use.
func (d *downTrack) repick() {
	if d.slot.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	ord := d.slot.ordered()
	if len(ord) == 0 {
		return
	}
	layers := make([]layerInfo, len(ord))
	for i, u := range ord {
		layers[i] = layerInfo{rid: u.rid, bps: u.bps.Load()}
	}
	d.selMu.Lock()
	s := d.sel.Load()
	want := d.picker.decide(d.now(), layers, s.cur)
	changed := want != s.next
	if changed {
		d.sel.Store(&selection{cur: s.cur, next: want})
	}
	d.selMu.Unlock()
	if changed && want != s.cur && d.active.Load() {
		if u := d.slot.layer(want); u != nil {
			u.requestKeyframe()
		}
	}
}

// commit makes the viewer follow rid (its writer switched at a keyframe of that layer).
func (d *downTrack) commit(rid string) {
	d.selMu.Lock()
	s := d.sel.Load()
	d.sel.Store(&selection{cur: rid, next: s.next})
	d.selMu.Unlock()
}

// wants reports whether the viewer takes packets from u: always without simulcast, else only
// from the layer it follows or the one it switches to.
func (d *downTrack) wants(u *upTrack) bool {
	if u.rid == "" {
		return true
	}
	s := d.sel.Load()
	return u.rid == s.cur || u.rid == s.next
}

// source returns the track the viewer follows or is about to follow, for keyframe requests.
func (d *downTrack) source() *upTrack {
	s := d.sel.Load()
	if s.next != "" {
		if u := d.slot.layer(s.next); u != nil {
			return u
		}
	}
	return d.slot.up.Load()
}

// requestKeyframe asks the viewer's layer for a keyframe (throttled per layer).
func (d *downTrack) requestKeyframe() {
	if u := d.source(); u != nil {
		u.requestKeyframe()
	}
}

// replay starts a viewer that has sent nothing yet from its layer's keyframe cache: the cached
// packets up to and including p are written, so the first frame needs no request to the
// publisher. It reports false (p not handled) when the cache does not hold p after a keyframe.
func (d *downTrack) replay(p *packet) bool {
	g := p.up.gopSnapshot()
	i := slices.Index(g, p)
	if i < 0 || !g[0].key {
		return false
	}
	d.rebase(g[0], true)
	d.waitKey = false
	for _, q := range g[:i+1] {
		d.write(q, q.hdr.SequenceNumber+d.seqDelta)
	}
	return true
}

// feedback applies one viewer RTCP packet to the layer choice; it reports whether the choice
// should be re-evaluated.
func (d *downTrack) feedback(p rtcp.Packet) bool {
	switch p := p.(type) {
	case *rtcp.ReceiverEstimatedMaximumBitrate:
		d.picker.remb(p.Bitrate)
		return true
	case *rtcp.ReceiverReport:
		b := d.bound.Load()
		for _, r := range p.Reports {
			if b != nil && r.SSRC == b.ssrc {
				d.picker.report(r.FractionLost)
				return true
			}
		}
	}
	return false
}

// registerSimulcast registers the header extensions pion needs to receive simulcast: the MID
// and RID (and repaired RID) of each packet, which map an unannounced SSRC to its layer.
func registerSimulcast(m *webrtc.MediaEngine) error {
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.SDESMidURI}, webrtc.RTPCodecTypeAudio)
}
