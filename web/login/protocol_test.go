package login_test

import (
	"context"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/web/login"
)

type fakeMinter struct{ perms []authz.Permission }

func (f *fakeMinter) Issue(sub string, p []authz.Permission, ttl time.Duration) (string, error) {
	f.perms = p
	return "tok", nil
}
func (f *fakeMinter) MaxTTL() time.Duration { return 0 }

type nopAuth struct{}

func (nopAuth) Authorize(context.Context, *authz.Request) authz.Decision { return authz.Decision{} }

// TestPublishTokenKeepsProtocolLimit (from an outside review): a role limited to publishing over WebRTC must not yield a token that publishes over any protocol.
func TestPublishTokenKeepsProtocolLimit(t *testing.T) {
	mint := &fakeMinter{}
	m, err := login.NewLocal(nopAuth{}, mint)
	if err != nil {
		t.Fatal(err)
	}
	p, err := authz.NewPermission("publish", "room/**", []string{"webrtc"})
	if err != nil {
		t.Fatal(err)
	}
	s := &login.Session{Subject: "u1", Perms: authz.Permissions{p}, Expires: time.Now().Add(time.Hour)}
	if _, _, err := m.PublishToken(s, "room/x/alice"); err != nil {
		t.Fatal(err)
	}
	for _, q := range mint.perms {
		if len(q.Protocols) == 0 {
			t.Errorf("minted %v: no protocol limit, but the session may publish over webrtc only; the token publishes room/x/alice over rtmp/srt/rtsp too", q)
		}
		if (&authz.Permissions{q}).Match(&authz.Request{Action: authz.ActionPublish, Path: "room/x/alice", Protocol: "rtmp"}) {
			t.Errorf("minted token allows rtmp publish; session does not")
		}
	}
}
