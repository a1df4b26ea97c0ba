package sfu

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSmuggledPrivateCandidates: with AllowPrivateCandidates off, a candidate that the
// filter reads as public (or does not see) but pion reads as 127.0.0.1 must not receive checks.
func TestSmuggledPrivateCandidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		line func(port int) string
		// how the candidate is spliced in after a=mid:0\r\n
	}{
		{"tab in transport", func(port int) string {
			return fmt.Sprintf("a=candidate:1 1 udp\t1\t198.51.100.7 2130706431 127.0.0.1 %d typ host\r\n", port)
		}},
		{"nbsp in transport", func(port int) string {
			return fmt.Sprintf("a=candidate:1 1 udp\u00a01\u00a0198.51.100.7 2130706431 127.0.0.1 %d typ host\r\n", port)
		}},
		{"CR before the line", func(port int) string {
			return fmt.Sprintf("\ra=candidate:1 1 udp 2130706431 127.0.0.1 %d typ host\r\n", port)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.AllowPrivateCandidates = false })
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			port := conn.LocalAddr().(*net.UDPAddr).Port
			offer := strings.Replace(offerSDP(t, e), "a=mid:0\r\n", "a=mid:0\r\n"+tc.line(port), 1)
			res := e.do(http.MethodPost, "/whip/live/cam", tokPub, typeSDP, offer)
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				return // refused outright: nothing is sent anywhere
			}
			_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 1500)
			if n, from, err := conn.ReadFromUDP(buf); err == nil {
				t.Errorf("a private candidate got a %d-byte packet from %v (STUN magic cookie %x)", n, from, buf[4:8])
			}
		})
	}
}

// TestCRPrefixedCandidatesCounted: candidate lines that begin with a CR are not seen by filterOffer
// (neither filtered nor counted) yet pion's SDP lexer skips the CR and parses them.
func TestCRPrefixedCandidatesCounted(t *testing.T) {
	var extra []string
	for i := range 100 {
		extra = append(extra, fmt.Sprintf("\ra=candidate:%d 1 udp 2130706431 198.51.100.%d 5000 typ host", i, i+1))
	}
	out, set, err := candidatePolicy{max: 20}.filterOffer(candidateOffer(0, extra...))
	if err != nil {
		return // refused: good
	}
	sd, perr := parseOffer(out + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n")
	n := 0
	if perr == nil {
		for _, md := range sd.MediaDescriptions {
			for _, a := range md.Attributes {
				if a.Key == "candidate" {
					n++
				}
			}
		}
	}
	t.Errorf("offer with 100 CR-prefixed candidates accepted: filter counted %d, pion's parser sees %d (parse err %v)", len(set), n, perr)
}
