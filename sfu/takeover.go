package sfu

// Publisher takeover: a publisher that crashed or lost its network leaves a session the SFU
// still believes connected until ICE times out (about 30 s). Its owner reconnecting in the
// meantime replaces it at once; anyone else gets 409 unless Config.ReplacePublisher.

// pubOwner is who a publisher is, from the Decision that admitted it: the method that decided
// (Decision.Backend), the identity it established and the stream key, if any.
type pubOwner struct{ backend, identity, keyID string }

// ownerOf returns the owner of a session.
func ownerOf(sess *session) pubOwner {
	return pubOwner{backend: sess.backend, identity: sess.identity, keyID: sess.keyID}
}

// ownedBy reports whether a new publisher o owns pub, the path's current publisher, and so may
// replace it without Config.ReplacePublisher. Both must have been admitted by the same method:
// identities are not unique across methods (one OpenID provider's preferred_username, an HTTP
// backend's client-supplied user and an internal user may all read "alice"). A session
// admitted by a stream key belongs to that key (KeyID): a key's identity defaults to its path,
// so two keys for one path share an identity and must not take over each other's stream. Any
// other session belongs to its identity. An anonymous session (identity "", e.g. a `user: any`
// grant) belongs to no one: anonymous publishers never replace each other. A nil pub (none, or
// a stream relayed from another node) is owned by no one.
func ownedBy(pub *session, o pubOwner) bool {
	if pub == nil || o.backend != pub.backend {
		return false
	}
	if o.keyID != "" || pub.keyID != "" {
		return o.keyID == pub.keyID
	}
	return o.identity != "" && o.identity == pub.identity
}

// mayPublish reports whether a new publisher o may take path now: the path is not live, or
// Config.ReplacePublisher, or the new publisher owns the current one (ownedBy). A path relayed
// from another node is never owned here, but a pull that does not deliver now (its origin's
// publisher left; it only retries) gives way to a local publisher (attachPublisher).
func (s *SFU) mayPublish(path string, o pubOwner) bool {
	if s.cfg.ReplacePublisher {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[path]
	return st == nil || !st.live() || (st.pull != nil && !st.pull.up) || (st.pull == nil && ownedBy(st.pub, o))
}
