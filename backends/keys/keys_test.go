package keys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

const (
	aliceKey = "a1ice0123456789abcdef0123456789a" // 32 chars, as `openssl rand -hex 16`
	bobKey   = "b0b-0123456789abcdef-xyz"
	oldKey   = "0ld0123456789abcdef0123456789abc"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sha(s string) string {
	d := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(d[:])
}

func decode(t *testing.T, src string) (Config, error) {
	t.Helper()
	var root struct {
		Keys Config `yaml:"stream_keys"`
	}
	err := conf.Decode("test.yml", []byte(src), func(k string) (string, bool) {
		switch k {
		case "ALICE_KEY":
			return aliceKey, true
		case "BOB_SHA":
			return sha(bobKey), true
		}
		return "", false
	}, &root)
	return root.Keys, err
}

func newBackend(t *testing.T, src string, now func() time.Time) *Backend {
	t.Helper()
	cfg, err := decode(t, src)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	b, err := New(cfg, now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

const goodConfig = `
stream_keys:
  keys:
    - key: ${ALICE_KEY}
      path: live/alice
      user: alice
    - key: ${BOB_SHA}
      path: live/bob
      actions: [publish, read]
      expires: 2026-03-01T13:00:00Z
`

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings, each must appear (with the line)
	}{
		{"empty key", "stream_keys:\n  keys:\n    - key: \"\"\n      path: live/a\n", []string{"test.yml:3:", "key is empty"}},
		{"short key", "stream_keys:\n  keys:\n    - key: short\n      path: live/a\n", []string{"test.yml:3:", "shorter than 16"}},
		{"bad chars", "stream_keys:\n  keys:\n    - key: \"abc/def0123456789xx\"\n      path: live/a\n", []string{"test.yml:3:", "only letters"}},
		{"bad digest", "stream_keys:\n  keys:\n    - key: sha256:abcd\n      path: live/a\n", []string{"test.yml:3:", "64 hex digits"}},
		{"digest of the empty key", "stream_keys:\n  keys:\n    - key: " + sha("") + "\n      path: live/a\n", []string{"test.yml:3:", "empty key"}},
		{"no path", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n", []string{"test.yml:3:", "path is empty"}},
		{"pattern path", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: live/*\n", []string{"test.yml:4:", "not a pattern"}},
		{"relay-looking path", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: live/rtmp://1.2.3.4/x\n", []string{"test.yml:4:", "contains one of"}},
		{"slash path", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: /live/a\n", []string{"test.yml:4:", "empty"}},
		{"bad action", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: live/a\n      actions: [api]\n", []string{"test.yml:5:", "no stream path"}},
		{"unknown action", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: live/a\n      actions: [push]\n", []string{"test.yml:5:", "unknown action"}},
		{"bad expires", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: live/a\n      expires: tomorrow\n", []string{"test.yml:5:", "RFC 3339"}},
		{"unknown field", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: live/a\n      secret: x\n", []string{"test.yml:5:", `unknown key "secret"`}},
		{"duplicate key", "stream_keys:\n  keys:\n    - key: " + aliceKey + "\n      path: live/a\n    - key: " + sha(aliceKey) + "\n      path: live/b\n", []string{"test.yml:5:", "same as keys[0]"}},
		{"all problems at once", "stream_keys:\n  keys:\n    - key: short\n      path: \"\"\n      expires: never\n", []string{"test.yml:3:", "test.yml:4:", "test.yml:5:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(t, tt.src)
			if !errors.Is(err, conf.ErrInvalid) {
				t.Fatalf("got err %v, want conf.ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error\n%v\nwant it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), aliceKey) {
				t.Errorf("error %q leaks the key", err)
			}
		})
	}
	t.Run("list form", func(t *testing.T) {
		cfg, err := decode(t, "stream_keys:\n  - key: "+aliceKey+"\n    path: live/a\n  - key: "+aliceKey+"\n    path: live/b\n")
		if err == nil || !strings.Contains(err.Error(), "test.yml:4:") {
			t.Fatalf("got %v (%d keys), want the duplicate reported at line 4", err, len(cfg.Keys))
		}
		cfg, err = decode(t, "stream_keys:\n  - key: "+aliceKey+"\n    path: live/a\n")
		if err != nil || len(cfg.Keys) != 1 {
			t.Fatalf("got %v, %d keys; want nil, 1", err, len(cfg.Keys))
		}
	})
	t.Run("short key not echoed", func(t *testing.T) {
		_, err := decode(t, "stream_keys:\n  keys:\n    - key: s3cr3tish\n      path: live/a\n")
		if err == nil || strings.Contains(err.Error(), "s3cr3tish") {
			t.Fatalf("got %v, want an error that does not contain the key", err)
		}
	})
}

func TestAuthorize(t *testing.T) {
	now := t0
	b := newBackend(t, goodConfig, func() time.Time { return now })
	tests := []struct {
		name       string
		req        authz.Request
		at         time.Time
		outcome    authz.Outcome
		reason     string
		identity   string
		rename     string
		hasExpires bool
	}{
		{"key as stream name renames", authz.Request{Action: authz.ActionPublish, Path: "live/" + aliceKey}, t0,
			authz.Allow, authz.ReasonAllowed, "alice", "live/alice", false},
		{"sha256-configured key as stream name", authz.Request{Action: authz.ActionPublish, Path: "live/" + bobKey}, t0,
			authz.Allow, authz.ReasonAllowed, "live/bob", "live/bob", true},
		{"key param on the public path", authz.Request{Action: authz.ActionPublish, Path: "live/alice", Key: aliceKey}, t0,
			authz.Allow, authz.ReasonAllowed, "alice", "", false},
		{"key param among other args", authz.Request{Action: authz.ActionPublish, Path: "live/alice", User: "x", Key: aliceKey}, t0,
			authz.Allow, authz.ReasonAllowed, "alice", "", false},
		{"key param on another path", authz.Request{Action: authz.ActionPublish, Path: "live/bob", Key: aliceKey}, t0,
			authz.Forbidden, ReasonWrongPath, "", "", false},
		{"key as name in another app", authz.Request{Action: authz.ActionPublish, Path: "other/" + aliceKey}, t0,
			authz.Forbidden, ReasonWrongPath, "", "live/alice", false},
		{"read not granted", authz.Request{Action: authz.ActionRead, Path: "live/" + aliceKey}, t0,
			authz.Forbidden, authz.ReasonNotPermitted, "alice", "live/alice", false},
		{"read granted", authz.Request{Action: authz.ActionRead, Path: "live/bob", Key: bobKey}, t0,
			authz.Allow, authz.ReasonAllowed, "live/bob", "", true},
		{"expired", authz.Request{Action: authz.ActionPublish, Path: "live/" + bobKey}, t0.Add(time.Hour),
			authz.Unauthenticated, ReasonKeyExpired, "", "live/bob", false},
		{"ordinary stream name abstains", authz.Request{Action: authz.ActionPublish, Path: "live/cam"}, t0,
			authz.Abstain, "", "", "", false},
		{"unknown key param", authz.Request{Action: authz.ActionPublish, Path: "live/alice", Key: oldKey}, t0,
			authz.Unauthenticated, authz.ReasonBadCredentials, "", "", false},
		{"key in the raw query is not read (creds extracts it)", authz.Request{Action: authz.ActionPublish, Path: "live/alice", Query: "key=" + aliceKey}, t0,
			authz.Abstain, "", "", "", false},
		{"password is not a key", authz.Request{Action: authz.ActionPublish, Path: "live/alice", User: "alice", Pass: aliceKey}, t0,
			authz.Abstain, "", "", "", false},
		{"token is not a key", authz.Request{Action: authz.ActionPublish, Path: "live/alice", Token: aliceKey}, t0,
			authz.Abstain, "", "", "", false},
		{"api action abstains", authz.Request{Action: authz.ActionAPI, Key: aliceKey}, t0,
			authz.Abstain, "", "", "", false},
		{"prefix of a key", authz.Request{Action: authz.ActionPublish, Path: "live/" + aliceKey[:20]}, t0,
			authz.Abstain, "", "", "", false},
		{"empty path", authz.Request{Action: authz.ActionPublish}, t0,
			authz.Abstain, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			d, err := b.Authorize(context.Background(), &tt.req)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if d.Outcome != tt.outcome || d.Reason != tt.reason {
				t.Errorf("got %v/%q, want %v/%q", d.Outcome, d.Reason, tt.outcome, tt.reason)
			}
			if d.Identity != tt.identity {
				t.Errorf("got identity %q, want %q", d.Identity, tt.identity)
			}
			if d.Rename != tt.rename {
				t.Errorf("got rename %q, want %q", d.Rename, tt.rename)
			}
			if got := !d.Expires.IsZero(); got != tt.hasExpires {
				t.Errorf("got expires %v, want set=%v", d.Expires, tt.hasExpires)
			}
			for _, s := range []string{d.Message, d.Reason, d.Identity} {
				if strings.Contains(s, aliceKey) || strings.Contains(s, bobKey) {
					t.Errorf("decision text %q leaks a key", s)
				}
			}
		})
	}
}

func TestRotation(t *testing.T) {
	before := newBackend(t, "stream_keys:\n  keys:\n    - key: "+oldKey+"\n      path: live/alice\n", nil)
	// Overlap: both keys valid while the streamer switches.
	overlap := newBackend(t, "stream_keys:\n  keys:\n    - key: "+oldKey+"\n      path: live/alice\n    - key: "+aliceKey+"\n      path: live/alice\n", nil)
	after := newBackend(t, "stream_keys:\n  keys:\n    - key: "+aliceKey+"\n      path: live/alice\n", nil)
	tests := []struct {
		name string
		b    *Backend
		key  string
		want authz.Outcome
	}{
		{"old key before", before, oldKey, authz.Allow},
		{"new key before", before, aliceKey, authz.Abstain},
		{"old key during overlap", overlap, oldKey, authz.Allow},
		{"new key during overlap", overlap, aliceKey, authz.Allow},
		{"old key after reload", after, oldKey, authz.Abstain},
		{"new key after reload", after, aliceKey, authz.Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := tt.b.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/" + tt.key})
			if d.Outcome != tt.want {
				t.Errorf("got %v, want %v", d.Outcome, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	k, err := NewKey(aliceKey, "live/alice", "", nil, time.Time{})
	if err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	if got, want := k.Actions, []authz.Action{authz.ActionPublish}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("got default actions %v, want %v", got, want)
	}
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"ok", Config{Keys: []Key{k}}, nil},
		{"empty", Config{}, nil},
		{"zero key", Config{Keys: []Key{{Path: "live/a", Actions: []authz.Action{authz.ActionPublish}}}}, ErrInvalid},
		{"repeated", Config{Keys: []Key{k, k}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewKey("tooshort", "live/a", "", nil, time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewKey short: got %v, want ErrInvalid", err)
	}
	if _, err := NewKey(aliceKey, "live/a", "", []authz.Action{authz.ActionMetrics}, time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewKey metrics: got %v, want ErrInvalid", err)
	}
}

// FuzzAuthorize checks that no path or query allows without presenting a configured key, and that
// nothing panics.
func FuzzAuthorize(f *testing.F) {
	f.Add("live/"+aliceKey, "")
	f.Add("live/alice", aliceKey)
	f.Add("live/alice", "key=a&key=b")
	f.Add("/live//", "%zz&key")
	k, _ := NewKey(aliceKey, "live/alice", "alice", []authz.Action{authz.ActionPublish, authz.ActionRead}, time.Time{})
	b, _ := New(Config{Keys: []Key{k}}, func() time.Time { return t0 })
	f.Fuzz(func(t *testing.T, p, q string) {
		for _, a := range []authz.Action{authz.ActionPublish, authz.ActionRead, authz.ActionAPI} {
			d, err := b.Authorize(context.Background(), &authz.Request{Action: a, Path: p, Key: q})
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if d.Allowed() && !strings.Contains(p+q, aliceKey) {
				t.Fatalf("allowed %q ? %q without the key", p, q)
			}
			if d.Rename != "" && d.Rename != "live/alice" && !strings.HasSuffix(d.Rename, "("+SecretPrefix+"key)") {
				t.Fatalf("got rename %q", d.Rename)
			}
		}
	})
}

func BenchmarkAuthorize(b *testing.B) {
	var ks []Key
	for i := range 100 {
		k, _ := NewKey(strings.Repeat("k", 20)+string(rune('a'+i%26))+strings.Repeat("x", i/26+1), "live/s", "", nil, time.Time{})
		ks = append(ks, k)
	}
	be, err := New(Config{Keys: ks}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, path string }{{"known", "live/" + strings.Repeat("k", 20) + "zxxxx"}, {"unknown", "live/cam"}} {
		b.Run(bc.name, func(b *testing.B) {
			req := &authz.Request{Action: authz.ActionPublish, Path: bc.path}
			for b.Loop() {
				_, _ = be.Authorize(context.Background(), req)
			}
		})
	}
}
