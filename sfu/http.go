package sfu

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/creds"
	"gatehouse/authz/hookio"
	"gatehouse/authz/live"
	"gatehouse/web"
)

// Content types of the WHIP/WHEP exchange.
const (
	typeSDP     = "application/sdp"
	typeFrag    = "application/trickle-ice-sdpfrag"
	typeProblem = "application/problem+json"
)

// Handler serves the WHIP/WHEP API (and, when Config.Pages, the player and publish pages):
//
//	POST    /whip/{path...}          publish (SDP offer in, 201 + answer + Location out)
//	POST    /whep/{path...}          play
//	PATCH   /whip/session/{id}       trickle ICE or ICE restart (also /whep/session/{id})
//	DELETE  /whip/session/{id}       end the session (only with the creating credential)
//	OPTIONS /whip/..., /whep/...     CORS preflight
//	DELETE  /api/v1/sessions/{id}    kick a session (action "api")
//	GET     /watch/{path...}         WHEP player page
//	GET     /publish/{path...}       WHIP camera publish page
//
// The path "session/..." is reserved under /whip/ and /whep/.
func (s *SFU) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip/{path...}", s.handlePublish)
	mux.HandleFunc("POST /whep/{path...}", s.handleView)
	for _, k := range []struct {
		prefix string
		kind   Kind
	}{{"/whip/", KindPublish}, {"/whep/", KindRead}} {
		mux.HandleFunc("PATCH "+k.prefix+"session/{id}", s.handlePatch(k.kind))
		mux.HandleFunc("DELETE "+k.prefix+"session/{id}", s.handleDelete(k.kind))
		mux.HandleFunc("OPTIONS "+k.prefix+"{path...}", s.handleOptions)
	}
	mux.HandleFunc("DELETE /api/v1/sessions/{id}", s.handleKick)
	if s.cfg.Pages {
		mux.Handle("GET /watch/{path...}", web.WatchHandler())
		mux.Handle("GET /publish/{path...}", web.PublishHandler())
	}
	return s.cors(mux)
}

// cors adds the CORS response headers for allowed origins. Auth is a bearer header, never a
// cookie, so credentials mode is not needed.
func (s *SFU) cors(next http.Handler) http.Handler {
	anyOrigin := slices.Contains(s.cfg.AllowedOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			h := w.Header()
			switch {
			case anyOrigin:
				h.Set("Access-Control-Allow-Origin", "*")
			case slices.Contains(s.cfg.AllowedOrigins, origin):
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
			}
			h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Retry-After")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *SFU) handleOptions(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Accept-Post", typeSDP)
	h.Set("Accept-Patch", typeFrag)
	w.WriteHeader(http.StatusNoContent)
}

// problemBody is an RFC 9457 problem detail.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// problem writes an application/problem+json error. detail must never contain a credential.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", typeProblem)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problemBody{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

// readBody checks the content type and reads at most DefaultMaxBody bytes. It writes the
// problem (415, 413, 400) and returns false on failure.
func readBody(w http.ResponseWriter, r *http.Request, want string) (string, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		problem(w, http.StatusUnsupportedMediaType, "Content-Type must be "+want)
		return "", false
	}
	b, refused := hookio.ReadBody(w, r, DefaultMaxBody)
	if refused != nil {
		problem(w, refused.Status, refused.Message)
		return "", false
	}
	if len(b) == 0 {
		problem(w, http.StatusBadRequest, "empty body")
		return "", false
	}
	return string(b), true
}

