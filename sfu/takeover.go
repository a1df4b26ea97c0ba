package sfu

// Publisher takeover: a publisher that crashed or lost its network leaves a session the SFU
// still believes connected until ICE times out (about 30 s). Its owner reconnecting in the
// meantime replaces it at once; anyone else gets 409 unless Config.ReplacePublisher.

// ownedBy reports whether a new publisher with the given identity and stream key id (from its
// Decision) owns pub, the path's current publisher, and so may replace it without
// Config.ReplacePublisher. A session admitted by a stream key belongs to that key (KeyID): a
// key's identity defaults to its path, so two keys for one path share an identity and must not
// take over each other's stream. Any other session belongs to its identity. An anonymous
// session (identity "", e.g. a `user: any` grant) belongs to no one: anonymous publishers never
// replace each other. A nil pub (none, or a stream relayed from another node) is owned by no one.
func ownedBy(pub *session, identity, keyID string) bool {
	if pub == nil {
		return false
	}
	if keyID != "" || pub.keyID != "" {
		return keyID == pub.keyID
	}
	return identity != "" && identity == pub.identity
}

// mayPublish reports whether a new publisher with the given identity and key id may take path
// now: the path is not live, or Config.ReplacePublisher, or the new publisher owns the current
// one (ownedBy). A path relayed from another node is never owned here.
func (s *SFU) mayPublish(path, identity, keyID string) bool {
	if s.cfg.ReplacePublisher {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[path]
	return st == nil || !st.live() || (st.pull == nil && ownedBy(st.pub, identity, keyID))
}
