package sfu

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"gatehouse/authz/live"
)

func TestMediaReachesEveryViewer(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d, want 201 (%s)", res.StatusCode, readAll(t, res))
	}
	// Wait until the publisher's tracks arrived so the viewers get both kinds.
	eventually(t, 10*time.Second, "publisher media", func() bool {
		e.sfu.mu.Lock()
		defer e.sfu.mu.Unlock()
		st := e.sfu.streams["live/cam"]
		return st != nil && st.slots[0].up.Load() != nil && st.slots[1].up.Load() != nil
	})
	var viewers []*testViewer
	for range 3 {
		v, res := e.view("live/cam", tokView, true)
		if v == nil {
			t.Fatalf("view: got %d, want 201 (%s)", res.StatusCode, readAll(t, res))
		}
		viewers = append(viewers, v)
	}
	for i, v := range viewers {
		eventually(t, 20*time.Second, "video and audio at a viewer", func() bool {
			return len(v.received(true, 1)) >= 20 && len(v.received(false, 1)) >= 10
		})
		if first := v.received(true, 1)[0]; !first.key {
			t.Errorf("viewer %d: first video packet is not a keyframe (gate)", i)
		}
	}
	if got, want := e.sessionCount(), 4; got != want {
		t.Errorf("sessions: got %d, want %d", got, want)
	}
	if got, want := e.rec.Count(live.Published, "live/cam"), 1; got != want {
		t.Errorf("Published events: got %d, want %d", got, want)
	}
	if got, want := e.rec.Count(live.Joined, "live/cam"), 3; got != want {
		t.Errorf("Joined events: got %d, want %d", got, want)
	}
	mustStatus(t, e.do(http.MethodDelete, pub.location, tokPub, "", ""), http.StatusOK)
	if got, want := e.rec.Count(live.Unpublished, "live/cam"), 1; got != want {
		t.Errorf("Unpublished events: got %d, want %d", got, want)
	}
	if got, want := e.sessionCount(), 3; got != want {
		t.Errorf("sessions after publisher left: got %d, want %d (viewers wait for a reconnect)", got, want)
	}
}

// waitLive waits until the publisher's video and audio tracks reached the SFU.
func (e *env) waitLive(path string) {
	e.t.Helper()
	eventually(e.t, 10*time.Second, "publisher media on "+path, func() bool {
		e.sfu.mu.Lock()
		defer e.sfu.mu.Unlock()
		st := e.sfu.streams[path]
		return st != nil && st.pub != nil && st.slots[0].up.Load() != nil && st.slots[1].up.Load() != nil
	})
}

