package nginxrtmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/authz/conf"
	"gatehouse/authz/live"
	"gatehouse/backends/keys"
	"gatehouse/protocols/nginxtest"
)

// TestNginxRTMPControlDrop: real nginx-rtmp with its control module (`rtmp_control all;`) and
// ffmpeg publishing with a managed key as the stream name. Without on_update, only the Kicker's
// drop can end the publish: it does so at once, under the public name the key was renamed to,
// and a second drop of the same session reports it gone.
func TestNginxRTMPControlDrop(t *testing.T) {
	nginx, module := requireTools(t)
	ctx := context.Background()
	store, rec, hook, _ := managedKeyHook(t)

	var sock string
	n := nginxtest.Start(t, nginx, func(dir string, port int) string {
		sock = filepath.Join(dir, "control.sock")
		return fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
worker_processes 1;
error_log %s info;
pid %s;
events { worker_connections 128; }
http {
    access_log off;
    server {
        listen unix:%s;
        location /control { rtmp_control all; }
    }
}
rtmp {
    server {
        listen 127.0.0.1:%d;
        application live {
            live on;
            on_publish %s;
            on_done %s;
        }
    }
}
`, module, filepath.Join(dir, "error.log"), filepath.Join(dir, "nginx.pid"), sock, port, hook, hook)
	})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	gone := errors.New("gone")
	k := NewKicker(conf.Endpoint{URL: "http://nginx/control"}, client, gone)

	_, secret, err := store.Create(ctx, keys.Spec{Path: "live/alice", Label: "Alice OBS"})
	if err != nil {
		t.Fatal(err)
	}
	p := publish(t, "rtmp://"+n.Addr+"/live/"+secret, 60*time.Second)
	e := rec.WaitFor(t, 15*time.Second, "published live/alice", is(live.Published, "live/alice"))
	s := live.Session{Source: Source, ID: e.Session, Path: e.Path, Publish: true}
	// gatehouse records the publish when it answers on_publish; nginx-rtmp then follows the
	// rename and starts the stream under the public name a moment later, so a drop sent at once
	// may find nothing yet ("gone"). Retry for a bounded time until it finds the session.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := k.Kick(ctx, s)
		if err == nil {
			break
		}
		if !errors.Is(err, gone) || time.Now().After(deadline) {
			t.Fatalf("drop: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !waitExit(p, 10*time.Second) {
		t.Fatal("the publisher still runs 10s after the drop")
	}
	if err := k.Kick(ctx, s); !errors.Is(err, gone) {
		t.Errorf("second drop: got %v, want gone", err)
	}
}
