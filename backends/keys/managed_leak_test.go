package keys

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/logtest"
)

// TestManagedKeyAsViewerPath: a viewer with read on live/* (README's `user: any` with
// [{action: read}]) plays live/<managed key>. The keys method recognises the key (and denies:
// it permits publish only); the allow of the read rule must then be for the public path
// (renamed where the server can, refused where it cannot), never for live/ghk_…, which every
// adapter would track and record (registry, /api/v1/streams, events). It used to be allowed
// with no Rename.
func TestManagedKeyAsViewerPath(t *testing.T) {
	st := &memStore{}
	secret := st.add(t, Record{ID: "key_aaaaaaaaaa", Spec: Spec{Path: "live/alice", Actions: []authz.Action{authz.ActionPublish}}})
	kb, err := New(Config{}, nil, WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	anyoneReads := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		if r.Action == authz.ActionRead && strings.HasPrefix(r.Path, "live/") {
			return authz.Allowing("", time.Time{}), nil
		}
		return authz.Decision{}, nil
	})
	for _, src := range []struct {
		name      string
		canRename bool
	}{{"nginx-rtmp", true}, {"mediamtx", false}, {"srs", false}} {
		t.Run(src.name, func(t *testing.T) {
			var buf logtest.Buffer
			e := authz.NewEngine(authz.NewChain(authz.Method{Name: "keys", Backend: kb}, authz.Method{Name: "internal", Backend: anyoneReads}),
				slog.New(slog.NewTextHandler(&buf, nil)))
			d := e.Authorize(context.Background(), &authz.Request{Action: authz.ActionRead, Path: "live/" + secret, Protocol: "rtmp", Source: src.name, CanRename: src.canRename})
			if d.Allowed() != src.canRename || d.Rename != "live/alice" {
				t.Errorf("%s: got allowed=%v rename=%q (%s), want allowed=%v rename live/alice", src.name, d.Allowed(), d.Rename, d.Reason, src.canRename)
			}
			if strings.Contains(buf.String(), secret) {
				t.Errorf("%s: the log names the key:\n%s", src.name, buf.String())
			}
		})
	}
}
