package redisstate

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// listen subscribes to channel and calls news from its own goroutine for every message (with its
// payload) and every (re)subscription (payload "", resubscribed true: announcements may have
// been missed while disconnected). go-redis reconnects on the next receive; while Redis is away
// the loop waits 100 ms between tries instead of spinning. stop closes the subscription and
// returns once the goroutine has ended.
func listen(ctx context.Context, rdb redis.UniversalClient, channel string, news func(payload string, resubscribed bool)) (stop func()) {
	ps := rdb.Subscribe(ctx, channel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := ps.Receive(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				news("", true)
			case *redis.Message:
				news(m.Payload, false)
			}
		}
	}()
	return func() { _ = ps.Close(); <-done }
}
