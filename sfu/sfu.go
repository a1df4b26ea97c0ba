// Package sfu is gatehouse's authenticated WebRTC selective forwarding unit: publishers push
// over WHIP (RFC 9725, e.g. OBS), viewers play over WHEP, and every session is authorised
// through the same authz engine as the streaming-server adapters, keeps its grant's expiry
// and is bound to the credential that created it.
//
// Media is passed through unchanged (H.264, VP8, VP9, AV1, Opus). Each publisher track has one
// reader goroutine that parses a packet once, keeps it in a shared NACK cache and offers it to
// every viewer's bounded queue without blocking; each viewer track has its own writer goroutine
// that rewrites SSRC, payload type, sequence numbers and timestamps. A viewer that cannot keep
// up loses packets and resumes at the next keyframe; the others never wait for it. Viewers stay
// connected across a publisher reconnect (within Config.ReconnectGrace) and see one continuous
// stream.
//
// A viewer that arrives before its stream is published gets 409 Conflict with Retry-After
// (WHEP draft behaviour): the answer must name the publisher's codecs, which are unknown until
// then, and OBS-style clients retry.
package sfu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

// Sentinel errors of package sfu.
var (
	// ErrClosed is returned by New's results after Close, and by operations on a closed SFU.
	ErrClosed = errors.New("sfu: closed")
	// ErrNotFound is returned by Kick for an unknown session id.
	ErrNotFound = errors.New("sfu: no such session")
	// ErrBadFrag wraps every trickle-ice-sdpfrag parse error.
	ErrBadFrag = errors.New("sfu: bad trickle-ice-sdpfrag")
	// ErrConfig wraps invalid configuration passed to New.
	ErrConfig = errors.New("sfu: invalid configuration")
)

// Authorizer decides whether a client may publish, read or use the API. *authz.Engine
// implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Recorder receives session events: Published/Unpublished for publishers and Joined/Left for
// viewers, with Source "sfu" and Protocol "webrtc". Record must not block for long.
type Recorder interface {
	Record(ev live.Event)
}

// Kind says whether a session publishes or reads.
type Kind string

// Session kinds; the values are the authz actions.
const (
	KindPublish Kind = Kind(authz.ActionPublish)
	KindRead    Kind = Kind(authz.ActionRead)
)

// SessionInfo describes one live session, as listed by Sessions.
type SessionInfo struct {
	ID       string
	Kind     Kind
	Path     string
	Identity string
	Remote   string
	Created  time.Time
	Expires  time.Time // zero: never
}

// SFU is the WHIP/WHEP server. Create it with New, serve Handler, run Run in a goroutine and
// call Close when done. All methods are safe for concurrent use.
type SFU struct {
	cfg  Config
	auth Authorizer
	rec  Recorder
	log  *slog.Logger
	now  func() time.Time

	pubAPI  *webrtc.API // publisher PeerConnections
	viewAPI *webrtc.API // viewer PeerConnections: a lighter interceptor chain

	udpMux ice.UDPMux
	tcpMux ice.TCPMux

	limits    *limiter        // session caps, checked before a PeerConnection is created
	cands     candidatePolicy // which remote ICE candidates reach pion, and how many
	pullCands candidatePolicy // the same for node-to-node pulls: also Config.InternalIPs
	pullAPI   *webrtc.API     // this node's pulls from an origin (edge_pull.go)
	nodeID    string          // Config.Edge.NodeID or a random id
	httpc     *http.Client    // pull requests to origins
	pcs       atomic.Int64    // PeerConnections created so far (tests: a refusal creates none)

	mu       sync.Mutex
	shut     bool
	sessions map[string]*session
	streams  map[string]*stream
	// retiring holds the sessions closing, whose goroutines may still count packets: Stats
	// sums them with the live ones; retired holds the counts of those fully closed (stats.go).
	retiring map[*session]struct{}
	retired  packetTotals
	// pulling holds this node's pull attempts (edge_pull.go), whose tracks count the packets
	// pulled from an origin; an attempt's counts move to retired when it closes.
	pulling map[*attempt]struct{}

	wg        sync.WaitGroup // Run's helpers and asynchronous session closes
	done      chan struct{}
	closeOnce sync.Once
}

