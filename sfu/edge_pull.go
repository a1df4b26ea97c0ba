package sfu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"gatehouse/authz/tokens"
)

// The edge's side of a pull: one WHEP client PeerConnection to the origin per path, whose
// tracks feed the stream's slots as a local publisher's would.

// Depth header: on a pull's 201, how many pulls separate the answering node from the publisher
// (0: it publishes locally), so a node that shares its pull with further nodes knows its own
// distance to the origin.
const headerDepth = "Gatehouse-Depth"

// buildPullAPI builds the API of this node's pulls: the shared codecs and sockets, NACK
// generation and receiver reports towards the origin, and short ICE timeouts so a dead origin is
// noticed within seconds and the pull reconnects.
func (s *SFU) buildPullAPI(se webrtc.SettingEngine) error {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return fmt.Errorf("sfu: register codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return fmt.Errorf("sfu: nack generator: %w", err)
	}
	ir.Add(gen)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return fmt.Errorf("sfu: rtcp reports: %w", err)
	}
	se.SetICETimeouts(2*time.Second, 4*time.Second, 500*time.Millisecond)
	s.pullAPI = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return nil
}

// pullError is why a pull could not deliver: the status its waiting viewers (or pulling nodes)
// get and a message safe to show.
type pullError struct {
	status int
	msg    string
}

func (e *pullError) Error() string { return "sfu: pull: " + e.msg }

// pull is this node's pull of one path. Its goroutine (run, owned by the SFU's wait group)
// connects, waits while the stream flows and reconnects with backoff until close.
type pull struct {
	s     *SFU
	st    *stream
	path  string
	hop   int      // hops between the viewer that caused it and the origin: 1 for our own viewers
	via   []string // the nodes that asked, oldest first, ending with this node
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{} // run returned
	ready chan struct{} // closed once the stream was delivered, or the first attempt failed
	err   *pullError    // why the first attempt failed; written before ready is closed

	closeOnce sync.Once

	// guarded by SFU.mu
	holds     int       // viewers between admission and attachment
	up        bool      // the current attempt delivers
	delivered bool      // some attempt delivered
	idleSince time.Time // when the last viewer left (Run closes it after Edge.Linger)
	upstream  string    // the origin's node id, if known
	depth     int       // pulls between this node and the publisher (>= 1)
}

// acquirePull returns the pull of path, starting it if there is none, with a hold that keeps it
// open until releasePull. It returns nil and no error when a local publisher took the path
// meanwhile.
func (s *SFU) acquirePull(path string, hop int, via []string) (*pull, *pullError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return nil, &pullError{http.StatusServiceUnavailable, "shutting down"}
	}
	st := s.streams[path]
	if st != nil && st.pub != nil {
		return nil, nil
	}
	if st == nil {
		st = newStream(path)
		st.unpublishedAt = s.now()
		s.streams[path] = st
	}
	p := st.pull
	if p == nil {
		ctx, stop := context.WithCancel(context.Background())
		p = &pull{
			s: s, st: st, path: path, hop: hop, via: via, ctx: ctx, stop: stop,
			done: make(chan struct{}), ready: make(chan struct{}), depth: 1,
		}
		st.pull = p
		s.wg.Go(p.run)
	}
	p.holds++
	return p, nil
}

// releasePull drops a hold taken by acquirePull.
func (s *SFU) releasePull(p *pull) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.holds--
	if p.st.pull == p && p.st.idle() {
		p.idleSince = s.now()
	}
}

// wait waits for the pull to deliver the stream, at most Edge.PullTimeout.
func (p *pull) wait(ctx context.Context) *pullError {
	t := time.NewTimer(p.s.cfg.Edge.PullTimeout.Std())
	defer t.Stop()
	select {
	case <-p.ready:
		return p.err
	case <-ctx.Done():
		return &pullError{http.StatusServiceUnavailable, "the request ended"}
	case <-t.C:
		return &pullError{http.StatusGatewayTimeout, "the stream's origin did not deliver it in time"}
	}
}

// close stops the pull and waits for its goroutine. The caller has detached it from its stream.
func (p *pull) close(reason string) {
	p.closeOnce.Do(func() {
		p.stop()
		<-p.done
		p.s.log.Info("sfu pull closed", "path", p.path, "reason", reason)
	})
}

// fail ends a pull whose first attempt failed: waiting viewers get err.
func (p *pull) fail(err *pullError) {
	s := p.s
	s.mu.Lock()
	if p.st.pull == p {
		p.st.pull = nil
		if p.st.idle() && s.streams[p.path] == p.st {
			delete(s.streams, p.path)
		}
	}
	s.mu.Unlock()
	p.err = err
	close(p.ready)
	s.log.Info("sfu pull failed", "path", p.path, "status", err.status, "reason", err.msg)
}

