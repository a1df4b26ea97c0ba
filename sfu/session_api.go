package sfu

import (
	"crypto/subtle"
	"net/http"

	"gatehouse/authz"
)

// Ending sessions: DELETE by the client that created one (same credential), and the
// operator's DELETE /api/v1/sessions/{id}.

// lookup finds a session of the given kind, writing 404 if there is none.
func (s *SFU) lookup(w http.ResponseWriter, r *http.Request, kind Kind) *session {
	s.mu.Lock()
	sess := s.sessions[r.PathValue("id")]
	s.mu.Unlock()
	if sess == nil || sess.kind != kind {
		problem(w, http.StatusNotFound, "no such session")
		return nil
	}
	return sess
}

// owns checks, in constant time, that the request carries the credential that created sess;
// it writes 401 (none) or 403 (another one) otherwise.
func owns(w http.ResponseWriter, r *http.Request, sess *session) bool {
	c, err := credentials(r)
	if err != nil || c.Empty() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		problem(w, http.StatusUnauthorized, "credentials required")
		return false
	}
	h := hashCreds(c)
	if subtle.ConstantTimeCompare(h[:], sess.credHash[:]) != 1 {
		problem(w, http.StatusForbidden, "the session belongs to another credential")
		return false
	}
	return true
}

func (s *SFU) handleDelete(kind Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.lookup(w, r, kind)
		if sess == nil || !owns(w, r, sess) {
			return
		}
		s.closeSession(sess, "ended by client")
		w.WriteHeader(http.StatusOK) // OBS expects 200
	}
}

func (s *SFU) handleKick(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, _, _, ok := s.authorize(w, r, authz.ActionAPI, "", ""); !ok {
		return
	}
	if err := s.Kick(id); err != nil {
		problem(w, http.StatusNotFound, "no such session")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