// cleanPath normalises a stream path: no leading or trailing slash, no empty, "." or ".."
// segment, printable ASCII without spaces, at most 256 bytes. It returns "" for a bad path.
func cleanPath(p string) string {
	p = strings.Trim(p, "/")
	if p == "" || len(p) > 256 {
		return ""
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return ""
		}
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' {
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

// admit is the common start of a WHIP or WHEP POST: read the SDP offer, validate the stream path,
// take a slot under the global and per-client caps (before anything costly: authorisation, a
// PeerConnection), mint the session id and authorise. On false the problem response has been
// written and no slot is held; on true the caller owns le and must release it unless a session
// takes it over.
func (s *SFU) admit(w http.ResponseWriter, r *http.Request, action authz.Action) (offer, path, id string, req authz.Request, c creds.Credentials, d authz.Decision, le *lease, ok bool) {
	if offer, ok = readBody(w, r, typeSDP); !ok {
		return
	}
	path = cleanPath(r.PathValue("path"))
	if path == "" || path == "session" || strings.HasPrefix(path, "session/") {
		problem(w, http.StatusBadRequest, "invalid stream path")
		return offer, path, id, req, c, d, nil, false
	}
	le, capErr := s.limits.acquire(s.clientIP(r))
	if capErr != nil {
		s.refuse(w, capErr)
		return offer, path, id, req, c, d, nil, false
	}
	id = randomID(16)
	if req, c, d, ok = s.authorize(w, r, action, path, id); !ok {
		le.release()
		return offer, path, id, req, c, d, nil, false
	}
	return offer, path, id, req, c, d, le, true
}

// refuse answers an offer refused by a cap. Retry-After is the connect timeout: the longest a
// session that never connects holds its slot.
func (s *SFU) refuse(w http.ResponseWriter, e *capError) {
	refuse(w, e, int((s.cfg.ConnectTimeout.Std()+time.Second-1)/time.Second))
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
		CanRename: true, // the session attaches to Decision.Rename (renamed)
		CanEndAt:  true, // EnforceExpiry closes it when the grant ends
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
		msg := d.Message
		if msg == "" {
			msg = http.StatusText(status)
		}
		problem(w, status, msg)
		return req, c, d, false
	}
	return req, c, d, true
}

// newSession prepares a session holding le; it is not visible until attached.
func (s *SFU) newSession(id string, kind Kind, path string, req authz.Request, c creds.Credentials, d authz.Decision, le *lease) *session {
	return &session{
		id: id, kind: kind, path: path, identity: d.Identity, remote: addrString(req.IP), lease: le,
		req: req, credHash: hashCreds(c), created: s.now(), expires: d.Expires,
		ready: make(chan struct{}), closed: make(chan struct{}), etag: newETag(), cands: candidateSet{},
	}
}

func addrString(a netip.Addr) string {
	if a.IsValid() {
		return a.String()
	}
	return ""
}

func newETag() string { return `"` + randomID(8) + `"` }

// parseOffer checks that body is an SDP offer with at least one audio or video section.
func parseOffer(body string) (*sdp.SessionDescription, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(body); err != nil {
		return nil, errors.New("the body is not valid SDP")
	}
	for _, md := range sd.MediaDescriptions {
		if k := md.MediaName.Media; k == "audio" || k == "video" {
			return &sd, nil
		}
	}
	return nil, errors.New("the offer has no audio or video section")
}

// mediaCodecs lists an m-section's codecs in the order of its format list.
func mediaCodecs(md *sdp.MediaDescription) []webrtc.RTPCodecParameters {
	rtpmap, fmtp := map[string]string{}, map[string]string{}
	for _, a := range md.Attributes {
		pt, rest, _ := strings.Cut(a.Value, " ")
		switch a.Key {
		case "rtpmap":
			rtpmap[pt] = rest
		case "fmtp":
			fmtp[pt] = rest
		}
	}
	var out []webrtc.RTPCodecParameters
	for _, f := range md.MediaName.Formats {
		rm, ok := rtpmap[f]
		if !ok {
			continue
		}
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		parts := strings.Split(rm, "/")
		c := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt)}
		c.MimeType = md.MediaName.Media + "/" + parts[0]
		if len(parts) > 1 {
			cr, _ := strconv.ParseUint(parts[1], 10, 32)
			c.ClockRate = uint32(cr)
		}
		if len(parts) > 2 {
			ch, _ := strconv.ParseUint(parts[2], 10, 16)
			c.Channels = uint16(ch)
		}
		c.SDPFmtpLine = fmtp[f]
		out = append(out, c)
	}
	return out
}

func mediaKind(md *sdp.MediaDescription) (webrtc.RTPCodecType, bool) {
	if md.MediaName.Port.Value == 0 {
		return 0, false // rejected section
	}
	switch md.MediaName.Media {
	case "audio":
		return webrtc.RTPCodecTypeAudio, true
	case "video":
		return webrtc.RTPCodecTypeVideo, true
	}
	return 0, false
}

func direction(md *sdp.MediaDescription) string {
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return "sendrecv"
}

// answerCodecs returns, per kind, the codec a publisher will send: the first codec of each
// accepted section of our answer.
func answerCodecs(answer string) [2]*webrtc.RTPCodecParameters {
	var out [2]*webrtc.RTPCodecParameters
	var sd sdp.SessionDescription
	if sd.UnmarshalString(answer) != nil {
		return out
	}
	for _, md := range sd.MediaDescriptions {
		k, ok := mediaKind(md)
		if !ok || direction(md) == "inactive" || out[kindIndex(k)] != nil {
			continue
		}
		if cs := mediaCodecs(md); len(cs) > 0 {
			c := cs[0]
			out[kindIndex(k)] = &c
		}
	}
	return out
}

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

