package sfu

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
	"gatehouse/authz/tokens"
)

// SFU edges. A viewer who asks this node for a path that nobody publishes here is served by
// pulling the stream from the node that does (its origin) over WHEP: one pull per path, shared
// by all of this node's viewers of it, started by the first and closed Edge.Linger after the
// last left (edge_pull.go). The pull presents a short-lived token minted by this node for that
// path only (PullTokens); the viewers' own credentials never leave this node. The pulled tracks
// take the place of a local publisher's, so viewers get everything local viewers get: a shared
// packet cache for their NACKs, throttled keyframe requests (one PLI upstream per
// KeyframeInterval), their own SSRCs and a sequence and timestamp space that continues across
// upstream reconnects.
//
// Topology is a tree: each pull carries its hop count and the chain of nodes that asked for it;
// a node refuses (508 Loop Detected) a pull that would exceed Edge.MaxHops, that names itself in
// the chain, or that comes from the node it pulls the same path from.

// Edge defaults.
const (
	DefaultEdgeLinger  = 10 * time.Second
	DefaultMaxHops     = 3
	DefaultPullTimeout = 10 * time.Second
	maxMaxHops         = 16
	pullTokenTTL       = 30 * time.Second
	headerNode         = "Gatehouse-Node" // the requesting node's id on a pull; the answering node's id on the reply
	pullBackoffMin     = 250 * time.Millisecond
	pullBackoffMax     = 5 * time.Second
	maxPullAnswer      = 64 << 10
	identityPullPrefix = "node:"
	statusLoopDetected = 508 // RFC 5842
	pullDeleteTimeout  = 2 * time.Second
)

// ErrNoOrigin is returned (wrapped) by an Origins when no node publishes the path: the viewer
// gets 409 Conflict with Retry-After, as for a path not live on a single node.
var ErrNoOrigin = errors.New("sfu: no node publishes the path")

// Origins finds the node that publishes a path: its node id and the base URL of its WHEP API
// (the URL that /whep/<path> is appended to). It returns an error wrapping ErrNoOrigin when
// nobody publishes it, and another error when it cannot tell (the viewer gets 502).
type Origins interface {
	Origin(ctx context.Context, path string) (nodeID, baseURL string, err error)
}

// PullTokens mints the tokens a node presents to pull a path from another node and verifies
// those presented to it. *tokens.Issuer implements it: every node of a fleet shares the signing
// key directory (data_dir/keys), so a token minted on one verifies on all.
type PullTokens interface {
	IssuePull(c tokens.PullClaims, ttl time.Duration) (string, error)
	VerifyPull(token string) (tokens.PullClaims, error)
}

// StaticOrigin is an Origins for fleets without a registry: every path is pulled from one node.
type StaticOrigin struct {
	NodeID  string // the origin's node id, if known ("" : learnt from its replies)
	BaseURL string
}

// Origin implements Origins.
func (o StaticOrigin) Origin(context.Context, string) (string, string, error) {
	return o.NodeID, o.BaseURL, nil
}

// EdgeConfig is the sfu.edge section.
type EdgeConfig struct {
	// Origin is the base URL of the node every path is pulled from (a fleet without a
	// registry), e.g. http://origin:8089; /whep/<path> is appended. Empty: no static origin.
	Origin string `yaml:"origin"`
	// OriginNode is the origin's node id, when known: it lets this node refuse at once a pull
	// from the node it pulls from. Optional (the origin names itself in its replies).
	OriginNode string `yaml:"origin_node"`
	// NodeID names this node in the pulls it makes and serves. Default: a random id per process.
	NodeID string `yaml:"node_id"`
	// Linger is how long a pull stays open after its last viewer left (a viewer that comes back
	// meanwhile joins it at once). Default 10s; 0 closes it at the next check (once a second).
	Linger conf.Duration `yaml:"linger"`
	// MaxHops is the longest chain of pulls between a viewer and the origin; a pull request
	// beyond it is refused with 508. Default 3.
	MaxHops int `yaml:"max_hops" conf:"nonzero"`
	// PullTimeout bounds how long a viewer waits for a new pull to deliver the stream. Default 10s.
	PullTimeout conf.Duration `yaml:"pull_timeout" conf:"nonzero"`
}

// DefaultEdgeConfig returns the edge defaults (no static origin).
func DefaultEdgeConfig() EdgeConfig {
	return EdgeConfig{
		Linger:      conf.Duration(DefaultEdgeLinger),
		MaxHops:     DefaultMaxHops,
		PullTimeout: conf.Duration(DefaultPullTimeout),
	}
}

// UnmarshalYAML decodes sfu.edge strictly from the defaults, every bad value with its line.
func (e *EdgeConfig) UnmarshalYAML(n *yaml.Node) error {
	type raw struct {
		Origin      string         `yaml:"origin"`
		OriginNode  string         `yaml:"origin_node"`
		NodeID      string         `yaml:"node_id"`
		Linger      *conf.Duration `yaml:"linger"`
		MaxHops     int            `yaml:"max_hops" conf:"nonzero"`
		PullTimeout conf.Duration  `yaml:"pull_timeout" conf:"nonzero"`
	}
	var r raw
	if err := conf.Strict(n, &r); err != nil {
		return err
	}
	out := DefaultEdgeConfig()
	var errs []error
	if r.Origin != "" {
		if msg := checkOriginURL(r.Origin); msg != "" {
			errs = append(errs, conf.Errorf(conf.Value(n, "origin"), "edge.origin: %s", msg))
		}
	}
	out.Origin = strings.TrimRight(r.Origin, "/")
	for _, k := range []struct{ key, v string }{{"origin_node", r.OriginNode}, {"node_id", r.NodeID}} {
		if msg := checkNodeID(k.v); msg != "" {
			errs = append(errs, conf.Errorf(conf.Value(n, k.key), "edge.%s: %s", k.key, msg))
		}
	}
	out.OriginNode, out.NodeID = r.OriginNode, r.NodeID
	if r.Linger != nil {
		out.Linger = *r.Linger
	}
	switch {
	case r.MaxHops < 0 || r.MaxHops > maxMaxHops:
		errs = append(errs, conf.Errorf(conf.Value(n, "max_hops"), "edge.max_hops %d out of range 1-%d", r.MaxHops, maxMaxHops))
	case r.MaxHops > 0:
		out.MaxHops = r.MaxHops
	}
	if r.PullTimeout > 0 {
		out.PullTimeout = r.PullTimeout
	}
	if err := conf.Join(errs...); err != nil {
		return err
	}
	*e = out
	return nil
}

// checkOriginURL returns what is wrong with an origin base URL, or "".
func checkOriginURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "want an http:// or https:// URL, such as http://origin:8089"
	case u.Host == "":
		return "the URL needs a host"
	case u.User != nil:
		return "the URL must not carry a user or password (pulls authenticate with minted tokens)"
	case u.RawQuery != "" || u.Fragment != "":
		return "the URL must not have a query or fragment"
	}
	return ""
}

// checkNodeID returns what is wrong with a node id, or "" (empty is allowed: the default).
func checkNodeID(s string) string {
	if len(s) > 64 {
		return "at most 64 characters"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return "only letters, digits and - _ . : are allowed"
		}
	}
	return ""
}
