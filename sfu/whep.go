package sfu

import (
	"net/http"
	"time"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/guard"
	"gatehouse/authz/live"
)

// notLiveRetry is the Retry-After of a viewer that arrived before its stream's publisher (or
// after it left): a player polls again that soon.
const notLiveRetry = 2 * time.Second

// handleView answers a WHEP POST: the viewer's offer joins a live stream with the publisher
// codecs it can receive.
func (s *SFU) handleView(w http.ResponseWriter, r *http.Request) {
	a, ok := s.admit(w, r, authz.ActionRead)
	if !ok {
		return
	}
	defer a.done()
	path := a.path
	if capErr := a.le.addPath(path); capErr != nil {
		s.refuse(w, capErr)
		return
	}
	sd, offer, cands, ok := s.readOffer(w, a)
	if !ok {
		return
	}
	s.mu.Lock()
	st := s.streams[path]
	var codecs [2]*webrtc.RTPCodecParameters
	if st != nil && st.pub != nil {
		for i, sl := range st.slots {
			codecs[i] = sl.codec.Load()
		}
	}
	s.mu.Unlock()
	if codecs[0] == nil && codecs[1] == nil {
		guard.SetRetryAfter(w.Header(), notLiveRetry)
		problem(w, http.StatusConflict, "the stream is not live yet")
		return
	}
	// Which publisher codecs can this viewer receive?
	var want [2]bool
	for _, md := range sd.MediaDescriptions {
		k, ok := mediaKind(md)
		if !ok || (direction(md) != "recvonly" && direction(md) != "sendrecv") {
			continue
		}
		i := kindIndex(k)
		if codecs[i] == nil {
			continue
		}
		for _, vc := range mediaCodecs(md) {
			if codecCompatible(codecs[i].RTPCodecCapability, vc.RTPCodecCapability) {
				want[i] = true
			}
		}
	}
	if !want[0] && !want[1] {
		problem(w, http.StatusUnprocessableEntity, "the offer cannot receive the stream's codecs")
		return
	}
	sess := s.newSession(w, a, KindRead, cands, s.viewAPI)
	if sess == nil {
		return
	}
	pc := sess.pc
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			sess.connected.Store(true)
			for _, d := range sess.downs {
				d.activate()
			}
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			s.closeAsync(sess, "connection "+st.String())
		}
	})
	if !s.setOffer(w, sess, offer) {
		return
	}
	var senders []*webrtc.RTPSender
	for i, ok := range want {
		if !ok {
			continue
		}
		d := newDownTrack(st.slots[i], *codecs[i], st.slots[i].kind.String(), "gatehouse", s.cfg.ViewerQueue)
		d.owner = sess
		sender, err := pc.AddTrack(d)
		if err != nil {
			s.closeSession(sess, "add track failed")
			problem(w, http.StatusInternalServerError, "could not add a track")
			return
		}
		sess.downs = append(sess.downs, d)
		senders = append(senders, sender)
	}
	answer, err := s.negotiate(r.Context(), pc)
	if err != nil {
		s.closeSession(sess, "negotiation failed")
		problem(w, http.StatusBadRequest, "could not answer the offer")
		return
	}
	s.mu.Lock()
	if s.shut || s.streams[path] != st || st.pub == nil {
		s.mu.Unlock()
		s.closeSession(sess, "stream ended")
		guard.SetRetryAfter(w.Header(), notLiveRetry)
		problem(w, http.StatusConflict, "the stream is not live")
		return
	}
	for _, d := range sess.downs {
		addDown(d.slot, d)
	}
	st.viewers[sess] = struct{}{}
	sess.stream = st
	sess.attached = true
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	close(sess.ready)
	for i, d := range sess.downs {
		sender := senders[i]
		sess.spawn(d.run)
		sess.spawn(func() { d.handleRTCP(sender) })
	}
	if pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
		for _, d := range sess.downs {
			d.activate()
		}
	}
	a.keep()
	s.record(sess, live.Joined)
	s.log.Info("sfu play", "session", sess.id, "path", path, "identity", sess.identity, "ip", sess.remote)
	s.created(w, sess, "/whep/", answer)
}
