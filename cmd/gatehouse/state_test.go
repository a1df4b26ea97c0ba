package main

import (
	"context"
	"errors"
	"testing"

	"gatehouse/authz/state"
	"gatehouse/authz/state/redisstate"
	"gatehouse/authz/state/redistest"
)

// fleetOrigins answers the SFU's Origin lookup from the fleet's publish leases: the node id and
// base URL of the node publishing a path, and the SFU's own error when nobody publishes it.
func TestFleetOrigins(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := redisstate.Open(&state.RedisConfig{Addrs: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	f := redisstate.NewFleet(ctx, rdb, "t:", state.Node{ID: "gh-a", URL: "http://10.0.0.2:8089"}, nil, nil)
	if err := f.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Claim(ctx, "live/a"); err != nil {
		t.Fatal(err)
	}
	errNone := errors.New("sfu: nobody publishes it")
	if _, _, err := (fleetOrigins{fleet: f, none: errNone}).Origin(ctx, "live/a"); !errors.Is(err, errNone) {
		t.Fatalf("Origin of a path this node holds: %v, want not-found (a node never pulls from itself)", err)
	}
	g := redisstate.NewFleet(ctx, rdb, "t:", state.Node{ID: "gh-b", URL: "http://10.0.0.3:8089"}, nil, nil)
	o := fleetOrigins{fleet: g, none: errNone}
	id, url, err := o.Origin(ctx, "live/a")
	if err != nil || id != "gh-a" || url != "http://10.0.0.2:8089" {
		t.Fatalf("Origin(live/a): %q %q %v, want gh-a http://10.0.0.2:8089", id, url, err)
	}
	if _, _, err := o.Origin(ctx, "live/b"); !errors.Is(err, errNone) {
		t.Fatalf("Origin(live/b): %v, want the SFU's not-found error", err)
	}
}