func TestRefusedCredentialsCreateNoSession(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam")
	tests := []struct {
		name      string
		endpoint  string
		token     string
		want      int
		challenge string
	}{
		{"publish without token", "/whip/live/other", "", http.StatusUnauthorized, `Bearer realm="gatehouse"`},
		{"publish with bad token", "/whip/live/other", "nope", http.StatusUnauthorized, `Bearer realm="gatehouse", error="invalid_token"`},
		{"publish with expired grant", "/whip/live/other", tokExpired, http.StatusUnauthorized, `Bearer realm="gatehouse", error="invalid_token"`},
		{"publish without permission", "/whip/live/other", tokNoPerm, http.StatusForbidden, `Bearer realm="gatehouse", error="insufficient_scope"`},
		{"publish with a read token", "/whip/live/other", tokView, http.StatusForbidden, `Bearer realm="gatehouse", error="insufficient_scope"`},
		{"view without token", "/whep/live/cam", "", http.StatusUnauthorized, `Bearer realm="gatehouse"`},
		{"view with bad token", "/whep/live/cam", "nope", http.StatusUnauthorized, `Bearer realm="gatehouse", error="invalid_token"`},
		{"view with expired grant", "/whep/live/cam", tokExpired, http.StatusUnauthorized, `Bearer realm="gatehouse", error="invalid_token"`},
		{"view with a publish token", "/whep/live/cam", tokPub, http.StatusForbidden, `Bearer realm="gatehouse", error="insufficient_scope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.sessionCount()
			res := e.do(http.MethodPost, tt.endpoint, tt.token, typeSDP, "v=0\r\n")
			body := mustStatus(t, res, tt.want)
			if got := res.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, tt.challenge)
			}
			if got := res.Header.Get("Content-Type"); got != typeProblem {
				t.Errorf("Content-Type: got %q, want %q", got, typeProblem)
			}
			if tt.token != "" && strings.Contains(body, tt.token) {
				t.Errorf("the reply echoes the token: %q", body)
			}
			if got := e.sessionCount(); got != before {
				t.Errorf("sessions: got %d, want %d", got, before)
			}
		})
	}
}

func TestDeleteNeedsTheCreatingCredential(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	tests := []struct {
		name  string
		url   string
		token string
		want  int
	}{
		{"no credentials", pub.location, "", http.StatusUnauthorized},
		{"another publisher's token", pub.location, tokPub2, http.StatusForbidden},
		{"same identity type, other token", pub.location, tokView, http.StatusForbidden},
		{"unknown session", "/whip/session/00000000000000000000000000000000", tokPub, http.StatusNotFound},
		{"viewer endpoint for a publisher session", strings.Replace(pub.location, "/whip/", "/whep/", 1), tokPub, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustStatus(t, e.do(http.MethodDelete, tt.url, tt.token, "", ""), tt.want)
			if got := e.sessionCount(); got != 1 {
				t.Errorf("sessions: got %d, want 1", got)
			}
		})
	}
	mustStatus(t, e.do(http.MethodDelete, pub.location, tokPub, "", ""), http.StatusOK)
	if got := e.sessionCount(); got != 0 {
		t.Errorf("sessions after DELETE: got %d, want 0", got)
	}
	mustStatus(t, e.do(http.MethodDelete, pub.location, tokPub, "", ""), http.StatusNotFound)
}

func TestExpiredGrantClosesSessions(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokShort, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam")
	v, res := e.view("live/cam", tokShort, true)
	if v == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "media at the viewer", func() bool { return len(v.received(true, 1)) > 5 })
	for _, s := range e.sfu.Sessions() {
		if want := e.clock.Now().Add(time.Minute); !s.Expires.Equal(want) {
			t.Errorf("session %s expires: got %v, want %v", s.Kind, s.Expires, want)
		}
	}
	e.clock.Advance(59 * time.Second)
	e.sfu.sweep()
	if got := e.sessionCount(); got != 2 {
		t.Fatalf("sessions before expiry: got %d, want 2", got)
	}
	e.clock.Advance(time.Second)
	e.sfu.sweep()
	if got := e.sessionCount(); got != 0 {
		t.Fatalf("sessions after expiry: got %d, want 0", got)
	}
	if e.rec.Count(live.Unpublished, "live/cam") != 1 || e.rec.Count(live.Left, "live/cam") != 1 {
		t.Errorf("events: want one Unpublished and one Left, got %+v", e.rec.Events())
	}
	eventually(t, 20*time.Second, "the viewer's connection to end", func() bool {
		switch v.pc.ConnectionState() {
		case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateDisconnected:
			return true
		}
		return false
	})
}

func TestExpiryNotEnforcedWhenDisabled(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IgnoreExpiry = true })
	if pub, res := e.publish("live/cam", tokShort, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	// The engine is told the truth: this SFU will not end the session at the grant's expiry,
	// so the decision is logged with expiry_enforced=false.
	if got := e.canEndAt.Load(); got != 2 {
		t.Errorf("CanEndAt with IgnoreExpiry: got %v, want false", got == 1)
	}
	e.clock.Advance(time.Hour)
	e.sfu.sweep()
	if got := e.sessionCount(); got != 1 {
		t.Errorf("sessions: got %d, want 1", got)
	}
}

// TestCanEndAtWhenEnforced: by default the SFU ends sessions at the grant's expiry and says so.
func TestCanEndAtWhenEnforced(t *testing.T) {
	e := newEnv(t, nil)
	if pub, res := e.publish("live/cam", tokShort, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	if got := e.canEndAt.Load(); got != 1 {
		t.Errorf("CanEndAt: got %v, want true", got == 1)
	}
}

func TestSecondPublisher(t *testing.T) {
	t.Run("conflict", func(t *testing.T) {
		e := newEnv(t, nil)
		if pub, res := e.publish("live/cam", tokPub, 1); pub == nil {
			t.Fatalf("publish: got %d", res.StatusCode)
		}
		pub2, res := e.publish("live/cam", tokPub2, 2)
		if pub2 != nil {
			t.Fatal("second publisher accepted, want 409")
		}
		mustStatus(t, res, http.StatusConflict)
		if got := e.sessionCount(); got != 1 {
			t.Errorf("sessions: got %d, want 1", got)
		}
	})
	t.Run("replace", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.ReplacePublisher = true })
		pub1, res := e.publish("live/cam", tokPub, 1)
		if pub1 == nil {
			t.Fatalf("publish: got %d", res.StatusCode)
		}
		pub2, res := e.publish("live/cam", tokPub2, 2)
		if pub2 == nil {
			t.Fatalf("second publish: got %d, want 201", res.StatusCode)
		}
		ss := e.sfu.Sessions()
		if len(ss) != 1 || ss[0].Identity != "bob" {
			t.Errorf("sessions: got %+v, want only bob's", ss)
		}
		mustStatus(t, e.do(http.MethodDelete, pub1.location, tokPub, "", ""), http.StatusNotFound)
	})
}

func TestViewerBeforePublisher(t *testing.T) {
	e := newEnv(t, nil)
	v, res := e.view("live/cam", tokView, true)
	if v != nil {
		t.Fatal("viewer accepted before the stream is live")
	}
	mustStatus(t, res, http.StatusConflict)
	if got := res.Header.Get("Retry-After"); got == "" {
		t.Error("409 without Retry-After")
	}
}

func TestPublisherReconnectKeepsViewers(t *testing.T) {
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
	mustStatus(t, e.do(http.MethodDelete, pub1.location, tokPub, "", ""), http.StatusOK)
	pub1.close()
	pub2, res := e.publish("live/cam", tokPub2, 2)
	if pub2 == nil {
		t.Fatalf("second publish: got %d", res.StatusCode)
	}
	eventually(t, 10*time.Second, "media from the second publisher", func() bool { return len(v.received(true, 2)) >= 20 })

	for _, video := range []bool{true, false} {
		got := v.received(video, 0)
		var lastA, firstB *rx
		for i := range got {
			switch {
			case got[i].pub == 1:
				lastA = &got[i]
			case got[i].pub == 2 && firstB == nil:
				firstB = &got[i]
			}
		}
		if lastA == nil || firstB == nil {
			t.Fatalf("video=%v: missing packets from one publisher", video)
		}
		if firstB.ssrc != lastA.ssrc {
			t.Errorf("video=%v: SSRC changed across the reconnect: %d -> %d", video, lastA.ssrc, firstB.ssrc)
		}
		if firstB.seq != lastA.seq+1 {
			t.Errorf("video=%v: seq not continuous across the reconnect: last %d, next %d", video, lastA.seq, firstB.seq)
		}
		if int32(firstB.ts-lastA.ts) <= 0 {
			t.Errorf("video=%v: timestamp went backwards across the reconnect: %d -> %d", video, lastA.ts, firstB.ts)
		}
		if video && !firstB.key {
			t.Error("the first packet from the new publisher is not a keyframe")
		}
	}
	if got := e.rec.Count(live.Joined, "live/cam"); got != 1 {
		t.Errorf("Joined events: got %d, want 1 (the viewer never left)", got)
	}
}

func TestViewersClosedAfterReconnectGrace(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam")
	if v, res := e.view("live/cam", tokView, true); v == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	mustStatus(t, e.do(http.MethodDelete, pub.location, tokPub, "", ""), http.StatusOK)
	e.clock.Advance(DefaultReconnectGrace - time.Second)
	e.sfu.sweep()
	if got := e.sessionCount(); got != 1 {
		t.Fatalf("sessions within the grace: got %d, want 1", got)
	}
	e.clock.Advance(time.Second)
	e.sfu.sweep()
	if got := e.sessionCount(); got != 0 {
		t.Fatalf("sessions after the grace: got %d, want 0", got)
	}
}

func TestSilentViewerDoesNotDelayOthers(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ViewerQueue = 16 })
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.waitLive("live/cam")
	silent, res := e.view("live/cam", tokView, false)
	if silent == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	v, res := e.view("live/cam", tokView, true)
	if v == nil {
		t.Fatalf("view: got %d", res.StatusCode)
	}
	eventually(t, 20*time.Second, "200 video packets at the reading viewer", func() bool { return len(v.received(true, 1)) >= 200 })
	got := v.received(true, 1)
	if span, n := got[len(got)-1].n-got[0].n+1, uint32(len(got)); span > n+5 {
		t.Errorf("the reading viewer missed packets: span %d, received %d", span, n)
	}
	e.sfu.mu.Lock()
	var drops []uint64
	for _, d := range e.sfu.streams["live/cam"].slots[1].viewers() {
		drops = append(drops, d.queueFull.Load())
	}
	e.sfu.mu.Unlock()
	if len(drops) != 2 {
		t.Fatalf("video viewers: got %d, want 2", len(drops))
	}
	// Stats sums every track's counters; a closed session's counts stay in the sums (a
	// Prometheus counter never goes down).
	before := e.sfu.Stats()
	if before.PacketsReceived < 200 || before.PacketsForwarded < 200 || before.Viewers != 2 || before.Publishers != 1 {
		t.Fatalf("stats: %+v, want ≥ 200 received and forwarded, 2 viewers, 1 publisher", before)
	}
	e.sfu.mu.Lock()
	var viewer *session
	for _, sess := range e.sfu.sessions {
		if sess.kind == KindRead && viewer == nil {
			viewer = sess
		}
	}
	e.sfu.mu.Unlock()
	e.sfu.closeSession(viewer, "test")
	after := e.sfu.Stats()
	if after.Viewers != 1 || after.PacketsForwarded < before.PacketsForwarded || after.PacketsReceived < before.PacketsReceived ||
		after.Dropped["queue_full"] < before.Dropped["queue_full"] || after.Dropped["not_connected"] < before.Dropped["not_connected"] {
		t.Errorf("after a viewer closed: %+v, want 1 viewer and no count below %+v", after, before)
	}
	e.sfu.mu.Lock()
	_, retiring := e.sfu.retiring[viewer]
	e.sfu.mu.Unlock()
	if retiring {
		t.Error("the closed viewer is still retiring after its close returned")
	}
}

func TestKickAPI(t *testing.T) {
	e := newEnv(t, nil)
	if pub, res := e.publish("live/cam", tokPub, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	id := e.sfu.Sessions()[0].ID
	tests := []struct {
		name  string
		id    string
		token string
		want  int
	}{
		{"no credentials", id, "", http.StatusUnauthorized},
		{"not an admin", id, tokPub, http.StatusForbidden},
		{"unknown id", "nope", tokAdmin, http.StatusNotFound},
		{"admin", id, tokAdmin, http.StatusNoContent},
		{"already gone", id, tokAdmin, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustStatus(t, e.do(http.MethodDelete, "/api/v1/sessions/"+tt.id, tt.token, "", ""), tt.want)
		})
	}
	if got := e.sessionCount(); got != 0 {
		t.Errorf("sessions: got %d, want 0", got)
	}
}

func TestRecheckClosesRevokedSessions(t *testing.T) {
	e := newEnv(t, nil)
	if pub, res := e.publish("live/cam", tokPub, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	if got := e.sfu.Recheck(t.Context()); got != 0 {
		t.Errorf("Recheck with unchanged grants closed %d sessions, want 0", got)
	}
	e.revoke.Store(true)
	if got := e.sfu.Recheck(t.Context()); got != 1 {
		t.Errorf("Recheck after revocation closed %d sessions, want 1", got)
	}
	if got := e.sessionCount(); got != 0 {
		t.Errorf("sessions: got %d, want 0", got)
	}
}

// TestRecheckKeepsSessionsWhenUndecided: a re-check during which the backend could not decide
// (IdP or upstream down) keeps the session and its previous grant expiry; a real denial ends it.
func TestRecheckKeepsSessionsWhenUndecided(t *testing.T) {
	e := newEnv(t, nil)
	if pub, res := e.publish("live/cam", tokShort, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	before := e.sfu.Sessions()
	if len(before) != 1 || before[0].Expires.IsZero() {
		t.Fatalf("sessions: got %+v, want one with an expiry", before)
	}
	e.broken.Store(true)
	if got := e.sfu.Recheck(t.Context()); got != 0 {
		t.Errorf("Recheck while the backend cannot decide closed %d sessions, want 0", got)
	}
	after := e.sfu.Sessions()
	if len(after) != 1 || !after[0].Expires.Equal(before[0].Expires) {
		t.Fatalf("sessions after an undecided recheck: got %+v, want the session with expiry %v", after, before[0].Expires)
	}
	e.broken.Store(false)
	e.revoke.Store(true)
	if got := e.sfu.Recheck(t.Context()); got != 1 {
		t.Errorf("Recheck after a real denial closed %d sessions, want 1", got)
	}
	if got := e.sessionCount(); got != 0 {
		t.Errorf("sessions: got %d, want 0", got)
	}
}

// TestStreamKeyRename publishes to a path that is a stream key: the session, its events, its
// Location and the log name only the public path, viewers find it there (also a viewer whose
// read key is renamed to it), and a key that maps to an unusable path is refused.
func TestStreamKeyRename(t *testing.T) {
	e := newEnv(t, nil)
	pub, res := e.publish(keyPath, tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d, want 201 (%s)", res.StatusCode, readAll(t, res))
	}
	if strings.Contains(pub.location, streamKey) {
		t.Errorf("Location %q names the stream key", pub.location)
	}
	e.waitLive("live/alice")
	if got := e.sfu.Sessions(); len(got) != 1 || got[0].Path != "live/alice" {
		t.Fatalf("sessions: got %+v, want one on live/alice", got)
	}
	v, res := e.view("live/alice", tokView, false)
	if v == nil {
		t.Fatalf("view live/alice: got %d, want 201 (%s)", res.StatusCode, readAll(t, res))
	}
	defer v.close()
	if got := e.sfu.Recheck(context.Background()); got != 0 {
		t.Errorf("Recheck closed %d sessions, want 0 (the key still maps to live/alice)", got)
	}
	if _, res := e.publish(badKeyPath, tokPub, 2); res.StatusCode != http.StatusForbidden {
		t.Errorf("publish to a key with an unusable rename: got %d, want 403", res.StatusCode)
	} else if body := readAll(t, res); strings.Contains(body, streamKey) {
		t.Errorf("the refusal names the stream key: %q", body)
	}
	// A viewer holding a stream key with a read grant plays the public path it maps to.
	kv, res := e.view(keyPath, tokView, false)
	if kv == nil {
		t.Fatalf("view the stream key: got %d, want 201 (%s)", res.StatusCode, readAll(t, res))
	}
	defer kv.close()
	if strings.Contains(kv.location, streamKey) {
		t.Errorf("Location %q names the stream key", kv.location)
	}
	viewers := 0
	for _, si := range e.sfu.Sessions() {
		if si.Kind == KindRead {
			viewers++
			if si.Path != "live/alice" {
				t.Errorf("viewer session on %q, want live/alice", si.Path)
			}
		}
	}
	if viewers != 2 {
		t.Errorf("viewer sessions: got %d, want 2", viewers)
	}
	if got := e.sfu.Recheck(context.Background()); got != 0 {
		t.Errorf("Recheck closed %d sessions, want 0 (the read key still maps to live/alice)", got)
	}
	if _, res := e.view(badKeyPath, tokView, false); res.StatusCode != http.StatusForbidden {
		t.Errorf("view a key with an unusable rename: got %d, want 403", res.StatusCode)
	} else if body := readAll(t, res); strings.Contains(body, streamKey) {
		t.Errorf("the refusal names the stream key: %q", body)
	}
	mustStatus(t, e.do(http.MethodDelete, pub.location, tokPub, "", ""), http.StatusOK)
	if got, want := e.rec.Count(live.Published, "live/alice"), 1; got != want {
		t.Errorf("Published events on live/alice: got %d, want %d", got, want)
	}
	if got, want := e.rec.Count(live.Unpublished, "live/alice"), 1; got != want {
		t.Errorf("Unpublished events on live/alice: got %d, want %d", got, want)
	}
	for _, ev := range e.rec.Events() {
		if strings.Contains(ev.Path+ev.Session+ev.Identity, streamKey) {
			t.Errorf("event %+v names the stream key", ev)
		}
	}
}

// TestHandBuiltConfigEnforcesExpiry: zero values are the safe ones: a Config{} built by hand (not
// from DefaultConfig or YAML) ends sessions whose grant expired.
func TestHandBuiltConfigEnforcesExpiry(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		*c = Config{UDPPort: c.UDPPort, IncludeLoopback: true, Now: c.Now, ConnectTimeout: c.ConnectTimeout, AllowPrivateCandidates: true}
	})
	if pub, res := e.publish("live/cam", tokShort, 1); pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	e.clock.Advance(time.Minute)
	e.sfu.sweep()
	if got := e.sessionCount(); got != 0 {
		t.Errorf("sessions after the grant expired: got %d, want 0", got)
	}
}