// stream is one path: its publisher (if any), its viewers and the two media slots. Guarded by
// SFU.mu except for the slots' atomics.
type stream struct {
	path          string
	slots         [2]*slot // audio, video
	pub           *session
	viewers       map[*session]struct{}
	unpublishedAt time.Time // when the publisher left, or the pull lost its origin
	pull          *pull     // the pull that feeds the slots instead of a local publisher; nil: none
}

// live reports whether viewers can join: a local publisher, or a pull that has delivered the
// stream at least once. Callers hold SFU.mu.
func (st *stream) live() bool { return st.pub != nil || (st.pull != nil && st.pull.delivered) }

// idle reports whether nothing holds the stream any more. Callers hold SFU.mu.
func (st *stream) idle() bool {
	return st.pub == nil && len(st.viewers) == 0 && (st.pull == nil || st.pull.holds == 0)
}

func kindIndex(k webrtc.RTPCodecType) int {
	if k == webrtc.RTPCodecTypeVideo {
		return 1
	}
	return 0
}

// session is one WHIP or WHEP PeerConnection.
type session struct {
	id        string
	kind      Kind
	path      string
	identity  string
	backend   string // the method that admitted it (Decision.Backend): identities are per method
	keyID     string // the stream key that admitted it, if any (never the secret)
	keyLabel  string
	pullNode  string // for a pull served to another node: that node's id (no engine recheck)
	remote    string
	req       authz.Request // with credentials, for Recheck; never logged
	credHash  [32]byte
	created   time.Time
	pc        *webrtc.PeerConnection
	lease     *lease      // its slot under the caps; released when it closes
	connected atomic.Bool // ICE and DTLS connected at least once

	// guarded by SFU.mu
	expires  time.Time
	stream   *stream
	attached bool
	ups      []*upTrack

	downs []*downTrack  // viewers; fixed before the answer is sent
	ready chan struct{} // closed once attached to its stream

	sig   sync.Mutex   // serialises PATCH (trickle, ICE restart)
	etag  string       // guarded by sig
	cands candidateSet // usable remote candidates named so far; guarded by sig

	mu        sync.Mutex
	closing   bool
	wg        sync.WaitGroup // the session's reader and writer goroutines
	closed    chan struct{}
	closeOnce sync.Once
}

// spawn runs f in a goroutine owned by the session, unless the session is closing.
func (sess *session) spawn(f func()) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closing {
		return
	}
	sess.wg.Add(1)
	go func() {
		defer sess.wg.Done()
		f()
	}()
}

