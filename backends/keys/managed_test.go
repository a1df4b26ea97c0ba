package keys

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/creds"
)

// memStore is a hand-written Store for the backend's tests.
type memStore struct {
	mu      sync.Mutex
	byHash  map[Digest]Record
	err     error
	lookups int
	touched []string
}

func (m *memStore) Lookup(_ context.Context, d Digest) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.err != nil {
		return Record{}, m.err
	}
	r, ok := m.byHash[d]
	if !ok {
		return Record{}, ErrNotFound
	}
	return r, nil
}

func (m *memStore) Touch(id string, _ time.Time, _ netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.touched = append(m.touched, id)
}

func (m *memStore) add(t *testing.T, r Record) string {
	t.Helper()
	secret, d, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if m.byHash == nil {
		m.byHash = map[Digest]Record{}
	}
	m.byHash[d] = r
	return secret
}

func TestSecretFormat(t *testing.T) {
	secret, d, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != SecretLen || !strings.HasPrefix(secret, SecretPrefix) {
		t.Fatalf("secret %q: want %d characters starting with %s", secret, SecretLen, SecretPrefix)
	}
	for i := range len(secret) {
		if !unreserved(secret[i]) {
			t.Fatalf("secret %q has %q, not URL- and RTMP-safe", secret, secret[i])
		}
	}
	if got, err := ParseSecret(secret); err != nil || got != d {
		t.Fatalf("ParseSecret = %x, %v", got, err)
	}
	flip := []byte(secret)
	flip[10] = map[bool]byte{true: 'b', false: 'a'}[flip[10] == 'a']
	for name, s := range map[string]string{
		"one character changed": string(flip),
		"truncated":             secret[:SecretLen-1],
		"upper case":            strings.ToUpper(secret[:4]) + secret[4:],
		"upper-case body":       SecretPrefix + strings.ToUpper(secret[4:]),
		"no prefix":             "xyz_" + secret[4:],
		"non-UTF-8":             secret[:SecretLen-2] + "\xff\xfe",
		"empty":                 "",
	} {
		if _, err := ParseSecret(s); !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), s[min(len(s), 4):]) && s != "" {
			t.Errorf("%s: ParseSecret = %v, want ErrMalformed without the key in the text", name, err)
		}
	}
}

