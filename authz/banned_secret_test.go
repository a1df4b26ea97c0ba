package authz

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const bannedSecret = "ghk_0f1e2d3c4b5a69788796a5b4c3d2e1f0"

// bannedKeys knows one stream key, used as the stream name live/<key>, public path live/alice.
type bannedKeys struct{}

func (bannedKeys) Authorize(_ context.Context, r *Request) (Decision, error) {
	if r.Path == "live/"+bannedSecret {
		d := Allowing("alice", time.Time{})
		d.Rename = "live/alice"
		return d, nil
	}
	if r.HasCredentials() {
		return Denying(Unauthenticated, ReasonBadCredentials, "no"), nil
	}
	return Decision{}, nil
}

func (bannedKeys) PublicPath(p string) (string, bool) {
	if p == "live/"+bannedSecret {
		return "live/alice", true
	}
	return "", false
}

type bannedObs struct{ paths []string }

func (o *bannedObs) Observe(ob Observation) { o.paths = append(o.paths, ob.Path) }

// TestBannedRequestKeepsStreamKeyOutOfLogs: a client whose address is under a brute-force ban
// publishes with its stream key as the stream name. The engine refuses it before any method
// runs; the path must still be resolved through SecretPaths, or the log line and the decisions
// observer get the key (they did).
func TestBannedRequestKeepsStreamKeyOutOfLogs(t *testing.T) {
	var buf bytes.Buffer
	obs := &bannedObs{}
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	e := NewEngine(NewChain(Method{Name: "keys", Backend: bannedKeys{}}).WithPolicy(Policy{BruteForce: DefaultBruteForce()}),
		slog.New(slog.NewTextHandler(&buf, nil)), WithObserver(obs), WithClock(func() time.Time { return now }))
	ip := netip.MustParseAddr("198.51.100.9")
	for i := range 10 { // a guesser (OBS repeating one mistyped key counts once: TestRepeatedFailureCountsOnce)
		e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/ghk_typo", Key: fmt.Sprint("guess", i), IP: ip, Source: "nginx-rtmp"})
	}
	buf.Reset()
	obs.paths = nil
	d := e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: "live/" + bannedSecret, IP: ip, Source: "nginx-rtmp"})
	if d.Reason != ReasonBanned {
		t.Fatalf("want banned, got %+v", d)
	}
	if strings.Contains(buf.String(), bannedSecret) || strings.Contains(strings.Join(obs.paths, " "), bannedSecret) {
		t.Errorf("a banned request's stream key reached the log or the observer:\nlog: %s\nobserved: %q", buf.String(), obs.paths)
	}
}
