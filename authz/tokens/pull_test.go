package tokens

import (
	"errors"
	"testing"
	"time"

	"gatehouse/authz"
)

func TestPullTokens(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	dir := t.TempDir()
	iss, err := LoadIssuer(dir, IssuerClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	peer, err := LoadIssuer(dir, IssuerClock(clock)) // another node with a copy of the key directory
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadIssuer(t.TempDir(), IssuerClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	claims := PullClaims{Node: "edge-1", Path: "live/cam", Hop: 2, Via: []string{"edge-2", "edge-1"}}
	tok, err := iss.IssuePull(claims, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := peer.VerifyPull(tok)
	if err != nil {
		t.Fatalf("a node with the same key: %v", err)
	}
	if got.Node != claims.Node || got.Path != claims.Path || got.Hop != 2 || len(got.Via) != 2 || !got.Expires.Equal(now.Add(30*time.Second)) {
		t.Errorf("claims: got %+v, want %+v", got, claims)
	}
	perm, _ := ParseAllow("read:live/cam")
	viewer, err := iss.Issue("bob", []authz.Permission{perm}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	otherTok, _ := other.IssuePull(claims, 30*time.Second)
	for _, tc := range []struct {
		name, tok string
		at        time.Time
	}{
		{"viewer token", viewer, now},
		{"another fleet", otherTok, now},
		{"expired", tok, now.Add(time.Minute)},
		{"garbage", "eyJ.x.y", now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := LoadIssuer(dir, IssuerClock(func() time.Time { return tc.at }))
			if _, err := v.VerifyPull(tc.tok); !errors.Is(err, ErrPullToken) {
				t.Errorf("got %v, want ErrPullToken", err)
			}
		})
	}
	for _, bad := range []struct {
		name string
		c    PullClaims
		ttl  time.Duration
	}{
		{"no node", PullClaims{Path: "p", Hop: 1}, time.Second},
		{"hop 0", PullClaims{Node: "n", Path: "p"}, time.Second},
		{"too long", PullClaims{Node: "n", Path: "p", Hop: 1}, time.Hour},
	} {
		if _, err := iss.IssuePull(bad.c, bad.ttl); !errors.Is(err, ErrIssuer) {
			t.Errorf("%s: got %v, want ErrIssuer", bad.name, err)
		}
	}
}