// New builds an SFU: its own pion API (codecs, interceptors, settings; no globals) and the ICE
// sockets (UDP mux on cfg.UDPPort, and TCP on the same port number if cfg.TCP). auth decides
// every request; rec (nil: none) gets session events; log (nil: discard) gets one line per
// session start and end, never a credential. The caller must call Close.
func New(cfg Config, auth Authorizer, rec Recorder, log *slog.Logger) (*SFU, error) {
	if auth == nil {
		return nil, fmt.Errorf("%w: nil Authorizer", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if rec == nil {
		rec = nopRecorder{}
	}
	def := DefaultConfig()
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = def.GatherTimeout
	}
	if cfg.ViewerQueue <= 0 {
		cfg.ViewerQueue = def.ViewerQueue
	}
	// Caps: zero means the default, never unlimited; a negative value is a mistake.
	for _, c := range []struct {
		key string
		v   *int
		def int
	}{
		{"max_sessions", &cfg.MaxSessions, def.MaxSessions},
		{"max_sessions_per_client", &cfg.MaxSessionsPerClient, def.MaxSessionsPerClient},
		{"max_viewers_per_path", &cfg.MaxViewersPerPath, def.MaxViewersPerPath},
		{"max_candidates", &cfg.MaxCandidates, def.MaxCandidates},
	} {
		if *c.v < 0 {
			return nil, fmt.Errorf("%w: %s %d", ErrConfig, c.key, *c.v)
		}
		if *c.v == 0 {
			*c.v = c.def
		}
	}
	if cfg.ConnectTimeout < 0 {
		return nil, fmt.Errorf("%w: connect_timeout %v", ErrConfig, cfg.ConnectTimeout.Std())
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = def.ConnectTimeout
	}
	if cfg.Origins != nil && cfg.PullTokens == nil {
		return nil, fmt.Errorf("%w: an edge (Origins set) needs PullTokens to mint its pull tokens", ErrConfig)
	}
	if cfg.Edge.MaxHops < 0 || cfg.Edge.MaxHops > maxMaxHops {
		return nil, fmt.Errorf("%w: edge.max_hops %d", ErrConfig, cfg.Edge.MaxHops)
	}
	if cfg.Edge.MaxHops == 0 {
		cfg.Edge.MaxHops = DefaultMaxHops
	}
	if cfg.Edge.PullTimeout <= 0 {
		cfg.Edge.PullTimeout = conf.Duration(DefaultPullTimeout)
	}
	if msg := checkNodeID(cfg.Edge.NodeID); msg != "" {
		return nil, fmt.Errorf("%w: edge.node_id: %s", ErrConfig, msg)
	}
	if cfg.UDPPort < 0 || cfg.UDPPort > 65535 {
		return nil, fmt.Errorf("%w: udp_port %d", ErrConfig, cfg.UDPPort)
	}
	for _, is := range cfg.ICEServers {
		if msg := is.validate(); msg != "" {
			return nil, fmt.Errorf("%w: ice_servers: %s", ErrConfig, msg)
		}
	}
	s := &SFU{
		cfg:      cfg,
		auth:     auth,
		rec:      rec,
		log:      log,
		now:      cfg.Now,
		sessions: map[string]*session{},
		streams:  map[string]*stream{},
		retiring: map[*session]struct{}{},
		pulling:  map[*attempt]struct{}{},
		limits:   newLimiter(cfg.MaxSessions, cfg.MaxSessionsPerClient, cfg.MaxViewersPerPath),
		cands:    candidatePolicy{max: cfg.MaxCandidates, allowPrivate: cfg.AllowPrivateCandidates},
		pullCands: candidatePolicy{max: cfg.MaxCandidates, allowPrivate: cfg.AllowPrivateCandidates,
			internal: cfg.InternalIPs},
		nodeID: cfg.Edge.NodeID,
		// Pulls go to the fleet's own nodes: no proxy from the environment, no redirects
		// (a redirect would take the pull token elsewhere).
		httpc: &http.Client{
			Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		done: make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.nodeID == "" {
		s.nodeID = "node-" + randomID(6)
	}
	if err := s.buildAPI(); err != nil {
		s.closeSockets()
		return nil, err
	}
	return s, nil
}

// buildAPI builds the two pion APIs. They share codecs and settings (and so the ICE sockets)
// but not interceptors:
//
//   - publishers get NACK generation (we ask for lost packets; no responder: viewer NACKs are
//     answered from the shared cache, not from pion's per-stream copies), receiver and sender
//     reports, and TWCC feedback for the publisher's bandwidth estimation;
//   - viewers only get sender reports (browsers need them for A/V sync). Viewer connections
//     receive no media, and forwarded packets carry no transport-wide sequence numbers, so the
//     NACK generator, receiver reports and TWCC feedback would only add three ticker goroutines
//     per viewer connection, and transport-cc would be advertised for nothing.
func (s *SFU) buildAPI() error {
	pm, vm := &webrtc.MediaEngine{}, &webrtc.MediaEngine{}
	for _, m := range []*webrtc.MediaEngine{pm, vm} {
		if err := registerCodecs(m); err != nil {
			return fmt.Errorf("sfu: register codecs: %w", err)
		}
	}
	if err := registerSimulcast(pm); err != nil {
		return fmt.Errorf("sfu: register simulcast extensions: %w", err)
	}
	if err := vm.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.ABSSendTimeURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return fmt.Errorf("sfu: register abs-send-time: %w", err)
	}
	pir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return fmt.Errorf("sfu: nack generator: %w", err)
	}
	pir.Add(gen)
	if err := webrtc.ConfigureRTCPReports(pir); err != nil {
		return fmt.Errorf("sfu: rtcp reports: %w", err)
	}
	if err := webrtc.ConfigureTWCCSender(pm, pir); err != nil {
		return fmt.Errorf("sfu: twcc: %w", err)
	}
	vir := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return fmt.Errorf("sfu: sender reports: %w", err)
	}
	vir.Add(sr)

	lf := slogFactory{log: s.log}
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// With at most Config.MaxCandidates remote candidates per session, this bounds the checks a
	// session that never connects sends to MaxCandidates × local candidates × (this + 1).
	se.SetICEMaxBindingRequests(maxBindingRequests)
	se.SetIncludeLoopbackCandidate(s.cfg.IncludeLoopback)
	opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithLogger(lf.NewLogger("udpmux"))}
	if s.cfg.IncludeLoopback {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	mux, err := ice.NewMultiUDPMuxFromPort(s.cfg.UDPPort, opts...)
	if err != nil {
		return fmt.Errorf("sfu: listen udp port %d: %w", s.cfg.UDPPort, err)
	}
	s.udpMux = mux
	se.SetICEUDPMux(mux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.cfg.TCP {
		ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(s.cfg.UDPPort)))
		if err != nil {
			return fmt.Errorf("sfu: listen tcp port %d: %w", s.cfg.UDPPort, err)
		}
		s.tcpMux = webrtc.NewICETCPMux(lf.NewLogger("tcpmux"), ln, 8)
		se.SetICETCPMux(s.tcpMux)
		se.DisableActiveTCP(true)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if len(s.cfg.PublicIPs) > 0 {
		var v4, v6 []string
		for _, ip := range s.cfg.PublicIPs {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return fmt.Errorf("%w: public_ips: %q is not an IP address", ErrConfig, ip)
			}
			if a.Unmap().Is4() {
				v4 = append(v4, a.Unmap().String())
			} else {
				v6 = append(v6, a.String())
			}
		}
		var rules []webrtc.ICEAddressRewriteRule
		for _, ext := range [][]string{v4, v6} {
			if len(ext) > 0 {
				rules = append(rules, webrtc.ICEAddressRewriteRule{
					External:        ext,
					AsCandidateType: webrtc.ICECandidateTypeHost,
					Mode:            webrtc.ICEAddressRewriteReplace,
				})
			}
		}
		if err := se.SetICEAddressRewriteRules(rules...); err != nil {
			return fmt.Errorf("%w: public_ips: %v", ErrConfig, err)
		}
	}
	s.pubAPI = webrtc.NewAPI(webrtc.WithMediaEngine(pm), webrtc.WithInterceptorRegistry(pir), webrtc.WithSettingEngine(se))
	if err := s.buildPullAPI(se); err != nil {
		return err
	}
	s.viewAPI = webrtc.NewAPI(webrtc.WithMediaEngine(vm), webrtc.WithInterceptorRegistry(vir), webrtc.WithSettingEngine(se))
	return nil
}

