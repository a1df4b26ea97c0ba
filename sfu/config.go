package sfu

import (
	"net/netip"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/clientip"
	"gatehouse/authz/conf"
)

// Defaults used by DefaultConfig and, for zero durations and sizes, by New.
const (
	DefaultUDPPort        = 8189
	DefaultGatherTimeout  = 3 * time.Second // OBS gives up on the whole POST after 8 s
	DefaultReconnectGrace = 30 * time.Second
	DefaultViewerQueue    = 256
	DefaultMaxBody        = 64 << 10
	// DefaultMaxSessions, DefaultMaxSessionsPerClient and DefaultMaxViewersPerPath cap the
	// sessions (publishers and viewers, connected or still negotiating) the SFU holds.
	DefaultMaxSessions          = 1000
	DefaultMaxSessionsPerClient = 20
	DefaultMaxViewersPerPath    = 500
	// DefaultConnectTimeout is how long a session may take to connect (ICE and DTLS) after
	// its answer before it is closed and its slot freed.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxCandidates is how many remote ICE candidates (offer and trickle together) one
	// session may name; a browser names a handful.
	DefaultMaxCandidates = 20
	// KeyframeInterval is the minimum time between two keyframe requests (PLI) sent to one
	// publisher track, however many viewers join or ask.
	KeyframeInterval = 500 * time.Millisecond
)

// Config configures an SFU. Build it with DefaultConfig (or decode it from YAML, which starts
// from the defaults) and change what you need: New uses the fields as given, except that zero
// durations and sizes other than ReconnectGrace fall back to their defaults.
type Config struct {
	// UDPPort is the one UDP port all ICE traffic uses (one socket per local address, via an
	// ICE UDP mux). Default 8189; 0 picks an ephemeral port per address (tests).
	UDPPort int `yaml:"udp_port"`
	// TCP also accepts ICE over TCP (passive, RFC 6544) on the same port number.
	TCP bool `yaml:"tcp"`
	// PublicIPs are the addresses to announce instead of the local host addresses (1:1 NAT,
	// e.g. a cloud VM's public IP). Empty: announce local addresses.
	PublicIPs []string `yaml:"public_ips"`
	// IncludeLoopback also gathers 127.0.0.1/::1 candidates (tests, local demos). Default false.
	IncludeLoopback bool `yaml:"include_loopback"`
	// ICEServers are STUN/TURN servers offered to clients in Link headers (RFC 9725 §4.6).
	ICEServers []ICEServer `yaml:"ice_servers"`
	// AllowedOrigins lists the browser origins allowed by CORS; "*" (the default) allows any.
	// Auth is a bearer header, never a cookie, so "*" is safe.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// ReplacePublisher lets a new authorised publisher kick the current one off a path instead
	// of getting 409 Conflict. Default false: only the current publisher's owner (the same
	// identity, or the same stream key; never an anonymous one) replaces it, e.g. OBS
	// reconnecting before its crashed session times out.
	ReplacePublisher bool `yaml:"replace_publisher"`
	// IgnoreExpiry keeps sessions running after their grant's Expires passes. Default false:
	// Run closes a session when its grant expires (checked once a second), so a hand-built
	// Config{} enforces expiry too. In YAML it is enforce_expiry: false.
	IgnoreExpiry bool `yaml:"-"`
	// GatherTimeout bounds the wait for ICE gathering before answering. Default 3s.
	GatherTimeout conf.Duration `yaml:"gather_timeout" conf:"nonzero"`
	// ReconnectGrace is how long viewers stay connected after their publisher left, waiting for
	// it to come back. DefaultConfig and YAML: 30s; 0 (a hand-built Config, or 0s written in
	// the file): viewers are closed at the next check after their publisher left.
	ReconnectGrace conf.Duration `yaml:"reconnect_grace"`
	// ViewerQueue is the per-viewer, per-track packet queue length. A viewer whose queue is full
	// loses packets and restarts at the next keyframe. Default 256.
	ViewerQueue int `yaml:"viewer_queue" conf:"nonzero"`
	// MaxSessions caps the sessions of the whole SFU, counted from the moment an offer is
	// admitted (before any PeerConnection exists); an offer over it gets 503 with Retry-After.
	// Default 1000 (in Go, 0 means the default, never unlimited; in YAML a written 0 is refused).
	MaxSessions int `yaml:"max_sessions" conf:"nonzero"`
	// MaxSessionsPerClient caps the sessions of one client address (an IPv4 address or an
	// IPv6 /64, as the SFU determines the client address); over it, 429 with Retry-After.
	// Default 20.
	MaxSessionsPerClient int `yaml:"max_sessions_per_client" conf:"nonzero"`
	// MaxViewersPerPath caps the viewers of one stream path; over it, 503 with Retry-After.
	// Default 500.
	MaxViewersPerPath int `yaml:"max_viewers_per_path" conf:"nonzero"`
	// ConnectTimeout closes a session that has not connected (ICE and DTLS) this long after it
	// was created, freeing its slot (checked by Run once a second). Default 10s.
	ConnectTimeout conf.Duration `yaml:"connect_timeout" conf:"nonzero"`
	// MaxCandidates caps the distinct remote ICE candidates one session may name, in its offer
	// and trickled PATCHes together (the SFU sends connectivity checks to each); over it, 400.
	// Default 20.
	MaxCandidates int `yaml:"max_candidates" conf:"nonzero"`
	// AllowPrivateCandidates lets clients name loopback, private (RFC 1918, RFC 4193, RFC
	// 6598) and link-local ICE candidates. Default false: such candidates are dropped, so a
	// client cannot aim the SFU's connectivity checks at its internal networks. Turn it on when
	// clients share a LAN with the SFU. mDNS (.local) and hostname candidates are always dropped,
	// multicast and unspecified ones too.
	AllowPrivateCandidates bool `yaml:"allow_private_candidates"`
	// Pages serves the player (/watch/...) and publish (/publish/...) pages from Handler.
	// Default true.
	Pages bool `yaml:"pages"`
	// InternalIPs lists the networks (addresses or CIDRs) of the fleet's nodes. ICE candidates
	// in them are allowed for node-to-node pulls only (an edge's offer to this node, and this
	// node's pulls from an origin), even when AllowPrivateCandidates is off; viewers and
	// publishers still may not name them. Default: none.
	InternalIPs clientip.Proxies `yaml:"internal_ips"`
	// Edge configures pulling streams from other nodes (see EdgeConfig).
	Edge EdgeConfig `yaml:"edge"`

	// Origins finds the node that publishes a path; non-nil makes this SFU an edge: a viewer
	// of a path with no local publisher is served by pulling the stream from that node. cmd
	// sets it from Edge.Origin (StaticOrigin) or a fleet registry. Nil: no pulls.
	Origins Origins `yaml:"-"`
	// PullTokens mints the tokens this node presents when it pulls and verifies those other
	// nodes present to it (*tokens.Issuer, through cmd). Nil: this node neither pulls nor
	// serves pulls (a pull request is refused with 403).
	PullTokens PullTokens `yaml:"-"`

	// Now is the clock used for grant expiry and the reconnect grace (nil: time.Now).
	Now func() time.Time `yaml:"-"`
}

