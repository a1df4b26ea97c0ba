package sfu

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCandidatePolicy(t *testing.T) {
	tests := []struct {
		name, addr          string
		public, withPrivate bool // allowed by the default policy, and with AllowPrivateCandidates
	}{
		{"public IPv4", "198.51.100.7", true, true},
		{"public IPv6", "2001:db8::7", true, true},
		{"loopback", "127.0.0.1", false, true},
		{"IPv6 loopback", "::1", false, true},
		{"RFC 1918", "192.168.1.10", false, true},
		{"RFC 1918 10/8", "10.1.2.3", false, true},
		{"ULA", "fd00::2", false, true},
		{"link-local", "169.254.1.1", false, true},
		{"IPv6 link-local", "fe80::1", false, true},
		{"CGNAT shared space", "100.64.0.1", false, true},
		{"mapped loopback", "::ffff:127.0.0.1", false, true},
		{"multicast", "224.0.0.251", false, false},
		{"IPv6 multicast", "ff02::1", false, false},
		{"unspecified", "0.0.0.0", false, false},
		{"this network", "0.1.2.3", false, false},
		{"broadcast", "255.255.255.255", false, false},
		{"mDNS name", "4b1c5e0a-1111-2222-3333-444455556666.local", false, false},
		{"hostname", "internal.example.com", false, false},
		{"zoned IPv6 is its link-local address (pion drops the zone)", "fe80::1%eth0", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := "candidate:1 1 udp 2130706431 " + tt.addr + " 5000 typ host"
			for _, p := range []struct {
				policy candidatePolicy
				want   bool
			}{{candidatePolicy{max: 20}, tt.public}, {candidatePolicy{max: 20, allowPrivate: true}, tt.withPrivate}} {
				a, _, ok := candidateTarget(line)
				if got := ok && p.policy.allowed(a); got != p.want {
					t.Errorf("allowPrivate=%v: got %v, want %v", p.policy.allowPrivate, got, p.want)
				}
			}
		})
	}
}

// candidateOffer is a minimal offer (two bundled sections) naming n candidates at 127.0.0.1
// (ports from 40000) in its first section, plus extra lines.
func candidateOffer(n int, extra ...string) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n")
	b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:uf\r\na=ice-pwd:pwpwpwpwpwpwpwpwpwpwpwpw\r\n")
	for i := range n {
		fmt.Fprintf(&b, "a=candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host\r\n", i, 40000+i)
	}
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n")
	for i := range n { // the same candidates again in the bundled section: counted once
		fmt.Fprintf(&b, "a=candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host\r\n", i, 40000+i)
	}
	return b.String()
}

func TestFilterOffer(t *testing.T) {
	public := "a=candidate:9 1 udp 1 198.51.100.7 5000 typ srflx raddr 0.0.0.0 rport 0"
	mdns := "a=candidate:8 1 udp 1 0b0e2a8c-1d4e-4f5a-8b6c-7d8e9f0a1b2c.local 5001 typ host"
	tests := []struct {
		name      string
		policy    candidatePolicy
		offer     string
		wantErr   bool
		wantCount int
	}{
		{"twenty duplicated across sections", candidatePolicy{max: 20, allowPrivate: true}, candidateOffer(20), false, 20},
		{"twenty-one", candidatePolicy{max: 20, allowPrivate: true}, candidateOffer(21), true, 0},
		{"hundred", candidatePolicy{max: 20, allowPrivate: true}, candidateOffer(100), true, 0},
		{"hundred private, not allowed: all dropped", candidatePolicy{max: 20}, candidateOffer(100, public), false, 1},
		{"mDNS dropped", candidatePolicy{max: 20, allowPrivate: true}, candidateOffer(1, mdns), false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, set, err := tt.policy.filterOffer(tt.offer)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %d candidates, want an error", len(set))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(set) != tt.wantCount {
				t.Errorf("usable candidates: got %d, want %d", len(set), tt.wantCount)
			}
			lines := strings.Count(out, "a=candidate:")
			if !tt.policy.allowPrivate && strings.Contains(out, "127.0.0.1") || strings.Contains(out, ".local") {
				t.Errorf("a refused candidate survived:\n%s", out)
			}
			if lines < len(set) || lines > 2*len(set) {
				t.Errorf("candidate lines: got %d for %d usable candidates", lines, len(set))
			}
		})
	}
}

