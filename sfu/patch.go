package sfu

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"
)

// PATCH on a session: trickle ICE candidates and ICE restarts (RFC 9725, RFC 8840 fragments).

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
