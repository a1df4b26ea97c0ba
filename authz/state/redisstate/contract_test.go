package redisstate

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"gatehouse/authz/state"
	"gatehouse/authz/state/redistest"
	"gatehouse/authz/state/statetest"
)

// contractTarget opens nodes over the Redis at addr: each case gets a key prefix of its own,
// each node a client, a Shared and a Fleet of its own, as a replica has.
func contractTarget(addr string, expire func(t *testing.T, d time.Duration)) statetest.Target {
	var cases atomic.Int64
	return statetest.Target{Shared: true, Expire: expire,
		Open: func(t *testing.T, now func() time.Time) func(statetest.NodeOptions) statetest.Node {
			prefix := fmt.Sprintf("contract%d:", cases.Add(1))
			return func(o statetest.NodeOptions) statetest.Node {
				rdb, err := Open(&state.RedisConfig{Addrs: []string{addr}, Timeout: 2 * 1e9})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { rdb.Close() })
				sh := NewShared(rdb, prefix, time.Hour, NewHealth(time.Millisecond, nil), 0, 0)
				sh.now = now
				local := &sessions{}
				fl := NewFleet(context.Background(), rdb, prefix, state.Node{ID: o.ID}, local, NewHealth(time.Millisecond, nil),
					WithTiming(time.Hour, o.LeaseTTL), WithFleetClock(now))
				return statetest.Node{Bans: sh, Counter: sh, Leases: fl, Publishing: local.set, Sync: sh.Sync}
			}
		}}
}

// TestContract runs the shared state contract against a real redis-server and against
// miniredis.
func TestContract(t *testing.T) {
	t.Run("redis-server", func(t *testing.T) {
		statetest.Run(t, contractTarget(redistest.Start(t).Addr, func(t *testing.T, d time.Duration) {
			time.Sleep(d + 50*time.Millisecond) // a real server's TTLs run on its own clock
		}))
	})
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		statetest.Run(t, contractTarget(m.Addr(), func(t *testing.T, d time.Duration) { m.FastForward(d) }))
	})
}
