package redisstate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/authz/state/redistest"
)

// TestHealthCanceledIsNotAnAnswer: a canceled request context (the HTTP client hung up during
// the one probe) says nothing about Redis: Health stays down (it once flipped to up, and /readyz
// said ready while Redis was down).
func TestHealthCanceledIsNotAnAnswer(t *testing.T) {
	h := NewHealth(time.Hour, nil)
	h.Report(&net.OpError{Op: "dial", Err: errors.New("connection refused")})
	if h.Err() == nil {
		t.Fatal("not down")
	}
	h.Report(fmt.Errorf("redisstore: lookup: %w", context.Canceled))
	if h.Err() == nil {
		t.Fatal("Health says Redis is up after a canceled probe; nothing answered")
	}
}

// TestHealthRefusedCredentialsAreDown: a Redis that answers but refuses gatehouse's credentials
// (WRONGPASS, NOAUTH) is unusable: Health reports it down (degraded), not up.
func TestHealthRefusedCredentialsAreDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Password("right-password"))
	for _, tc := range []struct{ name, pass string }{{"wrong password", "wrong-password"}, {"no password", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: tc.pass, MaxRetries: -1, DisableIdentity: true})
			defer rdb.Close()
			h := NewHealth(time.Hour, nil)
			err := rdb.Get(context.Background(), "k").Err()
			h.Report(err)
			if h.Err() == nil {
				t.Fatalf("Health up after %v", err)
			}
		})
	}
}