func TestAuthorizeManaged(t *testing.T) {
	now := t0
	st := &memStore{}
	alice := st.add(t, Record{ID: "key_alicealice", Spec: Spec{Label: "Alice OBS", Owner: "alice", Path: "live/alice",
		Actions: []authz.Action{authz.ActionPublish}}})
	rtmpOnly := st.add(t, Record{ID: "key_rtmponlyaa", Spec: Spec{Path: "live/r", Actions: []authz.Action{authz.ActionPublish}, Protocols: []string{"rtmp"}}})
	revoked := st.add(t, Record{ID: "key_revokedaaa", Spec: Spec{Path: "live/v", Actions: []authz.Action{authz.ActionPublish}}, Revoked: now.Add(-time.Second)})
	grace := st.add(t, Record{ID: "key_graceaaaaa", Spec: Spec{Path: "live/g", Actions: []authz.Action{authz.ActionPublish}}, Revoked: now.Add(time.Minute)})
	expired := st.add(t, Record{ID: "key_expiredaaa", Spec: Spec{Path: "live/e", Actions: []authz.Action{authz.ActionPublish}, Expires: now}})
	unknown, _, _ := NewSecret()
	malformed := unknown[:SecretLen-1] + map[bool]string{true: "b", false: "a"}[unknown[SecretLen-1] == 'a']
	b, err := New(Config{}, func() time.Time { return now }, WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, query, proto string
		action                   authz.Action
		want                     authz.Outcome
		reason, rename, keyID    string
		identity                 string
		lookups                  int
	}{
		{"stream name", "live/" + alice, "", "rtmp", authz.ActionPublish, authz.Allow, authz.ReasonAllowed, "live/alice", "key_alicealice", "alice", 1},
		{"query on exact path", "live/alice", "key=" + alice, "rtsp", authz.ActionPublish, authz.Allow, authz.ReasonAllowed, "", "key_alicealice", "alice", 1},
		{"query on another path", "live/bob", "key=" + alice, "rtmp", authz.ActionPublish, authz.Forbidden, ReasonWrongPath, "", "", "", 1},
		{"stream name in another application", "other/" + alice, "", "rtmp", authz.ActionPublish, authz.Forbidden, ReasonWrongPath, "live/alice", "", "", 1},
		{"action not permitted", "live/" + alice, "", "rtmp", authz.ActionRead, authz.Forbidden, authz.ReasonNotPermitted, "live/alice", "key_alicealice", "alice", 1},
		{"protocol permitted", "live/" + rtmpOnly, "", "RTMP", authz.ActionPublish, authz.Allow, authz.ReasonAllowed, "live/r", "key_rtmponlyaa", "live/r", 1},
		{"protocol not permitted", "live/" + rtmpOnly, "", "srt", authz.ActionPublish, authz.Forbidden, ReasonWrongProtocol, "live/r", "key_rtmponlyaa", "live/r", 1},
		{"revoked", "live/" + revoked, "", "rtmp", authz.ActionPublish, authz.Unauthenticated, ReasonKeyRevoked, "live/v", "key_revokedaaa", "", 1},
		{"in grace period", "live/g", "key=" + grace, "rtmp", authz.ActionPublish, authz.Allow, authz.ReasonAllowed, "", "key_graceaaaaa", "live/g", 1},
		{"expired", "live/" + expired, "", "rtmp", authz.ActionPublish, authz.Unauthenticated, ReasonKeyExpired, "live/e", "key_expiredaaa", "", 1},
		{"unknown stream name", "live/" + unknown, "", "rtmp", authz.ActionPublish, authz.Unauthenticated, authz.ReasonBadCredentials, "live/(ghk_key)", "", "", 1},
		{"unknown query", "live/alice", "key=" + unknown, "rtmp", authz.ActionPublish, authz.Unauthenticated, authz.ReasonBadCredentials, "", "", "", 1},
		{"malformed stream name: no lookup", "live/" + malformed, "", "rtmp", authz.ActionPublish, authz.Unauthenticated, ReasonMalformedKey, "live/(ghk_key)", "", "", 0},
		{"malformed query: no lookup", "live/alice", "key=" + malformed, "rtmp", authz.ActionPublish, authz.Unauthenticated, ReasonMalformedKey, "", "", "", 0},
		{"prefix only", "live/ghk_", "", "rtmp", authz.ActionPublish, authz.Unauthenticated, ReasonMalformedKey, "live/(ghk_key)", "", "", 0},
		{"non-UTF-8", "live/ghk_\xff\xfe", "", "rtmp", authz.ActionPublish, authz.Unauthenticated, ReasonMalformedKey, "live/(ghk_key)", "", "", 0},
		{"ordinary stream name", "live/cam", "", "rtmp", authz.ActionPublish, authz.Abstain, "", "", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st.lookups = 0
			d, err := b.Authorize(context.Background(), &authz.Request{Action: tt.action, Path: tt.path, Key: strings.TrimPrefix(tt.query, "key="), Protocol: tt.proto})
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.want || d.Reason != tt.reason || d.Rename != tt.rename || d.KeyID != tt.keyID || d.Identity != tt.identity {
				t.Errorf("got %v %s rename=%q key=%q identity=%q, want %v %s rename=%q key=%q identity=%q",
					d.Outcome, d.Reason, d.Rename, d.KeyID, d.Identity, tt.want, tt.reason, tt.rename, tt.keyID, tt.identity)
			}
			if st.lookups != tt.lookups {
				t.Errorf("got %d store lookups, want %d", st.lookups, tt.lookups)
			}
			if tt.name == "stream name" && d.KeyLabel != "Alice OBS" {
				t.Errorf("got label %q", d.KeyLabel)
			}
		})
	}
	if got := strings.Join(st.touched, ","); got != "key_alicealice,key_alicealice,key_rtmponlyaa,key_graceaaaaa" {
		t.Errorf("touched %s: want one per allow", got)
	}
	if d, _ := b.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/" + grace}); !d.Expires.Equal(now.Add(time.Minute)) {
		t.Errorf("grace-period grant expires %v, want when the grace ends", d.Expires)
	}
}