// ICEServer is one STUN or TURN server for clients. Each URL becomes one Link header.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential"`
}

// DefaultConfig returns the defaults: UDP port 8189, no TCP, no loopback, expiry enforced,
// any origin, one publisher per path, pages on.
func DefaultConfig() Config {
	return Config{
		UDPPort:        DefaultUDPPort,
		AllowedOrigins: []string{"*"},
		GatherTimeout:  conf.Duration(DefaultGatherTimeout),
		ReconnectGrace: conf.Duration(DefaultReconnectGrace),
		ViewerQueue:    DefaultViewerQueue,
		Pages:          true,

		MaxSessions:          DefaultMaxSessions,
		MaxSessionsPerClient: DefaultMaxSessionsPerClient,
		MaxViewersPerPath:    DefaultMaxViewersPerPath,
		ConnectTimeout:       conf.Duration(DefaultConnectTimeout),
		MaxCandidates:        DefaultMaxCandidates,

		Edge: DefaultEdgeConfig(),
	}
}

// UnmarshalYAML decodes the sfu section strictly, starting from DefaultConfig, and reports every
// invalid value with its line.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type raw struct {
		UDPPort          *int           `yaml:"udp_port"`
		TCP              bool           `yaml:"tcp"`
		PublicIPs        []string       `yaml:"public_ips"`
		IncludeLoopback  bool           `yaml:"include_loopback"`
		ICEServers       []ICEServer    `yaml:"ice_servers"`
		TrustedProxies   yaml.Node      `yaml:"trusted_proxies"` // moved: refused with a pointer
		AllowedOrigins   []string       `yaml:"allowed_origins"`
		ReplacePublisher bool           `yaml:"replace_publisher"`
		EnforceExpiry    *bool          `yaml:"enforce_expiry"`
		GatherTimeout    conf.Duration  `yaml:"gather_timeout" conf:"nonzero"`
		ReconnectGrace   *conf.Duration `yaml:"reconnect_grace"`
		ViewerQueue      int            `yaml:"viewer_queue" conf:"nonzero"`
		Pages            *bool          `yaml:"pages"`

		MaxSessions          int           `yaml:"max_sessions" conf:"nonzero"`
		MaxSessionsPerClient int           `yaml:"max_sessions_per_client" conf:"nonzero"`
		MaxViewersPerPath    int           `yaml:"max_viewers_per_path" conf:"nonzero"`
		ConnectTimeout       conf.Duration `yaml:"connect_timeout" conf:"nonzero"`

		MaxCandidates          int  `yaml:"max_candidates" conf:"nonzero"`
		AllowPrivateCandidates bool `yaml:"allow_private_candidates"`

		InternalIPs clientip.Proxies `yaml:"internal_ips"`
		Edge        *EdgeConfig      `yaml:"edge"`
	}
	var r raw
	if err := conf.Strict(n, &r); err != nil {
		return err
	}
	out := DefaultConfig()
	var errs []error
	if r.UDPPort != nil {
		if *r.UDPPort < 0 || *r.UDPPort > 65535 {
			errs = append(errs, conf.Errorf(conf.Value(n, "udp_port"), "udp_port %d out of range 0-65535", *r.UDPPort))
		}
		out.UDPPort = *r.UDPPort
	}
	out.TCP = r.TCP
	for i, s := range r.PublicIPs {
		if _, err := netip.ParseAddr(s); err != nil {
			errs = append(errs, conf.Errorf(conf.Item(n, "public_ips", i), "public_ips: %q is not an IP address", s))
		}
	}
	out.PublicIPs = r.PublicIPs
	out.IncludeLoopback = r.IncludeLoopback
	for i, s := range r.ICEServers {
		if err := s.validate(); err != "" {
			errs = append(errs, conf.Errorf(conf.Item(n, "ice_servers", i), "ice_servers: %s", err))
		}
	}
	out.ICEServers = r.ICEServers
	if tp := r.TrustedProxies; tp.Kind != 0 && tp.Tag != "!!null" && (tp.Kind != yaml.SequenceNode || len(tp.Content) > 0) {
		// One client-address policy per listener: a key here that silently widened to pprof
		// and the API (or only half applied) would be two. An empty list changes nothing.
		errs = append(errs, conf.Errorf(conf.Value(n, "trusted_proxies"), "sfu.trusted_proxies moved to the top-level trusted_proxies, "+
			"which sets the client address for the whole public listener (WHIP/WHEP, sessions, API, pprof): move the list there"))
	}
	if r.AllowedOrigins != nil {
		out.AllowedOrigins = r.AllowedOrigins
	}
	out.ReplacePublisher = r.ReplacePublisher
	if r.EnforceExpiry != nil {
		out.IgnoreExpiry = !*r.EnforceExpiry
	}
	if r.GatherTimeout != 0 {
		out.GatherTimeout = r.GatherTimeout
	}
	if r.ReconnectGrace != nil { // a written 0s is kept: viewers leave with their publisher
		out.ReconnectGrace = *r.ReconnectGrace
	}
	if r.ViewerQueue < 0 || r.ViewerQueue > 65536 {
		errs = append(errs, conf.Errorf(conf.Value(n, "viewer_queue"), "viewer_queue %d out of range 1-65536", r.ViewerQueue))
	} else if r.ViewerQueue != 0 {
		out.ViewerQueue = r.ViewerQueue
	}
	if r.Pages != nil {
		out.Pages = *r.Pages
	}
	for _, c := range []struct {
		key string
		v   int
		dst *int
	}{
		{"max_sessions", r.MaxSessions, &out.MaxSessions},
		{"max_sessions_per_client", r.MaxSessionsPerClient, &out.MaxSessionsPerClient},
		{"max_viewers_per_path", r.MaxViewersPerPath, &out.MaxViewersPerPath},
		{"max_candidates", r.MaxCandidates, &out.MaxCandidates},
	} {
		switch {
		case c.v < 0:
			errs = append(errs, conf.Errorf(conf.Value(n, c.key), "%s %d must be positive (leave the key out for the default)", c.key, c.v))
		case c.v > 0:
			*c.dst = c.v
		}
	}
	out.AllowPrivateCandidates = r.AllowPrivateCandidates
	out.InternalIPs = r.InternalIPs
	if r.Edge != nil {
		out.Edge = *r.Edge
	}
	if r.ConnectTimeout > 0 { // conf.Duration refuses negative values with their line
		out.ConnectTimeout = r.ConnectTimeout
	}
	if err := conf.Join(errs...); err != nil {
		return err
	}
	*c = out
	return nil
}

// validate returns a problem description, or "". Link header values are split on commas by
// OBS and quoted by us, so commas, quotes and line breaks are refused.
func (s ICEServer) validate() string {
	if len(s.URLs) == 0 {
		return "a server needs at least one url"
	}
	for _, u := range s.URLs {
		scheme, _, _ := strings.Cut(u, ":")
		switch scheme {
		case "stun", "stuns", "turn", "turns":
		default:
			return "url must start with stun:, stuns:, turn: or turns:"
		}
		if strings.ContainsAny(u, ",;<>\"\r\n ") {
			return "url must not contain , ; < > quotes or spaces"
		}
	}
	if strings.ContainsAny(s.Username+s.Credential, ",\"\r\n") {
		return "username and credential must not contain commas, quotes or line breaks (OBS splits Link headers on commas)"
	}
	return ""
}
