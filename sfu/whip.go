package sfu

import (
	"net/http"
	"slices"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

// handlePublish answers a WHIP POST: the publisher's offer makes its session the stream's
// publisher; its tracks are forwarded from onTrack.
func (s *SFU) handlePublish(w http.ResponseWriter, r *http.Request) {
	a, ok := s.admit(w, r, authz.ActionPublish)
	if !ok {
		return
	}
	defer a.done()
	_, offer, cands, ok := s.readOffer(w, a)
	if !ok {
		return
	}
	if !s.mayPublish(a.path, pubOwner{backend: a.d.Backend, identity: a.d.Identity, keyID: a.d.KeyID}) {
		problem(w, http.StatusConflict, "the stream already has a publisher")
		return
	}
	sess := s.newSession(w, a, KindPublish, cands, s.pubAPI)
	if sess == nil {
		return
	}
	pc := sess.pc
	pc.OnTrack(func(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) { s.onTrack(sess, t, rcv) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			sess.connected.Store(true)
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			s.closeAsync(sess, "connection "+st.String())
		}
	})
	if !s.setOffer(w, sess, offer) {
		return
	}
	answer, err := s.negotiate(r.Context(), pc)
	if err != nil {
		s.closeSession(sess, "negotiation failed")
		problem(w, http.StatusBadRequest, "could not answer the offer (no supported codec?)")
		return
	}
	codecs := answerCodecs(answer)
	if codecs[0] == nil && codecs[1] == nil {
		s.closeSession(sess, "no media")
		problem(w, http.StatusUnprocessableEntity, "the offer has no audio or video in a supported codec (H.264, VP8, VP9, AV1, Opus)")
		return
	}
	if status, msg := s.attachPublisher(sess, codecs); status != 0 {
		s.closeSession(sess, msg)
		problem(w, status, msg)
		return
	}
	a.keep()
	s.log.Info("sfu publish", "session", sess.id, "path", sess.path, "identity", sess.identity, "ip", sess.remote)
	s.created(w, sess, "/whip/", answer)
}

// attachPublisher makes sess the publisher of its path, replacing the current one when
// configured or when sess's owner owns it (ownedBy: a reconnect after a crash), or a pull of the
// path that delivers nothing now. Viewers bound to a codec the new publisher does not send are closed (they must
// renegotiate). It returns an HTTP status and message on failure.
func (s *SFU) attachPublisher(sess *session, codecs [2]*webrtc.RTPCodecParameters) (int, string) {
	var old *session
	var stale []*session
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return http.StatusServiceUnavailable, "shutting down"
	}
	st := s.streams[sess.path]
	if st == nil {
		st = newStream(sess.path)
		s.streams[sess.path] = st
	}
	var idlePull *pull
	if p := st.pull; p != nil {
		if p.up {
			// One publisher per path across the fleet: this node relays it from another.
			s.mu.Unlock()
			return http.StatusConflict, "the stream is published on another node"
		}
		// The pull delivers nothing (its origin lost the stream and it only retries): the
		// local publisher takes the path, and the pull's viewers stay, as in a takeover.
		idlePull, st.pull = p, nil
	}
	if st.pub != nil {
		if !s.cfg.ReplacePublisher && !ownedBy(st.pub, ownerOf(sess)) {
			s.mu.Unlock()
			return http.StatusConflict, "the stream already has a publisher"
		}
		old = st.pub
	}
	for i, c := range codecs {
		if c == nil {
			continue
		}
		sl := st.slots[i]
		if cur := sl.codec.Load(); cur != nil && !codecCompatible(cur.RTPCodecCapability, c.RTPCodecCapability) {
			for _, d := range sl.viewers() {
				stale = append(stale, d.owner)
			}
		}
		sl.codec.Store(c)
	}
	st.pub = sess
	sess.stream = st
	sess.attached = true
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	close(sess.ready)
	if idlePull != nil {
		s.wg.Go(func() { idlePull.close("replaced by a local publisher") })
	}
	if old != nil {
		s.closeSession(old, "replaced by a new publisher")
	}
	for _, v := range stale {
		s.closeSession(v, "publisher changed codec")
	}
	s.record(sess, live.Published)
	return 0, ""
}

func newStream(path string) *stream {
	return &stream{
		path:    path,
		slots:   [2]*slot{{kind: webrtc.RTPCodecTypeAudio}, {kind: webrtc.RTPCodecTypeVideo}},
		viewers: map[*session]struct{}{},
	}
}

// onTrack starts forwarding a publisher track (pion calls it on the first packet).
func (s *SFU) onTrack(sess *session, t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	select {
	case <-sess.ready:
	case <-sess.closed:
		return
	}
	var stale []*session
	s.mu.Lock()
	st := sess.stream
	if st == nil || st.pub != sess {
		s.mu.Unlock()
		return
	}
	sl := st.slots[kindIndex(t.Kind())]
	up := newUpTrack(sl, sess.pc, t)
	up.owner = sess
	if cur := sl.up.Load(); cur != nil && slices.Contains(sess.ups, cur) && (t.RID() == "" || cur.rid == "") {
		s.mu.Unlock()
		s.log.Debug("sfu: ignoring a second track of the same kind", "session", sess.id, "rid", t.RID())
		return
	}
	if cur := sl.codec.Load(); cur == nil || !codecCompatible(cur.RTPCodecCapability, up.codec.RTPCodecCapability) {
		for _, d := range sl.viewers() {
			if !codecCompatible(up.codec.RTPCodecCapability, d.codec.RTPCodecCapability) {
				stale = append(stale, d.owner)
			}
		}
		c := up.codec
		sl.codec.Store(&c)
	}
	if up.rid == "" {
		sl.setSource(up)
	} else if !sl.addLayer(up) {
		s.mu.Unlock()
		s.log.Debug("sfu: ignoring a simulcast layer (duplicate RID or too many layers)", "session", sess.id, "rid", t.RID())
		return
	}
	sess.ups = append(sess.ups, up)
	views := sl.viewers()
	viewers := len(views)
	s.mu.Unlock()
	for _, d := range views {
		d.repick() // a new layer may be the one a viewer should follow
	}
	for _, v := range stale {
		s.closeAsync(v, "publisher changed codec")
	}
	sess.spawn(up.run)
	sess.spawn(func() {
		for {
			var err error
			if rid := t.RID(); rid != "" {
				_, _, err = rcv.ReadSimulcastRTCP(rid)
			} else {
				_, _, err = rcv.ReadRTCP()
			}
			if err != nil {
				return
			}
		}
	})
	if viewers > 0 {
		up.requestKeyframe()
	}
}
