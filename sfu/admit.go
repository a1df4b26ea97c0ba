package sfu

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/creds"
	"gatehouse/authz/guard"
)

// WHIP and WHEP admission: what a publish (whip.go) and a play (whep.go) offer share before
// their own negotiation, and the 201 answer they both end with.

// cleanPath normalises a stream path from a WHIP/WHEP URL: it trims leading and trailing
// slashes, then applies the engine's one path rule (authz.CheckPath: not empty, at most
// authz.MaxPathLen bytes, no empty, "." or ".." segment, no control character) and, on top of
// it, the SFU's own: printable ASCII only, no space, '?', '#' or '%' (the path is part of the
// session's URL and of the Location the client follows). It returns "" for a bad path.
func cleanPath(p string) string {
	p = strings.Trim(p, "/")
	if authz.CheckPath(p) != nil {
		return ""
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' {
			return ""
		}
	}
	return p
}

// credentials returns what the client presented: the Authorization header, and what it lacks
// from the query (package creds). A repeated query credential is a 400.
func credentials(r *http.Request) (creds.Credentials, error) {
	return creds.FromRequest(r.Header.Get("Authorization"), r.URL.Query())
}

// hashCreds binds a session to the credential that created it without keeping a second copy
// for comparison: length-prefixed fields, so no two credentials hash alike.
func hashCreds(c creds.Credentials) [32]byte {
	h := sha256.New()
	for _, f := range []string{c.User, c.Pass, c.Token, c.Key} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// clientIP is the address that the listener's clientip.Handler resolved (trusted proxies are a
// listener-wide setting); without that middleware, the TCP peer.
func (s *SFU) clientIP(r *http.Request) netip.Addr {
	return clientip.Addr(r)
}

// admission is a WHIP or WHEP offer that admit let in: it holds a slot under the caps until a
// session takes it over (keep) or the handler returns (done).
type admission struct {
	offer string // the SDP offer as received
	path  string // where the session attaches: the decision's Rename for a stream key, else the requested path
	id    string // the session id, also the Request's ID
	req   authz.Request
	creds creds.Credentials
	d     authz.Decision
	le    *lease
	kept  bool
}

// keep marks the slot as taken over by an attached session: closeSession releases it from then on.
func (a *admission) keep() { a.kept = true }

// done releases the slot unless keep was called. Deferred by the handlers; release is
// idempotent, so a session closed on a failure path that already released it is fine.
func (a *admission) done() {
	if !a.kept {
		a.le.release()
	}
}

// admit is the common start of a WHIP or WHEP POST: read the SDP offer, validate the stream path,
// take a slot under the global and per-client caps (before anything costly: authorisation, a
// PeerConnection), mint the session id, authorise and follow a stream key's Rename (renamed). On
// false the problem response has been written and no slot is held; on true the caller must
// defer a.done().
func (s *SFU) admit(w http.ResponseWriter, r *http.Request, action authz.Action) (*admission, bool) {
	offer, ok := readBody(w, r, typeSDP)
	if !ok {
		return nil, false
	}
	path := cleanPath(r.PathValue("path"))
	if path == "" || path == "session" || strings.HasPrefix(path, "session/") {
		problem(w, http.StatusBadRequest, "invalid stream path")
		return nil, false
	}
	le, capErr := s.limits.acquire(s.clientIP(r))
	if capErr != nil {
		s.refuse(w, capErr)
		return nil, false
	}
	a := &admission{offer: offer, id: randomID(16), le: le}
	if a.req, a.creds, a.d, ok = s.authorize(w, r, action, path, a.id); !ok {
		le.release()
		return nil, false
	}
	if a.path, ok = renamed(w, path, a.d); !ok {
		le.release()
		return nil, false
	}
	if a.d.KeyID != "" && a.d.Rename != "" && a.creds.Key == "" {
		// The stream key was the path's last segment (OBS: server URL .../whip/live/<key>, no
		// Bearer): the session belongs to that key, so DELETE with the key (Bearer or ?key=)
		// ends it, as for a key sent as Bearer or ?key= in the first place.
		a.creds.Key = path[strings.LastIndexByte(path, '/')+1:]
	}
	return a, true
}

// readOffer parses the admitted offer and drops the candidates the SFU refuses (s.cands). It
// writes 400 and returns false when the offer is unusable.
func (s *SFU) readOffer(w http.ResponseWriter, a *admission) (*sdp.SessionDescription, string, candidateSet, bool) {
	return s.readOfferWith(w, a, s.cands)
}

// readOfferWith is readOffer with another candidate policy (node-to-node pulls).
func (s *SFU) readOfferWith(w http.ResponseWriter, a *admission, policy candidatePolicy) (*sdp.SessionDescription, string, candidateSet, bool) {
	sd, err := parseOffer(a.offer)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return nil, "", nil, false
	}
	offer, cands, err := policy.filterOffer(a.offer)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return nil, "", nil, false
	}
	return sd, offer, cands, true
}

// refuse answers an offer refused by a cap. Retry-After is the connect timeout: the longest a
// session that never connects holds its slot.
func (s *SFU) refuse(w http.ResponseWriter, e *capError) {
	refuse(w, e, s.cfg.ConnectTimeout.Std())
}

