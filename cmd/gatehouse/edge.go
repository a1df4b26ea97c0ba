package main

import (
	"time"

	"gatehouse/authz/state/redisstate"
	"gatehouse/authz/tokens"
	"gatehouse/sfu"
)

// SFU edges: every node serves pulls presented with a pull token of the fleet's key (the running
// issuer, so `gatehouse rotate-key` and a reload apply), and a node with sfu.edge.origin pulls
// the paths nobody publishes locally from that node. A fleet shares data_dir/keys (copy the
// directory to every node): one key signs and verifies every node's pull tokens.

// IssuePull mints a pull token with the running issuer.
func (r runningIssuer) IssuePull(c tokens.PullClaims, ttl time.Duration) (string, error) {
	return r.s.issuer.Load().IssuePull(c, ttl)
}

// VerifyPull checks a pull token against the running issuer's published keys.
func (r runningIssuer) VerifyPull(token string) (tokens.PullClaims, error) {
	return r.s.issuer.Load().VerifyPull(token)
}

// sfuConfig is the sfu section with the edge's dependencies: pull tokens from the running
// issuer and, with sfu.edge.origin, that node as the origin of every path; without it but with
// state.backend redis, the node that holds a path's publish lease (whose state.node_url must be
// set) is its origin.
func (s *server) sfuConfig(c sfu.Config) sfu.Config {
	c.PullTokens = runningIssuer{s}
	var fleet *redisstate.Fleet
	if s.state != nil {
		fleet = s.state.fleet
	}
	if fleet != nil && c.Edge.NodeID == "" {
		c.Edge.NodeID = fleet.Self().ID // one name per node, in pulls and in the fleet
	}
	switch {
	case c.Edge.Origin != "":
		c.Origins = sfu.StaticOrigin{NodeID: c.Edge.OriginNode, BaseURL: c.Edge.Origin}
	case fleet != nil:
		// With Redis, the origin of a path is the node holding its publish lease.
		c.Origins = fleetOrigins{fleet: fleet, none: sfu.ErrNoOrigin}
	}
	return c
}
