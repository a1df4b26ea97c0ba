package login_test

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"

	"gatehouse/authz/tokens"
	"gatehouse/web/login"
)

// TestRoomPublishToken: a publish token holds exactly the one path asked for, and only when the
// session's roles allow publishing there; a pattern is never minted.
func TestRoomPublishToken(t *testing.T) {
	f := newFixture(t)
	session := func(user, pass string) *login.Session {
		c := newClient()
		get(t, c, f.authorize(c, user, pass))
		u, _ := url.Parse(f.srv.URL)
		r := httptest.NewRequest("GET", f.srv.URL+"/", nil)
		for _, ck := range c.Jar.Cookies(u) {
			r.AddCookie(ck)
		}
		s, _ := f.m.Current(r)
		if s == nil {
			t.Fatalf("%s: no session", user)
		}
		return s
	}
	alice := session("alice", "alice-pass") // admin: publish:live/*
	if alice.Username != "alice" || alice.Issuer != f.op.Issuer || alice.Subject == "" || alice.UsernameUnique {
		t.Errorf("alice's session: got Username %q Issuer %q Subject %q UsernameUnique %v, want alice, %s, the provider's, false",
			alice.Username, alice.Issuer, alice.Subject, alice.UsernameUnique, f.op.Issuer)
	}
	tok, _, err := f.m.PublishToken(alice, "live/alice")
	if err != nil {
		t.Fatal(err)
	}
	perms, _ := json.Marshal(payload(t, tok)[tokens.ClaimKey])
	if string(perms) != `[{"action":"publish","path":"live/alice","protocols":["webrtc"]}]` {
		t.Errorf("publish token permissions: got %s, want exactly live/alice over webrtc", perms)
	}
	for _, path := range []string{"live/*", "live/**", "~live/.*", "room/x/alice", "live/a/b", "live/../x", ""} {
		if _, _, err := f.m.PublishToken(alice, path); !errors.Is(err, login.ErrNoPermissions) {
			t.Errorf("alice on %q: got %v, want ErrNoPermissions", path, err)
		}
	}
	bob := session("bob", "bob-pass") // no role
	if _, _, err := f.m.PublishToken(bob, "live/bob"); !errors.Is(err, login.ErrNoPermissions) {
		t.Errorf("bob: got %v, want ErrNoPermissions", err)
	}
}