// run connects, waits while the stream flows and reconnects with backoff (250ms doubling to 5s)
// until the pull is closed. A first attempt that fails ends the pull.
func (p *pull) run() {
	defer close(p.done)
	s := p.s
	backoff := pullBackoffMin
	first := true
	for {
		att, err := p.connect()
		if first {
			if err != nil {
				p.fail(err)
				return
			}
			first = false
			close(p.ready)
			s.log.Info("sfu pull", "path", p.path, "origin", p.upstreamID(), "hop", p.hop)
		}
		if att != nil {
			backoff = pullBackoffMin
			select {
			case <-att.gone:
			case <-p.ctx.Done():
			}
			att.close()
			s.mu.Lock()
			p.up = false
			if p.st.pull == p {
				p.st.unpublishedAt = s.now()
			}
			s.mu.Unlock()
		} else {
			s.log.Info("sfu pull retry", "path", p.path, "status", err.status, "reason", err.msg, "in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, pullBackoffMax)
	}
}

func (p *pull) upstreamID() string {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.upstream
}

// attempt is one connection of a pull to its origin.
type attempt struct {
	p        *pull
	pc       *webrtc.PeerConnection
	expect   [2]bool       // the kinds the origin's answer sends
	got      [2]bool       // guarded by SFU.mu
	ups      []*upTrack    // guarded by SFU.mu
	flowing  chan struct{} // closed when every expected track arrived (under SFU.mu)
	gone     chan struct{} // closed by end: the connection failed or a track ended
	goneOnce sync.Once
	location string // the origin's session resource, for DELETE
	token    string // the pull token that created it (DELETE needs the same credential)

	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

func (a *attempt) end() { a.goneOnce.Do(func() { close(a.gone) }) }

// spawn runs f in a goroutine owned by the attempt, unless it is closing.
func (a *attempt) spawn(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return
	}
	a.wg.Go(f)
}

// close deletes the origin's session (best effort, bounded: the origin ends it at once rather
// than when it notices the connection is gone), ends the connection, waits for its goroutines
// and detaches its tracks from the slots.
func (a *attempt) close() {
	a.end()
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	if a.location != "" {
		a.delete()
	}
	_ = a.pc.Close()
	a.wg.Wait()
	a.p.s.mu.Lock()
	ups := a.ups
	for _, u := range ups {
		u.slot.drop(u)
	}
	if _, ok := a.p.s.pulling[a]; ok { // its readers stopped: the counts are final
		delete(a.p.s.pulling, a)
		a.p.s.retired.addUps(ups)
	}
	a.p.s.mu.Unlock()
	for _, u := range ups {
		u.end()
	}
}

// delete sends DELETE to the origin's session resource with the token that created it.
func (a *attempt) delete() {
	ctx, cancel := context.WithTimeout(context.Background(), pullDeleteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, a.location, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if res, err := a.p.s.httpc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
		res.Body.Close()
	}
}

// connect makes one attempt: find the origin, mint a token, send the WHEP offer and wait until
// every track the origin's answer announces has arrived. On failure nothing is left open.
func (p *pull) connect() (*attempt, *pullError) {
	s := p.s
	ctx, cancel := context.WithTimeout(p.ctx, s.cfg.Edge.PullTimeout.Std())
	defer cancel()
	node, base, err := s.cfg.Origins.Origin(ctx, p.path)
	switch {
	case errors.Is(err, ErrNoOrigin):
		return nil, &pullError{http.StatusConflict, "the stream is not live"}
	case err != nil:
		return nil, &pullError{http.StatusBadGateway, "the stream's origin could not be found"}
	case node != "" && node == s.nodeID:
		return nil, &pullError{http.StatusConflict, "the stream is not live"} // the registry names us, but nobody publishes here
	case node != "" && slices.Contains(p.via, node):
		return nil, &pullError{statusLoopDetected, "pull loop: the origin already asked for this stream"}
	}
	target, err := url.Parse(strings.TrimRight(base, "/") + "/whep/" + p.path)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") {
		return nil, &pullError{http.StatusBadGateway, "the stream's origin has an unusable URL"}
	}
	s.mu.Lock()
	p.upstream = node
	s.mu.Unlock()
	tok, err := s.cfg.PullTokens.IssuePull(tokens.PullClaims{Node: s.nodeID, Path: p.path, Hop: p.hop, Via: p.via}, pullTokenTTL)
	if err != nil {
		return nil, &pullError{http.StatusInternalServerError, "could not mint a pull token"}
	}
	pc, err := s.pullAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, &pullError{http.StatusInternalServerError, "could not create a peer connection"}
	}
	att := &attempt{p: p, pc: pc, flowing: make(chan struct{}), gone: make(chan struct{}), token: tok}
	s.mu.Lock()
	s.pulling[att] = struct{}{}
	s.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			att.close()
		}
	}()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return nil, &pullError{http.StatusInternalServerError, "could not add a transceiver"}
		}
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) { p.onTrack(att, t, rcv) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			att.end()
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, &pullError{http.StatusInternalServerError, "could not create an offer"}
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, &pullError{http.StatusInternalServerError, "could not create an offer"}
	}
	gt := time.NewTimer(s.cfg.GatherTimeout.Std())
	select {
	case <-gathered:
	case <-gt.C:
	case <-ctx.Done():
	}
	gt.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return nil, &pullError{http.StatusBadGateway, "the stream's origin has an unusable URL"}
	}
	req.Header.Set("Content-Type", typeSDP)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(headerNode, s.nodeID)
	res, err := s.httpc.Do(req)
	if err != nil {
		return nil, &pullError{http.StatusBadGateway, "the stream's origin did not answer"}
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxPullAnswer+1))
	res.Body.Close()
	if err != nil || len(body) > maxPullAnswer {
		return nil, &pullError{http.StatusBadGateway, "the stream's origin sent an unusable answer"}
	}
	if res.StatusCode != http.StatusCreated {
		return nil, upstreamRefusal(res.StatusCode, body)
	}
	if loc, err := target.Parse(res.Header.Get("Location")); err == nil && res.Header.Get("Location") != "" {
		att.location = loc.String()
	}
	depth, _ := strconv.Atoi(res.Header.Get(headerDepth))
	s.mu.Lock()
	if n := res.Header.Get(headerNode); n != "" && checkNodeID(n) == "" {
		p.upstream = n
	}
	p.depth = 1 + min(max(depth, 0), maxMaxHops)
	s.mu.Unlock()
	answer, _, err := s.pullCands.filterOffer(string(body))
	if err != nil {
		return nil, &pullError{http.StatusBadGateway, "the stream's origin sent an unusable answer"}
	}
	att.expect = sentKinds(answer)
	if !att.expect[0] && !att.expect[1] {
		return nil, &pullError{http.StatusBadGateway, "the stream's origin sends no media"}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, &pullError{http.StatusBadGateway, "the stream's origin sent an unusable answer"}
	}
	select {
	case <-att.flowing:
	case <-att.gone:
		return nil, &pullError{http.StatusBadGateway, "the connection to the stream's origin failed"}
	case <-ctx.Done():
		return nil, &pullError{http.StatusGatewayTimeout, "the stream's origin did not deliver it in time"}
	}
	ok = true
	return att, nil
}