func (s *SFU) handlePublish(w http.ResponseWriter, r *http.Request) {
	offer, path, id, req, c, d, le, ok := s.admit(w, r, authz.ActionPublish)
	if !ok {
		return
	}
	kept := false // set once the session holds the slot: closeSession releases it from then on
	defer func() {
		if !kept {
			le.release() // idempotent: a session closed on a failure path already released it
		}
	}()
	target, ok := renamed(w, path, d)
	if !ok {
		return
	}
	if _, err := parseOffer(offer); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	offer, cands, err := s.cands.filterOffer(offer)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.cfg.ReplacePublisher && s.isLive(target) {
		problem(w, http.StatusConflict, "the stream already has a publisher")
		return
	}
	sess := s.newSession(id, KindPublish, target, req, c, d, le)
	sess.cands = cands
	pc, err := s.newPeerConnection(s.pubAPI)
	if err != nil {
		problem(w, http.StatusInternalServerError, "could not create a peer connection")
		return
	}
	sess.pc = pc
	pc.OnTrack(func(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) { s.onTrack(sess, t, rcv) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			sess.connected.Store(true)
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			s.closeAsync(sess, "connection "+st.String())
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		s.closeSession(sess, "bad offer")
		problem(w, http.StatusBadRequest, "the offer was not accepted")
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
	kept = true
	s.log.Info("sfu publish", "session", id, "path", target, "identity", sess.identity, "ip", sess.remote)
	s.created(w, sess, "/whip/", answer)
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

func (s *SFU) isLive(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[path]
	return st != nil && st.pub != nil
}

// attachPublisher makes sess the publisher of its path, replacing the current one when
// configured. Viewers bound to a codec the new publisher does not send are closed (they must
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
	if st.pub != nil {
		if !s.cfg.ReplacePublisher {
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
	if cur := sl.up.Load(); cur != nil && slices.Contains(sess.ups, cur) {
		s.mu.Unlock()
		s.log.Warn("sfu: ignoring a second track of the same kind (simulcast is not supported)", "session", sess.id, "rid", t.RID())
		return
	}
	up := newUpTrack(sl, sess.pc, t)
	if cur := sl.codec.Load(); cur == nil || !codecCompatible(cur.RTPCodecCapability, up.codec.RTPCodecCapability) {
		for _, d := range sl.viewers() {
			if !codecCompatible(up.codec.RTPCodecCapability, d.codec.RTPCodecCapability) {
				stale = append(stale, d.owner)
			}
		}
		c := up.codec
		sl.codec.Store(&c)
	}
	sl.up.Store(up)
	sess.ups = append(sess.ups, up)
	viewers := len(sl.viewers())
	s.mu.Unlock()
	for _, v := range stale {
		s.closeAsync(v, "publisher changed codec")
	}
	sess.spawn(up.run)
	sess.spawn(func() {
		for {
			if _, _, err := rcv.ReadRTCP(); err != nil {
				return
			}
		}
	})
	if viewers > 0 {
		up.requestKeyframe()
	}
}

func (s *SFU) handleView(w http.ResponseWriter, r *http.Request) {
	offer, reqPath, id, req, c, d, le, ok := s.admit(w, r, authz.ActionRead)
	if !ok {
		return
	}
	kept := false // set once the session holds the slot: closeSession releases it from then on
	defer func() {
		if !kept {
			le.release() // idempotent: a session closed on a failure path already released it
		}
	}()
	path, ok := renamed(w, reqPath, d)
	if !ok {
		return
	}
	if capErr := le.addPath(path); capErr != nil {
		s.refuse(w, capErr)
		return
	}
	sd, err := parseOffer(offer)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	offer, cands, err := s.cands.filterOffer(offer)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
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
		w.Header().Set("Retry-After", "2")
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
	sess := s.newSession(id, KindRead, path, req, c, d, le)
	sess.cands = cands
	pc, err := s.newPeerConnection(s.viewAPI)
	if err != nil {
		problem(w, http.StatusInternalServerError, "could not create a peer connection")
		return
	}
	sess.pc = pc
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
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		s.closeSession(sess, "bad offer")
		problem(w, http.StatusBadRequest, "the offer was not accepted")
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
		w.Header().Set("Retry-After", "2")
		problem(w, http.StatusConflict, "the stream is not live")
		return
	}
	for _, d := range sess.downs {
		addDown(d.slot, d)
	}
	st.viewers[sess] = struct{}{}
	sess.stream = st
	sess.attached = true
	s.sessions[id] = sess
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
	kept = true
	s.record(sess, live.Joined)
	s.log.Info("sfu play", "session", id, "path", path, "identity", sess.identity, "ip", sess.remote)
	s.created(w, sess, "/whep/", answer)
}

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

func (s *SFU) handlePatch(kind Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.lookup(w, r, kind)
		if sess == nil || !owns(w, r, sess) {
			return
		}
		body, ok := readBody(w, r, typeFrag)
		if !ok {
			return
		}
		frag, err := parseSDPFrag(body)
		if err != nil {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		sess.sig.Lock()
		defer sess.sig.Unlock()
		im := r.Header.Get("If-Match")
		if im != "" && im != "*" && im != sess.etag {
			problem(w, http.StatusPreconditionFailed, "the session has changed (ETag mismatch)")
			return
		}
		restart := frag.Ufrag != "" && frag.Ufrag != remoteUfrag(sess.pc)
		if restart && im == "" {
			problem(w, http.StatusPreconditionRequired, "an ICE restart needs If-Match")
			return
		}
		if err := s.cands.filterFrag(&frag, sess.cands); err != nil {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		if restart {
			out, err := s.iceRestart(r.Context(), sess, frag)
			if err != nil {
				problem(w, http.StatusBadRequest, "ICE restart failed")
				return
			}
			sess.etag = newETag()
			w.Header().Set("Content-Type", typeFrag)
			w.Header().Set("ETag", sess.etag)
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, out)
			return
		}
		if err := addCandidates(sess.pc, frag); err != nil {
			problem(w, http.StatusBadRequest, "a candidate was not accepted")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func addCandidates(pc *webrtc.PeerConnection, f sdpFrag) error {
	for _, c := range f.Candidates {
		init := webrtc.ICECandidateInit{Candidate: c.Candidate}
		if c.Mid != "" {
			init.SDPMid = &c.Mid
		} else {
			idx := c.MLineIndex
			init.SDPMLineIndex = &idx
		}
		if err := pc.AddICECandidate(init); err != nil {
			return err
		}
	}
	return nil
}

// remoteUfrag returns the remote description's first ice-ufrag.
func remoteUfrag(pc *webrtc.PeerConnection) string {
	rd := pc.RemoteDescription()
	if rd == nil {
		return ""
	}
	for line := range strings.SplitSeq(rd.SDP, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// iceRestart applies the client's new ICE credentials as a re-offer (the last offer with new
// ufrag/pwd and its candidates), answers with fresh local credentials and returns them with
// our gathered candidates as an sdpfrag.
func (s *SFU) iceRestart(ctx context.Context, sess *session, f sdpFrag) (string, error) {
	rd := sess.pc.RemoteDescription()
	if rd == nil {
		return "", errors.New("no remote description")
	}
	var b strings.Builder
	for line := range strings.SplitSeq(rd.SDP, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			line = "a=ice-ufrag:" + f.Ufrag
		case strings.HasPrefix(line, "a=ice-pwd:"):
			line = "a=ice-pwd:" + f.Pwd
		case strings.HasPrefix(line, "a=candidate:"), line == "a=end-of-candidates":
			continue
		}
		b.WriteString(line + "\r\n")
	}
	if err := sess.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: b.String()}); err != nil {
		return "", err
	}
	if _, err := s.negotiate(ctx, sess.pc); err != nil {
		return "", err
	}
	if err := addCandidates(sess.pc, f); err != nil {
		return "", err
	}
	return localFrag(sess.pc.LocalDescription().SDP), nil
}

// localFrag extracts our ICE credentials and the first media section's candidates (BUNDLE)
// from a local description as an RFC 8840 fragment.
func localFrag(desc string) string {
	var ufrag, pwd, mline, mid string
	var cands []string
	section := -1
	for line := range strings.SplitSeq(desc, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			section++
			if section == 0 {
				mline = line
			}
		case strings.HasPrefix(line, "a=ice-ufrag:") && ufrag == "":
			ufrag = line
		case strings.HasPrefix(line, "a=ice-pwd:") && pwd == "":
			pwd = line
		case section == 0 && strings.HasPrefix(line, "a=mid:"):
			mid = line
		case section == 0 && strings.HasPrefix(line, "a=candidate:"):
			cands = append(cands, line)
		}
	}
	var b strings.Builder
	for _, l := range []string{ufrag, pwd, mline, mid} {
		if l != "" {
			b.WriteString(l + "\r\n")
		}
	}
	for _, c := range cands {
		b.WriteString(c + "\r\n")
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String()
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
