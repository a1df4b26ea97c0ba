package sfu

import (
	"net/http"
	"slices"
	"time"

	"gatehouse/authz"
)

// The origin's side of a pull: another node's WHEP POST, authenticated by a pull token instead
// of a viewer's credentials. The token was minted by a node of the fleet (the shared signing
// key) for this path; the viewers behind it were authorised by that node's engine, so a pull
// never reaches this node's engine, and never lasts past its session (no recheck, no expiry:
// revoking a viewer ends it at its edge).

// handlePull answers another node's pull of a path: the token must be a valid pull token for
// exactly this path and the node named in Gatehouse-Node, and the pull must keep the topology a
// tree (508 otherwise).
func (s *SFU) handlePull(w http.ResponseWriter, r *http.Request) {
	offer, ok := readBody(w, r, typeSDP)
	if !ok {
		return
	}
	path := cleanPath(r.PathValue("path"))
	if path == "" || path == "session" || len(path) > 8 && path[:8] == "session/" {
		problem(w, http.StatusBadRequest, "invalid stream path")
		return
	}
	node := r.Header.Get(headerNode)
	if msg := checkNodeID(node); msg != "" || node == "" {
		problem(w, http.StatusBadRequest, "invalid "+headerNode+" header")
		return
	}
	if s.cfg.PullTokens == nil {
		problem(w, http.StatusForbidden, "this node serves no pulls")
		return
	}
	c, err := credentials(r)
	if err != nil || c.Token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		problem(w, http.StatusUnauthorized, "a pull needs a pull token")
		return
	}
	claims, err := s.cfg.PullTokens.VerifyPull(c.Token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
		problem(w, http.StatusUnauthorized, "invalid pull token")
		return
	}
	if claims.Path != path || claims.Node != node {
		problem(w, http.StatusForbidden, "the pull token is for another path or node")
		return
	}
	if status, msg := s.pullTopology(path, claims.Node, claims.Hop, claims.Via); status != 0 {
		s.log.Info("sfu pull refused", "path", path, "node", node, "hop", claims.Hop, "reason", msg)
		problem(w, status, msg)
		return
	}
	le, capErr := s.limits.acquire(s.clientIP(r))
	if capErr != nil {
		s.refuse(w, capErr)
		return
	}
	a := &admission{offer: offer, path: path, id: randomID(16), le: le, creds: c}
	defer a.done()
	a.req = authz.Request{Action: authz.ActionRead, Path: path, Protocol: "webrtc", IP: s.clientIP(r), ID: a.id, Source: "sfu"}
	a.d = authz.Allowing(identityPullPrefix+node, time.Time{})
	s.play(w, r, a, &claims)
}

// pullTopology checks that serving node's pull of path keeps the fleet's pulls a tree within
// Edge.MaxHops: this node is not already in the chain that asked, it does not pull the path from
// node, and the chain plus this node's distance to the publisher stays within the limit. It
// returns 508 and a reason, or 0.
func (s *SFU) pullTopology(path, node string, hop int, via []string) (int, string) {
	if slices.Contains(via, s.nodeID) {
		return statusLoopDetected, "pull loop: this node already asked for the stream"
	}
	depth := 0
	s.mu.Lock()
	if st := s.streams[path]; st != nil && st.pub == nil && st.pull != nil {
		if st.pull.upstream == node {
			s.mu.Unlock()
			return statusLoopDetected, "pull loop: this node pulls the stream from the requesting node"
		}
		depth = st.pull.depth
	}
	s.mu.Unlock()
	if hop+depth > s.cfg.Edge.MaxHops {
		return statusLoopDetected, "hop limit: the chain of pulls would be longer than the limit"
	}
	return 0, ""
}
