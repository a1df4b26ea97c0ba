package live_test

import (
	"fmt"
	"time"

	"gatehouse/authz/live"
)

// Adapters Record what their server reports; consumers Subscribe to real transitions only.
func ExampleRegistry() {
	reg := live.NewRegistry()
	changes, unsubscribe := reg.Subscribe()
	defer unsubscribe()

	at := time.Date(2026, 5, 12, 13, 45, 0, 0, time.UTC)
	reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "ome", Session: "A", Identity: "alice", Time: at})
	reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "ome", Session: "A", Time: at}) // duplicate
	reg.Record(live.Event{Type: live.Joined, Path: "live/alice", Source: "ome", Session: "V1", Time: at})
	reg.Record(live.Event{Type: live.Published, Path: "live/alice", Source: "ome", Session: "B", Identity: "alice", Time: at}) // OBS reconnect
	reg.Record(live.Event{Type: live.Unpublished, Path: "live/alice", Source: "ome", Session: "A", Time: at})                  // late close of A

	for _, s := range reg.List() {
		fmt.Println(s.Path, s.Identity, s.Session, "viewers:", s.Viewers)
	}
	reg.Record(live.Event{Type: live.Unpublished, Path: "live/alice", Source: "ome", Session: "B", Time: at})
	for range 2 {
		c := <-changes
		fmt.Println("live:", c.Live, c.Stream.Path, c.Reason)
	}
	// Output:
	// live/alice alice B viewers: 1
	// live: true live/alice published
	// live: false live/alice unpublished
}