// TestOfferCandidateLimits: an offer naming too many candidates is refused before any
// PeerConnection exists; private targets never reach the ICE agent unless allowed, and when
// allowed (the harness default) the agent really sends its checks there.
func TestOfferCandidateLimits(t *testing.T) {
	t.Run("too many", func(t *testing.T) {
		e := newEnv(t, nil)
		var cands strings.Builder
		for i := range 100 {
			fmt.Fprintf(&cands, "a=candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host\r\n", i, 40000+i)
		}
		offer := strings.Replace(offerSDP(t, e), "a=mid:0\r\n", "a=mid:0\r\n"+cands.String(), 1)
		pcs := e.sfu.pcs.Load()
		res := e.do(http.MethodPost, "/whip/live/cam", tokPub, typeSDP, offer)
		if body := mustStatus(t, res, http.StatusBadRequest); !strings.Contains(body, "ICE candidates") {
			t.Errorf("body: got %q, want the reason", body)
		}
		if got := e.sfu.pcs.Load(); got != pcs {
			t.Errorf("PeerConnections: got %d, want %d", got, pcs)
		}
	})
	// withCandidate is a client offer whose only candidate is cand.
	withCandidate := func(t *testing.T, e *env, cand string) string {
		offer := strings.Replace(offerSDP(t, e), "a=mid:0\r\n", "a=mid:0\r\n"+cand+"\r\n", 1)
		if strings.Count(offer, "a=candidate:") != 1 {
			t.Fatalf("test offer: want exactly one candidate:\n%s", offer)
		}
		return offer
	}
	// A loopback socket the offer names as its only candidate.
	target := func(t *testing.T) (*net.UDPConn, string) {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		port := conn.LocalAddr().(*net.UDPAddr).Port
		return conn, fmt.Sprintf("a=candidate:1 1 udp 2130706431 127.0.0.1 %d typ host", port)
	}
	t.Run("private dropped by default", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.AllowPrivateCandidates = false })
		_, cand := target(t)
		offer := withCandidate(t, e, cand)
		mustStatus(t, e.do(http.MethodPost, "/whip/live/cam", tokPub, typeSDP, offer), http.StatusCreated)
		sess := e.onlySession()
		if rd := sess.pc.RemoteDescription().SDP; strings.Contains(rd, "a=candidate:") {
			t.Errorf("the ICE agent got a private candidate:\n%s", rd)
		}
	})
	t.Run("private allowed", func(t *testing.T) {
		e := newEnv(t, nil)
		conn, cand := target(t)
		offer := withCandidate(t, e, cand)
		mustStatus(t, e.do(http.MethodPost, "/whip/live/cam", tokPub, typeSDP, offer), http.StatusCreated)
		if rd := e.onlySession().pc.RemoteDescription().SDP; !strings.Contains(rd, cand) {
			t.Errorf("the ICE agent did not get the allowed candidate:\n%s", rd)
		}
		// The agent really sends its checks there (bounded wait for the first one).
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 1500)
		if _, err := conn.Read(buf); err != nil {
			t.Fatalf("no connectivity check reached the allowed candidate: %v", err)
		}
	})
}

// onlySession returns the SFU's one session.
func (e *env) onlySession() *session {
	e.t.Helper()
	e.sfu.mu.Lock()
	defer e.sfu.mu.Unlock()
	if len(e.sfu.sessions) != 1 {
		e.t.Fatalf("sessions: got %d, want 1", len(e.sfu.sessions))
	}
	for _, s := range e.sfu.sessions {
		return s
	}
	return nil
}

// TestTrickleCandidateLimit: trickled candidates count toward the session's limit together
// with the offer's; a PATCH over it is refused whole, and refused targets never count.
func TestTrickleCandidateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxCandidates = 5 })
	pub, res := e.publish("live/cam", tokPub, 1)
	if pub == nil {
		t.Fatalf("publish: got %d", res.StatusCode)
	}
	sess := e.onlySession()
	sess.sig.Lock()
	have := len(sess.cands) // the test client's own loopback candidates
	sess.sig.Unlock()
	if have == 0 || have >= 5 {
		t.Fatalf("offer candidates: got %d, want 1-4", have)
	}
	frag := func(ports ...int) string {
		var b strings.Builder
		b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n")
		for _, p := range ports {
			fmt.Fprintf(&b, "a=candidate:%d 1 udp 1 127.0.0.1 %d typ host\r\n", p, p)
		}
		b.WriteString("a=candidate:7 1 udp 1 224.0.0.251 5353 typ host\r\n") // never counted
		return b.String()
	}
	free := 5 - have
	var over []int
	for i := range free + 1 {
		over = append(over, 41000+i)
	}
	body := mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, frag(over...)), http.StatusBadRequest)
	if !strings.Contains(body, "ICE candidates") {
		t.Errorf("body: got %q, want the reason", body)
	}
	mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, frag(over[:free]...)), http.StatusNoContent)
	mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, frag(over[:free]...)), http.StatusNoContent) // repeats are free
	mustStatus(t, e.do(http.MethodPatch, pub.location, tokPub, typeFrag, frag(42000)), http.StatusBadRequest)
}
