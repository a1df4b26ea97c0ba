package authz

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestRecheckIgnoresBruteForceBans: brute-force bans (an address, a user name) are earned by
// someone's failures, which need not be the running session's own: 50 wrong passwords for alice
// from anywhere, or a guesser behind alice's NAT. A re-check of alice's running session must not
// end it for them (it used to: the ban check ran before every request kind). A new attempt from
// the banned address or name is still refused, and an operator's ban of the identity still ends
// the session at its re-check.
func TestRecheckIgnoresBruteForceBans(t *testing.T) {
	const home = "198.51.100.20" // alice's address, shared with a guesser behind the same NAT
	for _, tt := range []struct {
		name  string
		fail  func(r *bfRig, i int)
		count int
	}{
		{"user name banned from elsewhere", func(r *bfRig, i int) { r.ask(fmt.Sprintf("203.0.113.%d", i%200+1), "alice", fmt.Sprint("x", i)) }, 50},
		{"address banned by a neighbour", func(r *bfRig, i int) { r.ask(home, "mallory", fmt.Sprint("x", i)) }, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newBFRig(t, DefaultBruteForce())
			for i := range tt.count {
				tt.fail(r, i)
			}
			recheck := func() Decision {
				return r.e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/alice", Protocol: "rtmp",
					IP: netip.MustParseAddr(home), User: "alice", Pass: "right", Source: "nginx-rtmp", Kind: KindRecheck})
			}
			if d := r.ask(home, "alice", "right"); d.Reason != ReasonBanned {
				t.Fatalf("a new attempt: got %+v, want banned (the ban exists)", d)
			}
			if d := recheck(); !d.Allowed() {
				t.Errorf("re-check of the running session: got %+v, want allowed (a brute-force ban is not the session's doing)", d)
			}
			if err := r.e.Ban("", "alice", r.now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if d := recheck(); d.Reason != ReasonBanned || d.Keep() {
				t.Errorf("re-check after an operator's ban: got %+v, want banned", d)
			}
		})
	}
}
