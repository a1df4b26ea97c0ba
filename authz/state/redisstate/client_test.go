package redisstate

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz/state"
)

// TestOpenNeverRetries: the client tries each command once (a retried pipeline would apply its
// INCRBY deltas twice, and a decision would wait two timeouts).
func TestOpenNeverRetries(t *testing.T) {
	rdb, err := Open(&state.RedisConfig{Addrs: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	c, ok := rdb.(*redis.Client)
	if !ok {
		t.Fatalf("got %T, want *redis.Client for one address", rdb)
	}
	if got := c.Options().MaxRetries; got != 0 {
		t.Errorf("got MaxRetries %d, want 0 (one try)", got)
	}
}
