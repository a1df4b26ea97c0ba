package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/authz/state/redistest"
)

// TestRedisFleetDoneHookOnOtherReplicaFreesPath: hooks behind a load balancer that is not sticky
// (the deployment issue 13 describes): nginx-rtmp's on_publish reaches A, its on_publish_done
// reaches B. B announces the end to the fleet, A ends the session in its registry and releases
// the lease, and the publisher may come back through B. (A's registry once kept the publisher and
// renewed the lease, so the path stayed path_busy on every other node for up to 24 h.)
func TestRedisFleetDoneHookOnOtherReplicaFreesPath(t *testing.T) {
	srv := redistest.Start(t)
	write := func() string {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gatehouse.yml")
		src := strings.NewReplacer("%DATA%", filepath.Join(dir, "data"), "%ADDR%", srv.Addr).Replace(keysE2EConfig + `state:
  backend: redis
  redis:
    addrs: [%ADDR%]
    key_prefix: "lb:"
    sync_interval: 100ms
    timeout: 300ms
`)
		if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a := startBinary(t, appendState(t, write(), "  node_id: gh-a\n"))
	b := startBinary(t, appendState(t, write(), "  node_id: gh-b\n"))
	code, body := apiCallBody(t, "POST", a.public+"/api/v1/keys", `{"path":"live/alice"}`)
	var created struct{ ID, Secret string }
	_ = json.Unmarshal([]byte(body), &created)
	if code != 201 {
		t.Fatal(code, body)
	}
	if code, body := nginxCall(t, a.hooks, "publish", created.Secret, "7"); code != 302 {
		t.Fatalf("publish on A: %d %s", code, body)
	}
	// The LB sends the publisher's done hook to B.
	if code, _ := nginxCall(t, b.hooks, "publish_done", "alice", "7"); code != 200 {
		t.Fatalf("publish_done on B: %d", code)
	}
	// The publisher comes back; the LB sends it to B: refused for as long as A's registry holds
	// the ended session (24 h for a source without keep-alives).
	time.Sleep(5 * time.Second) // > 2 heartbeats
	if code, body := nginxCall(t, b.hooks, "publish", created.Secret, "8"); code != 302 {
		t.Fatalf("publisher on B after its previous session ended: %d %q (A still renews the lease)", code, body)
	}
}
