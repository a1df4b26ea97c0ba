package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz"
	"gatehouse/authz/live"
	"gatehouse/authz/revoke"
	"gatehouse/authz/state"
	"gatehouse/authz/state/redisstate"
	"gatehouse/backends/keys"
	"gatehouse/backends/keys/redisstore"
	"gatehouse/backends/keys/sqlitestore"
)

// keyStore is what serve and `gatehouse keys` need of a managed key store: the backend's
// lookups, the API's administration, revocation delivery and a lifetime. *sqlitestore.Store and
// *redisstore.Store implement it.
type keyStore interface {
	keys.Store
	keys.Admin
	Subscribe(fn func(keys.Revocation)) (cancel func())
	Run(ctx context.Context, report func(error))
	Close() error
}

// stateLayer is the state section made real: the key store and, with backend redis, the client
// and its Health. Close releases what it opened.
type stateLayer struct {
	keys   keyStore              // nil: the store could not be opened (SQLite only; logged)
	sqlite *sqlitestore.Store    // the same store when it is SQLite (backup, read-only check)
	rdb    redis.UniversalClient // nil with backend memory
	health *redisstate.Health    // nil with backend memory
	shared *redisstate.Shared    // bans and failure counters shared by the replicas; nil with backend memory
	// fleet is this node's membership (node record, publish leases, kick announcements); nil
	// with backend memory. Its local sessions are read through local, set by serve once the
	// revoker exists (before fleet.Run starts).
	fleet *redisstate.Fleet
	local atomic.Pointer[func() []live.Session]
}

// engineOptions returns the engine's ban store and counter: the in-process defaults (none), or
// the shared ones.
func (l *stateLayer) engineOptions() []authz.EngineOption {
	if l == nil || l.shared == nil {
		return nil
	}
	return []authz.EngineOption{authz.WithBanStore(l.shared), authz.WithCounter(l.shared), authz.WithPathLeases(l.fleet)}
}

// openState opens the state layer's key store: SQLite in data_dir (backend memory), or Redis.
// The fleet logs to log. With Redis, an unreachable server is no error (requests fail closed until it answers); a
// password file that cannot be read is.
func openState(ctx context.Context, cfg *Config, log *slog.Logger) (*stateLayer, error) {
	if !cfg.State.Shared() {
		st, err := sqlitestore.Open(ctx, filepath.Join(cfg.DataDir, sqlitestore.FileName))
		if err != nil {
			return &stateLayer{}, err
		}
		return &stateLayer{keys: st, sqlite: st}, nil
	}
	rc := cfg.State.Redis
	rdb, err := redisstate.Open(rc)
	if err != nil {
		return nil, err
	}
	h := redisstate.NewHealth(rc.Sync(), nil)
	h.OnDown(func(err error) {
		log.Error("state store unavailable: new sessions that need it are refused", "error", err.Error())
	})
	h.OnUp(func() { log.Info("state store answers again") })
	l := &stateLayer{keys: redisstore.New(ctx, rdb, rc.Prefix(), redisstore.WithHealth(h)), rdb: rdb, health: h,
		shared: redisstate.NewShared(rdb, rc.Prefix(), rc.Sync(), h, 0, 0)}
	id := cfg.State.NodeID
	if id == "" {
		id = state.NewNodeID()
	}
	l.fleet = redisstate.NewFleet(ctx, rdb, rc.Prefix(), state.Node{ID: id, URL: cfg.State.NodeURL, Version: version()},
		redisstate.SessionsFunc(func() []live.Session {
			if fn := l.local.Load(); fn != nil {
				return (*fn)()
			}
			return nil
		}), h, redisstate.WithFleetLogger(log.With("component", "fleet")))
	return l, nil
}

// fleetBroadcaster announces kicks to the other nodes through the fleet (revoke.Broadcaster).
type fleetBroadcaster struct{ fleet *redisstate.Fleet }

func (b fleetBroadcaster) Broadcast(ctx context.Context, o revoke.Order) error {
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return b.fleet.Announce(ctx, raw)
}

// endedMsg is the announcement of a session's end that reached a replica that does not hold
// it (a done hook behind a load balancer): the holder ends it in its registry, which releases
// the path's lease.
type endedMsg struct {
	Source  string `json:"source"`
	Session string `json:"session"`
	Publish bool   `json:"publish,omitempty"`
}

// fleetRecorder is the registry as the hook adapters see it with a fleet: the end of a session
// this node never admitted is announced to the other nodes (nginxrtmp.ElsewhereRecorder).
type fleetRecorder struct {
	*live.Registry
	fleet *redisstate.Fleet
	log   *slog.Logger
}

// EndedElsewhere announces the end of a session another node holds (bounded by one second; a
// failure leaves it to that node's expiry).
func (r fleetRecorder) EndedElsewhere(source, session string, publish bool) {
	raw, err := json.Marshal(struct {
		Ended endedMsg `json:"ended"`
	}{endedMsg{Source: source, Session: session, Publish: publish}})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.fleet.Announce(ctx, raw); err != nil {
		r.log.Warn("fleet: could not announce the end of a session held by another node; it ends there when it expires",
			"source", source, "session", session, "error", err.Error())
	}
}

// endedHere ends, in reg, the session another node announced the end of, if this node holds it.
// It reports whether body was such an announcement.
func endedHere(body []byte, find func(source, id string) (live.Session, error), reg *live.Registry) bool {
	var env struct {
		Ended *endedMsg `json:"ended"`
	}
	if json.Unmarshal(body, &env) != nil || env.Ended == nil {
		return false
	}
	s, err := find(env.Ended.Source, env.Ended.Session)
	if err != nil || s.Publish != env.Ended.Publish {
		return true
	}
	typ := live.Left
	if s.Publish {
		typ = live.Unpublished
	}
	reg.Record(live.Event{Type: typ, Path: s.Path, Source: s.Source, Session: s.ID})
	return true
}

// fleetOrigins answers, for the SFU's edges, which node publishes a path and at which base URL
// (the SFU's Origins: Origin(ctx, path) (nodeID, baseURL string, err error)). none is the SFU's
// error value for "nobody publishes it".
type fleetOrigins struct {
	fleet *redisstate.Fleet
	none  error
}

func (o fleetOrigins) Origin(ctx context.Context, path string) (nodeID, baseURL string, err error) {
	owner, ok, err := o.fleet.PublisherOf(ctx, path)
	switch {
	case err != nil:
		return "", "", err
	case !ok || owner.NodeID == o.fleet.Self().ID: // a path this node holds is not pulled from itself
		return "", "", o.none
	}
	return owner.NodeID, owner.URL, nil
}

// Close closes the key store, then the client.
func (l *stateLayer) Close() error {
	var errs []error
	if l.keys != nil {
		errs = append(errs, l.keys.Close())
	}
	if l.rdb != nil {
		errs = append(errs, l.rdb.Close())
	}
	return errors.Join(errs...)
}
