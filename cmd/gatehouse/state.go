package main

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz"
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
}

// engineOptions returns the engine's ban store and counter: the in-process defaults (none), or
// the shared ones.
func (l *stateLayer) engineOptions() []authz.EngineOption {
	if l == nil || l.shared == nil {
		return nil
	}
	return []authz.EngineOption{authz.WithBanStore(l.shared), authz.WithCounter(l.shared)}
}

// openState opens the state layer's key store: SQLite in data_dir (backend memory), or Redis.
// With Redis, an unreachable server is no error (requests fail closed until it answers); a
// password file that cannot be read is.
func openState(ctx context.Context, cfg *Config) (*stateLayer, error) {
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
	return &stateLayer{keys: redisstore.New(ctx, rdb, rc.Prefix(), redisstore.WithHealth(h)), rdb: rdb, health: h,
		shared: redisstate.NewShared(rdb, rc.Prefix(), rc.Sync(), h, 0, 0)}, nil
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
