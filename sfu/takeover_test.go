package sfu

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz"
)

// Tokens of takeoverAuth: two stream keys sharing an identity (a key without owner has its path
// as identity), a key owned by alice, and a second credential of alice. Paths under anon/ are
// published anonymously (a `user: any` grant: no credential, empty identity).
const (
	tokKeyA    = "key-a-token"
	tokKeyB    = "key-b-token"
	tokKeyAl   = "key-alice-token"
	tokAlice2  = "alice2-token"
	anonPrefix = "anon/"
)

func takeoverAuth(req *authz.Request) (authz.Decision, bool) {
	if req.Action != authz.ActionPublish {
		return authz.Decision{}, false
	}
	keyed := func(identity, id string) (authz.Decision, bool) {
		d := authz.Allowing(identity, time.Time{})
		d.KeyID = id
		return d, true
	}
	switch req.Token {
	case tokKeyA:
		return keyed("live/keyed", "key_a")
	case tokKeyB:
		return keyed("live/keyed", "key_b")
	case tokKeyAl:
		return keyed("alice", "key_alice")
	case tokAlice2:
		return authz.Allowing("alice", time.Time{}), true
	case "":
		if strings.HasPrefix(req.Path, anonPrefix) {
			return authz.Allowing("", time.Time{}), true
		}
	}
	return authz.Decision{}, false
}

// crash stops the publisher's media without closing its PeerConnection or sending DELETE: from
// the SFU's side the session stays connected, as after OBS crashes, until ICE times out.
func (p *testPublisher) crash() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
}

// TestPublisherTakeover: a publisher whose session looks alive may be replaced at once by the
// same identity or the same stream key (OBS reconnecting after a crash), never by another one,
// and never between anonymous publishers.
func TestPublisherTakeover(t *testing.T) {
	tests := []struct {
		name        string
		path        string
		first, next string
		want        int
	}{
		{"same identity and credential", "live/cam", tokPub, tokPub, http.StatusCreated},
		{"same identity, another credential", "live/cam", tokPub, tokAlice2, http.StatusCreated},
		{"another identity", "live/cam", tokPub, tokPub2, http.StatusConflict},
		{"same managed key", "live/keyed", tokKeyA, tokKeyA, http.StatusCreated},
		{"another key with the same identity", "live/keyed", tokKeyA, tokKeyB, http.StatusConflict},
		{"identity over its key's session", "live/cam", tokKeyAl, tokPub, http.StatusConflict},
		{"key over its identity's session", "live/cam", tokPub, tokKeyAl, http.StatusConflict},
		{"anonymous", anonPrefix + "cam", "", "", http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvWith(t, nil, takeoverAuth)
			pub1, res := e.publish(tt.path, tt.first, 1)
			if pub1 == nil {
				t.Fatalf("first publish: got %d", res.StatusCode)
			}
			e.waitLive(tt.path)
			pub1.crash()
			first := e.sfu.Sessions()[0].ID
			pub2, res := e.publish(tt.path, tt.next, 2)
			body := ""
			if pub2 == nil {
				body = readAll(t, res) // publish read a 201's answer; a refusal's body is ours
			}
			if got := res.StatusCode; got != tt.want {
				t.Fatalf("second publish: got %d, want %d (body %q)", got, tt.want, body)
			}
			ss := e.sfu.Sessions()
			if len(ss) != 1 {
				t.Fatalf("sessions: got %+v, want one", ss)
			}
			if tt.want == http.StatusConflict {
				if ss[0].ID != first {
					t.Errorf("session: got %s, want the first publisher's %s", ss[0].ID, first)
				}
				return
			}
			if ss[0].ID == first || pub2 == nil || !strings.HasSuffix(pub2.location, ss[0].ID) {
				t.Errorf("sessions: got %+v, want only the second publisher's", ss)
			}
			mustStatus(t, e.do(http.MethodDelete, pub1.location, tt.first, "", ""), http.StatusNotFound)
		})
	}
}

// TestOwnerTakeoverKeepsViewers: when a publisher's owner replaces its stale session, the
// viewers keep their PeerConnection and receive the new publisher's media without renegotiating.
func TestOwnerTakeoverKeepsViewers(t *testing.T) {
	e := newEnv(t, nil)
	pub1, res := e.publish("live/cam", tokPub, 1)
	if pub1 == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam")
	v, res := e.view("live/cam", tokView, true)
	if v == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "media from the first publisher", func() bool { return len(v.received(true, 1)) >= 20 })
	pub1.crash()
	pub2, res := e.publish("live/cam", tokPub, 2)
	if pub2 == nil {
		t.Fatalf("republish by the same identity: got %d, want 201 (body %q)", res.StatusCode, readAll(t, res))
	}
	eventually(t, 10*time.Second, "video and audio from the new publisher", func() bool {
		return len(v.received(true, 2)) >= 20 && len(v.received(false, 2)) >= 10
	})
	if st := v.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
		t.Errorf("viewer connection: got %v, want connected (no renegotiation)", st)
	}
	var kinds []Kind
	for _, s := range e.sfu.Sessions() {
		kinds = append(kinds, s.Kind)
	}
	if len(kinds) != 2 {
		t.Errorf("sessions: got kinds %v, want the new publisher and the viewer", kinds)
	}
	got := v.received(true, 0)
	if a, b := got[0].ssrc, got[len(got)-1].ssrc; a != b {
		t.Errorf("viewer video SSRC changed across the takeover: %d -> %d", a, b)
	}
}