// newPeerConnection creates a PeerConnection from api and counts it.
func (s *SFU) newPeerConnection(api *webrtc.API) (*webrtc.PeerConnection, error) {
	s.pcs.Add(1)
	return api.NewPeerConnection(webrtc.Configuration{})
}

// authorize builds the request, asks the Authorizer and writes 401/403 on denial.
func (s *SFU) authorize(w http.ResponseWriter, r *http.Request, action authz.Action, path, id string) (authz.Request, creds.Credentials, authz.Decision, bool) {
	c, err := credentials(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "a credential parameter is repeated")
		return authz.Request{}, c, authz.Decision{}, false
	}
	req := authz.Request{
		Action: action, Path: path, Protocol: "webrtc", IP: s.clientIP(r),
		Query: r.URL.RawQuery, ID: id, UserAgent: r.UserAgent(), Source: "sfu",
		CanRename: true,                // the session attaches to Decision.Rename (renamed)
		CanEndAt:  !s.cfg.IgnoreExpiry, // Run closes it when the grant ends, unless told not to
	}
	c.Apply(&req)
	d := s.auth.Authorize(r.Context(), &req)
	if !d.Allowed() {
		status := d.HTTPStatus()
		challenge := `Bearer realm="gatehouse"`
		switch {
		case status == http.StatusForbidden:
			challenge += `, error="insufficient_scope"`
		case !c.Empty():
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		if d.RetryAfter > 0 { // banned: say when to come back
			guard.SetRetryAfter(w.Header(), d.RetryAfter)
		}
		msg := d.Message
		if msg == "" {
			msg = http.StatusText(status)
		}
		problem(w, status, msg)
		return req, c, d, false
	}
	return req, c, d, true
}

// newSession prepares a session of an admission, holding its slot, with the offer's accepted
// candidates and a new PeerConnection from api. It is not visible until attached. It writes 500
// and returns nil when no PeerConnection can be made.
func (s *SFU) newSession(w http.ResponseWriter, a *admission, kind Kind, cands candidateSet, api *webrtc.API) *session {
	pc, err := s.newPeerConnection(api)
	if err != nil {
		problem(w, http.StatusInternalServerError, "could not create a peer connection")
		return nil
	}
	return &session{
		id: a.id, kind: kind, path: a.path, identity: a.d.Identity, backend: a.d.Backend, keyID: a.d.KeyID, keyLabel: a.d.KeyLabel, remote: addrString(a.req.IP), lease: a.le,
		req: a.req, credHash: hashCreds(a.creds), created: s.now(), expires: a.d.Expires,
		ready: make(chan struct{}), closed: make(chan struct{}), etag: newETag(), cands: cands, pc: pc,
	}
}

// setOffer sets the (filtered) offer as sess's remote description; on failure it closes sess,
// writes 400 and returns false.
func (s *SFU) setOffer(w http.ResponseWriter, sess *session, offer string) bool {
	if err := sess.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		s.closeSession(sess, "bad offer")
		problem(w, http.StatusBadRequest, "the offer was not accepted")
		return false
	}
	return true
}

func addrString(a netip.Addr) string {
	if a.IsValid() {
		return a.String()
	}
	return ""
}

func newETag() string { return `"` + randomID(8) + `"` }

// negotiate answers the remote offer already set on pc and waits (bounded) for ICE gathering,
// so the answer carries every candidate: OBS never trickles.
func (s *SFU) negotiate(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", err
	}
	t := time.NewTimer(s.cfg.GatherTimeout.Std())
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		s.log.Warn("sfu: ICE gathering timed out; answering with the candidates found so far")
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// created writes the 201 reply: answer, Location, ETag and one Link header per ICE server URL
// (OBS splits Link headers on commas).
func (s *SFU) created(w http.ResponseWriter, sess *session, prefix, answer string) {
	h := w.Header()
	h.Set("Content-Type", typeSDP)
	h.Set("Location", prefix+"session/"+sess.id)
	h.Set("ETag", sess.etag)
	h.Set("Cache-Control", "no-store")
	for _, l := range s.linkHeaders() {
		h.Add("Link", l)
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

func (s *SFU) linkHeaders() []string {
	var out []string
	for _, is := range s.cfg.ICEServers {
		for _, u := range is.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if is.Username != "" || is.Credential != "" {
				l += `; username="` + is.Username + `"; credential="` + is.Credential + `"; credential-type="password"`
			}
			out = append(out, l)
		}
	}
	return out
}

// renamed returns the path a session attaches to: the decision's Rename when the requested path
// was a stream key (for publishers and viewers alike), else path. It writes 403 and returns
// false when the key maps to an unusable path.
func renamed(w http.ResponseWriter, path string, d authz.Decision) (string, bool) {
	if d.Rename == "" {
		return path, true
	}
	target := cleanPath(d.Rename)
	if target == "" {
		problem(w, http.StatusForbidden, "the stream key maps to an invalid path")
		return "", false
	}
	return target, true
}
