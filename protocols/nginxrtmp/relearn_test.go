package nginxrtmp

import (
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

// TestRestartRelearnsSessions: after a restart (a new handler and a new registry) the first
// allowed on_update of a running publisher and of a running player puts them back in the
// registry, under the public path (the decision's Rename), never under the presented key.
func TestRestartRelearnsSessions(t *testing.T) {
	const secret = "s3cretkey0123456789abcdef"
	reg := live.NewRegistry()
	h := New(Config{}, &fakeAuth{decide: func(r *authz.Request) authz.Decision {
		d := authz.Allowing("alice", time.Time{})
		if r.Path == "live/"+secret {
			d.Rename = "live/alice"
		}
		return d
	}}, reg, nil)
	pub := "app=live&addr=127.0.0.1&clientid=7&call=update_publish&time=30&timestamp=1&name=" + secret
	play := "app=live&addr=127.0.0.1&clientid=8&call=update_play&time=30&timestamp=1&name=alice"
	for _, body := range []string{pub, play, pub, play} {
		if w := hookPost(h, body); w.Code != 200 {
			t.Fatalf("got %d, want 200", w.Code)
		}
	}
	streams := reg.List()
	if len(streams) != 1 || streams[0].Path != "live/alice" || streams[0].Identity != "alice" {
		t.Fatalf("after a restart, the registry lists %+v, want the running stream live/alice", streams)
	}
	st, _ := reg.Get("live/alice")
	if st.Viewers != 1 {
		t.Errorf("viewers: got %d, want 1 (the running player)", st.Viewers)
	}
	for _, s := range reg.List() {
		if strings.Contains(s.Path, secret) {
			t.Errorf("a stream is listed under the key: %+v", s)
		}
	}
	hookPost(h, "app=live&addr=127.0.0.1&clientid=7&call=publish_done&name="+secret)
	if got := reg.List(); len(got) != 0 {
		t.Errorf("after publish_done the registry still lists %+v", got)
	}
}