func (s *SFU) closeSockets() {
	if s.udpMux != nil {
		_ = s.udpMux.Close()
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
	}
}

// Run closes sessions whose grant expired (unless Config.IgnoreExpiry), sessions that did not
// connect within Config.ConnectTimeout and viewers whose publisher did not come back within
// Config.ReconnectGrace, checking once a second. It returns
// when ctx is done or Close is called; it does not close sessions itself (Close does).
func (s *SFU) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return nil
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep does one round of Run's checks at s.now().
func (s *SFU) sweep() {
	now := s.now()
	type victim struct {
		sess   *session
		reason string
	}
	var victims []victim
	s.mu.Lock()
	for _, sess := range s.sessions {
		switch {
		case !s.cfg.IgnoreExpiry && !sess.expires.IsZero() && !now.Before(sess.expires):
			victims = append(victims, victim{sess, "grant expired"})
		case !sess.connected.Load() && now.Sub(sess.created) >= s.cfg.ConnectTimeout.Std():
			victims = append(victims, victim{sess, "did not connect in time"})
		}
	}
	var lingered []*pull
	for path, st := range s.streams {
		if st.pub == nil && (st.pull == nil || !st.pull.up) && now.Sub(st.unpublishedAt) >= s.cfg.ReconnectGrace.Std() {
			for v := range st.viewers {
				victims = append(victims, victim{v, "publisher gone"})
			}
		}
		if p := st.pull; p != nil && st.idle() && now.Sub(p.idleSince) >= s.cfg.Edge.Linger.Std() {
			st.pull = nil
			if st.pub == nil {
				delete(s.streams, path)
			}
			lingered = append(lingered, p)
		}
	}
	s.mu.Unlock()
	for _, v := range victims {
		s.closeSession(v.sess, v.reason)
	}
	for _, p := range lingered {
		p.close("no viewers")
	}
}