// upstreamRefusal maps an origin's refusal to what this node's waiting clients get: 409 (not
// live) and 508 (loop, hop limit) pass through with the origin's reason; anything else is 502.
func upstreamRefusal(status int, body []byte) *pullError {
	var pb problemBody
	_ = json.Unmarshal(body, &pb)
	detail := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, pb.Detail)
	if len(detail) > 200 {
		detail = detail[:200]
	}
	switch status {
	case http.StatusConflict:
		return &pullError{http.StatusConflict, "the stream is not live"}
	case statusLoopDetected:
		return &pullError{statusLoopDetected, "upstream: " + detail}
	case http.StatusUnauthorized, http.StatusForbidden:
		return &pullError{http.StatusBadGateway, "the stream's origin refused this node's pull token"}
	}
	return &pullError{http.StatusBadGateway, fmt.Sprintf("the stream's origin answered %d", status)}
}

// sentKinds returns, per kind, whether an answer's section sends media to us: it is active in
// our direction and announces a track (a=msid or a=ssrc). A sending direction alone is not
// enough: an origin without the fix in play answers sendonly for a kind it has no track for.
func sentKinds(answer string) [2]bool {
	var out [2]bool
	var sd sdp.SessionDescription
	if sd.UnmarshalString(answer) != nil {
		return out
	}
	for _, md := range sd.MediaDescriptions {
		k, ok := mediaKind(md)
		if !ok || md.MediaName.Port.Value == 0 || (direction(md) != "sendonly" && direction(md) != "sendrecv") {
			continue
		}
		_, msid := md.Attribute("msid")
		_, ssrc := md.Attribute("ssrc")
		if msid || ssrc {
			out[kindIndex(k)] = true
		}
	}
	return out
}

// onTrack makes a pulled track the source of its slot, as a local publisher's would be: viewers
// keep their mapping's continuity (forward rebases on a new source) and get a keyframe soon.
func (p *pull) onTrack(att *attempt, t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	s := p.s
	i := kindIndex(t.Kind())
	var stale []*session
	s.mu.Lock()
	if p.st.pull != p || !att.expect[i] || att.got[i] {
		s.mu.Unlock()
		return
	}
	select {
	case <-att.gone:
		s.mu.Unlock()
		return
	default:
	}
	sl := p.st.slots[i]
	up := newUpTrack(sl, att.pc, t)
	up.owner = att
	if cur := sl.codec.Load(); cur == nil || !codecCompatible(cur.RTPCodecCapability, up.codec.RTPCodecCapability) {
		for _, d := range sl.viewers() {
			if !codecCompatible(up.codec.RTPCodecCapability, d.codec.RTPCodecCapability) {
				stale = append(stale, d.owner)
			}
		}
		c := up.codec
		sl.codec.Store(&c)
	}
	sl.setSource(up)
	att.ups = append(att.ups, up)
	att.got[i] = true
	if att.got == att.expect {
		p.up, p.delivered = true, true
		close(att.flowing)
	}
	viewers := len(sl.viewers())
	s.mu.Unlock()
	for _, v := range stale {
		s.closeAsync(v, "publisher changed codec")
	}
	att.spawn(func() {
		up.run()
		att.end() // the origin closed the track (its session ended): reconnect
	})
	att.spawn(func() {
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
