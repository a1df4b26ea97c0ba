package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type observations []Observation

func (o *observations) Observe(ob Observation) { *o = append(*o, ob) }

// keyPaths is a backend that knows one stream key and says nothing about requests.
type keyPaths struct{ key, public string }

func (keyPaths) Authorize(context.Context, *Request) (Decision, error) { return Decision{}, nil }
func (k keyPaths) PublicPath(path string) (string, bool) {
	if strings.HasSuffix(path, k.key) {
		return k.public, true
	}
	return "", false
}

// TestObserverSeesTheLoggedPath: the observer gets every decision with exactly the fields and
// the path of its log line, so a stream key used as the path never reaches it.
func TestObserverSeesTheLoggedPath(t *testing.T) {
	const secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	renamed := Allowing("alice", time.Time{})
	renamed.Rename, renamed.KeyID = "live/alice", "key_abc"
	deniedKey := Denying(Unauthenticated, "key_expired", "stream key expired")
	deniedKey.Rename = "live/alice"
	allowAll := Allowing("bob", time.Time{})
	for _, tc := range []struct {
		name     string
		methods  []Method
		path     string
		canRen   bool
		wantPath string
		wantOut  Outcome
	}{
		{"plain allow", []Method{{Name: "users", Backend: fixed(allowAll, nil)}}, "live/cam", false, "live/cam", Allow},
		{"key renamed", []Method{{Name: "keys", Backend: fixed(renamed, nil)}}, "live/" + secret, true, "live/alice", Allow},
		{"key denied", []Method{{Name: "keys", Backend: fixed(deniedKey, nil)}}, "live/" + secret, false, "live/alice", Unauthenticated},
		{"rename refused", []Method{{Name: "keys", Backend: fixed(renamed, nil)}}, "live/" + secret, false, "live/alice", Forbidden},
		{"invalid path", []Method{{Name: "users", Backend: fixed(allowAll, nil)}}, "live/../" + secret, false, "", Forbidden},
		{"key with no public path", []Method{{Name: "keys", Backend: keyPaths{secret, ""}}, {Name: "users", Backend: fixed(allowAll, nil)}}, "live/" + secret, false, "", Forbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			var got observations
			e := NewEngine(NewChain(tc.methods...), slog.New(slog.NewJSONHandler(&buf, nil)), WithObserver(&got))
			e.Authorize(context.Background(), &Request{Action: ActionPublish, Path: tc.path, Protocol: "rtmp", Source: "nginx-rtmp",
				IP: netip.MustParseAddr("192.0.2.7"), CanRename: tc.canRen, User: "u", Pass: "p"})
			if len(got) != 1 {
				t.Fatalf("got %d observations, want 1", len(got))
			}
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("log line %q: %v", buf.String(), err)
			}
			o := got[0]
			if o.Path != tc.wantPath || line["path"] != o.Path {
				t.Errorf("path: observed %q, logged %q, want %q", o.Path, line["path"], tc.wantPath)
			}
			if o.Outcome != tc.wantOut || line["result"] != o.Outcome.String() || line["reason"] != o.Reason || line["backend"] != o.Method {
				t.Errorf("observed %v/%q/%q, logged %v", o.Outcome, o.Reason, o.Method, line)
			}
			if o.Action != ActionPublish || o.Protocol != "rtmp" || o.Source != "nginx-rtmp" || o.IP.String() != "192.0.2.7" || o.Time.IsZero() {
				t.Errorf("observation %+v", o)
			}
			if strings.Contains(buf.String(), secret) {
				t.Errorf("the log holds the key: %s", buf.String())
			}
		})
	}
}