// A store that cannot answer is "could not decide" (an error), and the chain still hides the key
// that was the stream name.
func TestAuthorizeStoreError(t *testing.T) {
	st := &memStore{err: errors.New("disk I/O error")}
	b, _ := New(Config{}, nil, WithStore(st))
	secret, _, _ := NewSecret()
	d, err := authz.NewChain(authz.Method{Name: "keys", Backend: b}).Authorize(context.Background(),
		&authz.Request{Action: authz.ActionPublish, Path: "live/" + secret})
	if err != nil || d.Allowed() || !d.Undecided || d.Reason != ReasonStoreUnavailable || d.Rename != "live/(ghk_key)" {
		t.Fatalf("got %+v, %v; want an undecided denial that hides the key", d, err)
	}
}

// Without a store, a managed key is refused as unknown and YAML keys keep working.
func TestAuthorizeWithoutStore(t *testing.T) {
	k, _ := NewKey(aliceKey, "live/alice", "alice", nil, time.Time{})
	b, _ := New(Config{Keys: []Key{k}}, nil)
	secret, _, _ := NewSecret()
	if d, _ := b.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/" + secret}); d.Reason != authz.ReasonBadCredentials {
		t.Errorf("managed key without a store: %+v", d)
	}
	d, _ := b.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/" + aliceKey})
	if !d.Allowed() || d.KeyID != "config:1" {
		t.Errorf("YAML key: %+v", d)
	}
	if recs := b.ConfigRecords(); len(recs) != 1 || !recs[0].ReadOnly || recs[0].ID != "config:1" || recs[0].Path != "live/alice" {
		t.Errorf("ConfigRecords = %+v", recs)
	}
}

// TestSecretPrefixIsCredsKeyPrefix keeps the prefix that package creds classifies as a stream key
// (a Bearer token or password starting with it is offered as Request.Key) equal to the one keys
// are minted with.
func TestSecretPrefixIsCredsKeyPrefix(t *testing.T) {
	if SecretPrefix != creds.KeyPrefix {
		t.Fatalf("got SecretPrefix %q, creds.KeyPrefix %q; want equal", SecretPrefix, creds.KeyPrefix)
	}
}

// TestInstanceKeyIDs: two keys instances number their YAML keys from 1 each; WithInstance keeps
// their ids apart (they are key ids in decisions, bans and revocations), and SharedSecret finds
// a secret configured in both.
func TestInstanceKeyIDs(t *testing.T) {
	ka, _ := NewKey(aliceKey, "live/alice", "alice", nil, time.Time{})
	kb, _ := NewKey("bob-key-0123456789abcdef", "live/bob", "bob", nil, time.Time{})
	a, _ := New(Config{Keys: []Key{ka}}, nil, WithInstance("studio"))
	b, _ := New(Config{Keys: []Key{kb}}, nil, WithInstance("guests"))
	ra, rb := a.ConfigRecords(), b.ConfigRecords()
	if ra[0].ID != "config:studio:1" || rb[0].ID != "config:guests:1" {
		t.Fatalf("ids: got %q and %q, want config:studio:1 and config:guests:1", ra[0].ID, rb[0].ID)
	}
	if d, _ := a.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/" + aliceKey}); d.KeyID != "config:studio:1" {
		t.Errorf("decision key id: got %q, want config:studio:1", d.KeyID)
	}
	if _, _, ok := (Config{Keys: []Key{ka}}).SharedSecret(Config{Keys: []Key{kb}}); ok {
		t.Error("SharedSecret: different keys reported as shared")
	}
	if i, j, ok := (Config{Keys: []Key{ka}}).SharedSecret(Config{Keys: []Key{kb, ka}}); !ok || i != 0 || j != 1 {
		t.Errorf("SharedSecret: got %d, %d, %v; want 0, 1, true", i, j, ok)
	}
}
