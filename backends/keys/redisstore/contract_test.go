package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"gatehouse/authz/state"
	"gatehouse/authz/state/redisstate"
	"gatehouse/authz/state/redistest"
	"gatehouse/backends/keys/storetest"
)

// contractTarget opens instances over the Redis at addr: each case gets a key prefix of its
// own, each instance a client of its own.
func contractTarget(addr string) storetest.Open {
	var n atomic.Int64
	return func(t *testing.T, now func() time.Time) func() storetest.Store {
		prefix := fmt.Sprintf("contract%d:", n.Add(1))
		return func() storetest.Store {
			rdb, err := redisstate.Open(&state.RedisConfig{Addrs: []string{addr}, Timeout: 2 * 1e9})
			if err != nil {
				t.Fatal(err)
			}
			s := New(context.Background(), rdb, prefix, WithClock(now))
			t.Cleanup(func() { s.Close(); rdb.Close() })
			return s
		}
	}
}

// TestContract runs the key store contract against a real redis-server and against miniredis.
func TestContract(t *testing.T) {
	t.Run("redis-server", func(t *testing.T) {
		storetest.Run(t, contractTarget(redistest.Start(t).Addr))
	})
	t.Run("miniredis", func(t *testing.T) {
		storetest.Run(t, contractTarget(miniredis.RunT(t).Addr()))
	})
}
