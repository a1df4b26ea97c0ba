package jwks

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
)

const fuzzSecret = "fuzz-secret-fuzz-secret-fuzz-secret!"

// FuzzAuthorize feeds arbitrary tokens (as Token and as Pass) through the whole verification path:
// header/iss peeking, provider routing, golang-jwt, claims and permissions parsing, the cache.
// Nothing may panic or error (no provider needs the network), no decision may quote the token,
// and only genuinely signed tokens (subject alice) may be allowed.
func FuzzAuthorize(f *testing.F) {
	clk := newClock()
	iss, err := tokens.LoadIssuer(f.TempDir(), tokens.IssuerClock(clk.Now))
	if err != nil {
		f.Fatal(err)
	}
	b, err := New(Config{Providers: []Provider{{Name: "hs", HMACSecret: fuzzSecret, Issuer: "hs-issuer", ClaimKey: "perms",
		Roles: map[string][]authz.Permission{"r": mustAllow(f, "read")}, RolesClient: "c"}}},
		WithIssuer(iss), WithClock(clk.Now))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })

	tok, err := iss.Issue("alice", mustAllow(f, "publish:live/alice", "read:~^live/"), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "hs-issuer", "sub": "alice", "exp": clk.Now().Add(time.Hour).Unix(),
		"perms":        `[{"action":"publish","path":"live/alice"}]`,
		"realm_access": map[string]any{"roles": []string{"r"}}, "scope": "r x",
	})
	s, err := hs.SignedString([]byte(fuzzSecret))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s)

	f.Fuzz(func(t *testing.T, tok string) {
		for _, req := range []*authz.Request{
			{Action: authz.ActionPublish, Path: "live/alice", Protocol: "rtsp", Token: tok},
			{Action: authz.ActionRead, Path: "live/x", Protocol: "srt", User: "u", Token: tok, TokenFrom: authz.OriginUserInfo},
			{Action: authz.ActionRead, Path: "live/x", Protocol: "hls", Token: tok, Query: "token=" + tok},
		} {
			d, err := b.Authorize(context.Background(), req)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if d.Outcome == authz.Allow && d.Identity != "alice" {
				t.Fatalf("allowed identity %q", d.Identity)
			}
			if len(tok) >= 8 && (strings.Contains(d.Message, tok) || strings.Contains(d.Reason, tok)) {
				t.Fatalf("decision quotes the token: %+v", d)
			}
		}
	})
}

// claimPermission is one entry of mediamtx_permissions as authz/tokens issues it.
type claimPermission struct {
	Action string `json:"action"`
	Path   string `json:"path,omitempty"`
}

// FuzzParsePermissions checks the strict MediaMTX permissions claim parser: no panics, and
// whatever it accepts has valid actions and survives a round trip through the issued format.
func FuzzParsePermissions(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		perms, err := parsePermissions(raw)
		if err != nil {
			return
		}
		out := make([]claimPermission, 0, len(perms))
		for _, p := range perms {
			if _, err := authz.ParseAction(string(p.Action)); err != nil {
				t.Fatalf("accepted action %q", p.Action)
			}
			c := claimPermission{Action: string(p.Action)}
			if p.Action.HasPath() {
				c.Path = p.Path.String()
			}
			out = append(out, c)
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parsePermissions(b)
		if err != nil || len(again) != len(perms) {
			t.Fatalf("round trip of %s: %v (%d vs %d)", b, err, len(again), len(perms))
		}
	})
}

// FuzzParseKeySet checks the JWKS document parser: no panics; an accepted set has usable keys.
func FuzzParseKeySet(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		ks, _, err := parseKeySet(body)
		if err != nil {
			return
		}
		if len(ks.all) == 0 {
			t.Fatal("accepted a set without keys")
		}
		for _, k := range ks.all {
			if k.pub == nil {
				t.Fatal("nil key")
			}
		}
	})
}
