package authz

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Reasons of the fleet-wide publish lease (WithPathLeases).
const (
	// ReasonPathBusy: another node of the fleet holds the path's publish lease (a publisher is
	// live there). HTTP 409.
	ReasonPathBusy = "path_busy"
	// ReasonStateUnavailable: the shared state (Redis) that a decision needs could not be
	// reached; the request is refused (fail closed) and Undecided. HTTP 503.
	ReasonStateUnavailable = "state_unavailable"
)

// ErrPathBusy is wrapped by a PathLeases whose path is held by another node.
var ErrPathBusy = errors.New("authz: path is published on another node")

// PathLeases gives this node the right to publish a path across a fleet of replicas: one
// publisher per path. Claim takes (or keeps) the lease of path for this node; it returns an
// error wrapping ErrPathBusy when another live node holds it, and any other error when it could
// not find out (the state is unreachable). It must honour ctx and never contain a credential in
// its error.
type PathLeases interface {
	Claim(ctx context.Context, path string) error
}

// WithPathLeases makes the engine claim the path's lease after it allowed a new publish
// (KindAccess, ActionPublish): a lease held by another node refuses it (ReasonPathBusy), a lease
// that could not be claimed refuses it too (ReasonStateUnavailable, fail closed). Re-checks of
// running sessions never claim, so they continue while the state is away. Without it (the
// default, one process) no lease is taken.
func WithPathLeases(l PathLeases) EngineOption { return func(e *Engine) { e.leases = l } }

// DefaultLeaseTimeout bounds one Claim.
const DefaultLeaseTimeout = time.Second

// claim applies the publish lease to an allowed publish (see WithPathLeases).
func (e *Engine) claim(ctx context.Context, req *Request, d Decision) Decision {
	if e.leases == nil || req.Action != ActionPublish || req.Kind != KindAccess || !d.Allowed() {
		return d
	}
	path := strings.Trim(req.Path, "/")
	if d.Rename != "" {
		path = strings.Trim(d.Rename, "/")
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultLeaseTimeout)
	defer cancel()
	switch err := e.leases.Claim(ctx, path); {
	case err == nil:
		return d
	case errors.Is(err, ErrPathBusy):
		return refuse(d, Forbidden, ReasonPathBusy, "this stream is already published on another node")
	default:
		d = refuse(d, Forbidden, ReasonStateUnavailable, "shared state unavailable; try again shortly")
		d.Undecided = true
		return d
	}
}

// banGenerations is implemented by a BanStore that learns operator bans from elsewhere (the
// other replicas): its Generation advances for each, as Ban advances the engine's.
type banGenerations interface {
	Generation() uint64
}