// Recheck re-authorises every session with the credentials it was created with (call it after
// a configuration reload). Sessions now really denied (see authz.Decision.Keep), or whose path
// (after a stream key's rename) would now be another, are closed; allowed ones take the new
// grant's expiry, and undecided ones (a backend could not decide) keep running with their
// previous expiry. It returns how many sessions it closed.
func (s *SFU) Recheck(ctx context.Context) int {
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	closed := 0
	for _, sess := range all {
		if sess.pullNode != "" {
			continue // a node's pull: authorised by its token, which was checked once (edge_serve.go)
		}
		req := sess.req
		req.Kind = authz.KindRecheck // a denial ends the session; it is not a guess
		d := s.auth.Authorize(ctx, &req)
		if ctx.Err() != nil {
			return closed // a cancelled recheck says nothing about the grants
		}
		if !d.Keep() {
			s.closeSession(sess, "revoked")
			closed++
			continue
		}
		if !d.Allowed() {
			continue // nothing could decide: keep the session and its previous expiry
		}
		target := sess.req.Path
		if d.Rename != "" {
			target = d.Rename
		}
		if cleanPath(target) != sess.path {
			s.closeSession(sess, "revoked")
			closed++
			continue
		}
		s.mu.Lock()
		sess.expires = d.Expires
		s.mu.Unlock()
	}
	return closed
}

// Sessions lists the live sessions, oldest first.
func (s *SFU) Sessions() []SessionInfo {
	s.mu.Lock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, sess := range s.sessions {
		out = append(out, SessionInfo{
			ID: sess.id, Kind: sess.kind, Path: sess.path, Identity: sess.identity,
			Remote: sess.remote, Created: sess.created, Expires: sess.expires,
		})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Kick closes the session with the given id, or returns ErrNotFound. It does no authorisation:
// the HTTP route DELETE /api/v1/sessions/{id} checks the api action first.
func (s *SFU) Kick(id string) error {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return ErrNotFound
	}
	s.closeSession(sess, "kicked")
	return nil
}

// Close closes every PeerConnection and the ICE sockets and waits for every goroutine the SFU
// started. It is idempotent; later calls wait for the first to finish.
func (s *SFU) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.shut = true
		all := make([]*session, 0, len(s.sessions))
		for _, sess := range s.sessions {
			all = append(all, sess)
		}
		s.mu.Unlock()
		close(s.done)
		var wg sync.WaitGroup
		for _, sess := range all {
			wg.Go(func() { s.closeSession(sess, "shutdown") })
		}
		wg.Wait()
		s.mu.Lock()
		var pulls []*pull
		for _, st := range s.streams {
			if st.pull != nil {
				pulls = append(pulls, st.pull)
				st.pull = nil
			}
		}
		s.mu.Unlock()
		for _, p := range pulls {
			p.close("shutdown")
		}
		s.wg.Wait()
		s.httpc.CloseIdleConnections()
		s.closeSockets()
	})
	return nil
}

// closeAsync closes sess from a pion callback, where closing synchronously could deadlock.
func (s *SFU) closeAsync(sess *session, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return // Close is closing everything
	}
	s.wg.Go(func() { s.closeSession(sess, reason) })
}