// TestOwnedByNeedsTheSameMethod: identities are per method (one provider's preferred_username,
// an HTTP backend's client-supplied user and an internal user can all be "alice"), so a
// publisher owns the current one only when the same method admitted both.
func TestOwnedByNeedsTheSameMethod(t *testing.T) {
	pub := &session{backend: "corp-oidc", identity: "alice"}
	keyed := &session{backend: "keys", identity: "live/cam", keyID: "key_a"}
	tests := []struct {
		name string
		pub  *session
		o    pubOwner
		want bool
	}{
		{"same method and identity", pub, pubOwner{backend: "corp-oidc", identity: "alice"}, true},
		{"same identity from another method", pub, pubOwner{backend: "webhook", identity: "alice"}, false},
		{"same identity, no method", pub, pubOwner{identity: "alice"}, false},
		{"another identity", pub, pubOwner{backend: "corp-oidc", identity: "bob"}, false},
		{"same key", keyed, pubOwner{backend: "keys", identity: "live/cam", keyID: "key_a"}, true},
		{"same key id from another method", keyed, pubOwner{backend: "other", identity: "live/cam", keyID: "key_a"}, false},
		{"anonymous", &session{backend: "open"}, pubOwner{backend: "open"}, false},
		{"no publisher", nil, pubOwner{backend: "corp-oidc", identity: "alice"}, false},
	}
	for _, tt := range tests {
		if got := ownedBy(tt.pub, tt.o); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestLocalPublisherReplacesIdlePull: an edge whose pull lost its stream (the origin's
// publisher left) keeps its viewers for the reconnect grace; a publisher that now publishes to
// the edge itself takes the path (nobody publishes anywhere else) and the viewers get its media.
func TestLocalPublisherReplacesIdlePull(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", nil)
	edge.pullFrom(origin)
	pub1, res := origin.publish("live/cam", tokPub, 1)
	if pub1 == nil {
		t.Fatalf("publish on the origin: got %d", res.StatusCode)
	}
	origin.waitLive("live/cam")
	v, res := edge.viewEdge("live/cam", tokView)
	if v == nil {
		t.Fatalf("edge viewer: got %d", res.StatusCode)
	}
	eventually(t, 15*time.Second, "media from the origin", func() bool { return len(v.received(true, 1)) > 20 })
	pub1.close()
	eventually(t, 15*time.Second, "the origin to notice its publisher left", func() bool {
		origin.sfu.mu.Lock()
		defer origin.sfu.mu.Unlock()
		st := origin.sfu.streams["live/cam"]
		return st != nil && st.pub == nil
	})
	// The origin keeps the pull (its viewer) for its reconnect grace, then ends it.
	origin.clock.Advance(DefaultReconnectGrace + time.Second)
	origin.sfu.sweep()
	eventually(t, 15*time.Second, "the edge's pull to stop delivering", func() bool {
		edge.sfu.mu.Lock()
		defer edge.sfu.mu.Unlock()
		st := edge.sfu.streams["live/cam"]
		return st != nil && st.pull != nil && !st.pull.up
	})
	pub2, res := edge.publish("live/cam", tokPub2, 2)
	if pub2 == nil {
		t.Fatalf("publish on the edge while its pull is idle: got %d, want 201 (body %q)", res.StatusCode, readAll(t, res))
	}
	eventually(t, 15*time.Second, "the edge viewer to get the new publisher's video and audio", func() bool {
		return len(v.received(true, 2)) > 20 && len(v.received(false, 2)) > 10
	})
	if st := v.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
		t.Errorf("edge viewer connection: got %v, want connected (no renegotiation)", st)
	}
	edge.sfu.mu.Lock()
	st := edge.sfu.streams["live/cam"]
	pulled := st.pull != nil
	edge.sfu.mu.Unlock()
	if pulled {
		t.Error("the edge still pulls a path it now publishes")
	}
}

// TestLocalPublisherRefusedWhilePullDelivers: one publisher per path across the fleet: while
// the edge's pull delivers the origin's stream, a local publisher gets 409.
func TestLocalPublisherRefusedWhilePullDelivers(t *testing.T) {
	iss := testIssuer(t)
	origin := newNode(t, iss, "origin", nil)
	edge := newNode(t, iss, "edge", nil)
	edge.pullFrom(origin)
	viewAtEdge(t, origin, edge) // the pull delivers
	pub2, res := edge.publish("live/cam", tokPub, 2)
	if pub2 != nil {
		t.Fatalf("publish on the edge while its pull delivers: got %d, want 409", res.StatusCode)
	}
	if body := readAll(t, res); res.StatusCode != http.StatusConflict {
		t.Errorf("publish on the edge while its pull delivers: got %d, want 409 (body %q)", res.StatusCode, body)
	}
}
