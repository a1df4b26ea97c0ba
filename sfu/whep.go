package sfu

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/guard"
	"gatehouse/authz/live"
	"gatehouse/authz/tokens"
)

// notLiveRetry is the Retry-After of a viewer that arrived before its stream's publisher (or
// after it left): a player polls again that soon.
const notLiveRetry = 2 * time.Second

// handleView answers a WHEP POST: the viewer's offer joins a live stream with the publisher
// codecs it can receive.
// A POST that names a node (Gatehouse-Node) is another node's pull (handlePull); viewers'
// requests never reach handlePull's token check, and pulls never reach the engine.
func (s *SFU) handleView(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(headerNode) != "" {
		s.handlePull(w, r)
		return
	}
	a, ok := s.admit(w, r, authz.ActionRead)
	if !ok {
		return
	}
	defer a.done()
	s.play(w, r, a, nil)
}

// play attaches an admitted viewer (or, with claims, another node's pull) to its path: to the
// local publisher's tracks, or to this node's pull of the path (started if needed).
func (s *SFU) play(w http.ResponseWriter, r *http.Request, a *admission, claims *tokens.PullClaims) {
	path := a.path
	if capErr := a.le.addPath(path); capErr != nil {
		s.refuse(w, capErr)
		return
	}
	policy := s.cands
	if claims != nil {
		policy = s.pullCands
	}
	sd, offer, cands, ok := s.readOfferWith(w, a, policy)
	if !ok {
		return
	}
	st, codecs, p, perr := s.liveCodecs(r.Context(), path, claims)
	if p != nil {
		defer s.releasePull(p)
	}
	if perr != nil {
		if perr.status == http.StatusConflict {
			guard.SetRetryAfter(w.Header(), notLiveRetry)
		}
		problem(w, perr.status, perr.msg)
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
	// A section of the offer this viewer gets no track on (the stream lacks that kind, or the
	// viewer cannot decode its codec) is answered inactive: pion would answer it sendonly, and
	// a pulling edge would wait for a track that never comes.
	for _, tr := range pc.GetTransceivers() {
		if snd := tr.Sender(); snd == nil || snd.Track() == nil {
			_ = tr.Stop()
		}
	}
	answer, err := s.negotiate(r.Context(), pc)
	if err != nil {
		s.closeSession(sess, "negotiation failed")
		problem(w, http.StatusBadRequest, "could not answer the offer")
		return
	}
	s.mu.Lock()
	if s.shut || s.streams[path] != st || !st.live() {
		s.mu.Unlock()
		s.closeSession(sess, "stream ended")
		guard.SetRetryAfter(w.Header(), notLiveRetry)
		problem(w, http.StatusConflict, "the stream is not live")
		return
	}
	depth := 0 // for a pull's reply: pulls between this node and the publisher
	if st.pub == nil && st.pull != nil {
		depth = st.pull.depth
	}
	for _, d := range sess.downs {
		addDown(d.slot, d)
	}
	st.viewers[sess] = struct{}{}
	if claims != nil {
		sess.pullNode = claims.Node
	}
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
	if claims != nil {
		w.Header().Set(headerNode, s.nodeID)
		w.Header().Set(headerDepth, strconv.Itoa(depth))
	}
	w.Header().Add("Link", layerLink(sess))
	s.created(w, sess, "/whep/", answer)
}

// liveCodecs returns path's stream and its codecs when it is live here; otherwise, on an edge,
// it starts or joins the path's pull and waits until it delivers (the returned pull carries a
// hold the caller releases). claims are the pull being served, if any: the new pull goes one
// hop further, with this node added to the chain.
func (s *SFU) liveCodecs(ctx context.Context, path string, claims *tokens.PullClaims) (*stream, [2]*webrtc.RTPCodecParameters, *pull, *pullError) {
	var codecs [2]*webrtc.RTPCodecParameters
	current := func() *stream {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.streams[path]
		if st == nil || !st.live() {
			return nil
		}
		for i, sl := range st.slots {
			codecs[i] = sl.codec.Load()
		}
		return st
	}
	if st := current(); st != nil {
		return st, codecs, nil, nil
	}
	if s.cfg.Origins == nil {
		return nil, codecs, nil, &pullError{http.StatusConflict, "the stream is not live yet"}
	}
	hop, via := 1, []string{s.nodeID}
	if claims != nil {
		hop, via = claims.Hop+1, append(slices.Clone(claims.Via), s.nodeID)
	}
	if hop > s.cfg.Edge.MaxHops {
		return nil, codecs, nil, &pullError{statusLoopDetected, "hop limit: the stream's origin is too far"}
	}
	p, perr := s.acquirePull(path, hop, via)
	if perr != nil {
		return nil, codecs, nil, perr
	}
	if p != nil {
		if perr := p.wait(ctx); perr != nil {
			return nil, codecs, p, perr
		}
	}
	st := current()
	if st == nil {
		return nil, codecs, p, &pullError{http.StatusConflict, "the stream is not live"}
	}
	return st, codecs, p, nil
}