// closeSession detaches sess from its stream, closes its PeerConnection, waits for its
// goroutines and reports the end. Idempotent.
func (s *SFU) closeSession(sess *session, reason string) {
	sess.closeOnce.Do(func() {
		s.mu.Lock()
		attached := sess.attached
		counted := s.sessions[sess.id] == sess // its packets are in Stats' sums
		if counted {
			delete(s.sessions, sess.id)
			s.retiring[sess] = struct{}{}
		}
		if st := sess.stream; st != nil {
			if sess.kind == KindPublish {
				if st.pub == sess {
					st.pub = nil
					st.unpublishedAt = s.now()
				}
				for _, u := range sess.ups {
					u.slot.drop(u)
				}
			} else {
				delete(st.viewers, sess)
				for _, d := range sess.downs {
					removeDown(d.slot, d)
				}
			}
			if st.pull != nil && st.idle() {
				st.pull.idleSince = s.now() // Run closes it after Edge.Linger
			}
			if st.pull == nil && st.idle() && s.streams[st.path] == st {
				delete(s.streams, st.path)
			}
		}
		s.mu.Unlock()

		sess.mu.Lock()
		sess.closing = true
		sess.mu.Unlock()
		for _, d := range sess.downs {
			d.stop()
		}
		close(sess.closed)
		_ = sess.pc.Close()
		sess.wg.Wait()
		if counted { // its goroutines are done: its counts are final
			s.mu.Lock()
			delete(s.retiring, sess)
			s.retired.add(sess)
			s.mu.Unlock()
		}
		sess.lease.release()
		if !attached {
			return
		}
		ev := live.Unpublished
		if sess.kind == KindRead {
			ev = live.Left
		}
		s.record(sess, ev)
		s.log.Info("sfu session closed", "session", sess.id, "kind", string(sess.kind), "path", sess.path, "reason", reason)
	})
}

func (s *SFU) record(sess *session, t live.EventType) {
	s.rec.Record(live.Event{
		Type: t, Path: sess.path, Source: "sfu", Session: sess.id, Identity: sess.identity,
		KeyID: sess.keyID, KeyLabel: sess.keyLabel,
		Protocol: "webrtc", Remote: sess.remote, Time: s.now(),
	})
}

// addDown and removeDown replace a slot's viewer list (copy on write); callers hold SFU.mu.
func addDown(sl *slot, d *downTrack) {
	next := append(slices.Clone(sl.viewers()), d)
	sl.downs.Store(&next)
}

func removeDown(sl *slot, d *downTrack) {
	next := slices.DeleteFunc(slices.Clone(sl.viewers()), func(x *downTrack) bool { return x == d })
	sl.downs.Store(&next)
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

type nopRecorder struct{}

func (nopRecorder) Record(live.Event) {}

// slogFactory routes pion's logs to slog (pion's trace, debug and info become Debug, and so do
// warnings that only report a socket closed under a reader, which pion logs once per candidate
// whenever a session ends, and every warning of a scope that belongs to one PeerConnection:
// peerScope). Errors stay errors.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLeveled{log: f.log.With("pion", scope), peer: peerScope(scope)}
}

type slogLeveled struct {
	log  *slog.Logger
	peer bool // a per-PeerConnection scope: its warnings are Debug
}

func (l slogLeveled) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return // a downgraded message would not be enabled either
	}
	msg := fmt.Sprintf(format, args...)
	if level == slog.LevelWarn && (l.peer || expectedAtClose(msg)) {
		level = slog.LevelDebug
	}
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, msg)
	}
}

// expectedAtClose reports whether a pion warning only carries the error a reader gets when its
// pipe or socket is closed under it (io.ErrClosedPipe, net.ErrClosed): expected whenever a
// session ends.
func expectedAtClose(msg string) bool {
	return strings.Contains(msg, io.ErrClosedPipe.Error()) || strings.Contains(msg, net.ErrClosed.Error())
}

func (l slogLeveled) Trace(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l slogLeveled) Tracef(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l slogLeveled) Debug(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l slogLeveled) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l slogLeveled) Info(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l slogLeveled) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l slogLeveled) Warn(msg string)                   { l.logf(slog.LevelWarn, "%s", msg) }
func (l slogLeveled) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args...) }
func (l slogLeveled) Error(msg string)                  { l.logf(slog.LevelError, "%s", msg) }
func (l slogLeveled) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
