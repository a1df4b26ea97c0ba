package authz

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"gatehouse/authz/logline"
)

// TestDecisionLogSameAsSlog: with WithDecisionLog the engine writes, for every shape of
// decision, the line its slog logger would write (apart from the time of writing), in both
// formats; a secret path still never reaches it.
func TestDecisionLogSameAsSlog(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	allowExp := Allowing("alice \"the\" admin", exp)
	allowExp.KeyID = "k1"
	undecided := Denying(Forbidden, ReasonTimeout, "x")
	undecided.Undecided = true
	tests := []struct {
		name string
		d    Decision
		req  Request
	}{
		{"allow", Allowing("alice", time.Time{}), Request{Action: ActionPublish, Path: "live/cam", Protocol: "rtmp", Source: "mediamtx", IP: netip.MustParseAddr("203.0.113.7"), User: "alice", Pass: "pw"}},
		{"deny with credentials (warn)", Denying(Unauthenticated, ReasonBadCredentials, "no"), Request{Action: ActionRead, Path: "live/a b", Source: "srs", IP: netip.MustParseAddr("2001:db8::1"), User: "bob", Pass: "pw"}},
		{"no credentials, no ip", Denying(Unauthenticated, ReasonNoCredentials, "no"), Request{Action: ActionRead, Path: "live/é=x"}},
		{"expiry not enforced, key id, quoted identity", allowExp, Request{Action: ActionPublish, Path: "live/cam", Source: "nginx-rtmp", IP: netip.MustParseAddr("fe80::1%eth 0"), Key: "sekret"}},
		{"expiry enforced", Allowing("alice", exp), Request{Action: ActionRead, Path: "live/cam", CanEndAt: true}},
		{"undecided", undecided, Request{Action: ActionRead, Path: "live/cam", Token: "t"}},
	}
	timeRe := regexp.MustCompile(`^(time=\S+|\{"time":"[^"]+")`)
	for _, json := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				chain := NewChain(Method{Name: "internal", Backend: bound{d: tt.d}})
				var viaSlog, viaLine bytes.Buffer
				var h slog.Handler = slog.NewTextHandler(&viaSlog, nil)
				if json {
					h = slog.NewJSONHandler(&viaSlog, nil)
				}
				a := NewEngine(chain, slog.New(h).With("component", "authz"))
				b := NewEngine(chain, slog.New(slog.DiscardHandler), WithDecisionLog(logline.New(&viaLine, json, nil, slog.String("component", "authz"))))
				r1, r2 := tt.req, tt.req
				a.Authorize(context.Background(), &r1)
				b.Authorize(context.Background(), &r2)
				got, want := timeRe.ReplaceAllString(viaLine.String(), "T"), timeRe.ReplaceAllString(viaSlog.String(), "T")
				// took differs between the two engines: compare it by shape only.
				tookRe := regexp.MustCompile(`took=[0-9.]+[µnm]?s|"took":[0-9]+`)
				got, want = tookRe.ReplaceAllString(got, "took"), tookRe.ReplaceAllString(want, "took")
				if got != want || got == "" {
					t.Errorf("json=%v:\ngot  %s\nwant %s", json, got, want)
				}
			})
		}
	}
}
