package users

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/authz"
)

// req builds a request; ip "" leaves the address unknown.
func req(action authz.Action, path, ip, user, pass string) *authz.Request {
	r := &authz.Request{Action: action, Path: path, User: user, Pass: pass, Protocol: "rtsp"}
	if ip != "" {
		r.IP = netip.MustParseAddr(ip)
	}
	return r
}

func authorize(t testing.TB, b *Backend, r *authz.Request) authz.Decision {
	t.Helper()
	d, err := b.Authorize(context.Background(), r)
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	return d
}

// outcome is what a test expects: the outcome, the reason and the identity.
type outcome struct {
	o        authz.Outcome
	reason   string
	identity string
}

var (
	abstain   = outcome{authz.Abstain, "", ""}
	badCreds  = outcome{authz.Unauthenticated, authz.ReasonBadCredentials, ""}
	allowAnon = outcome{authz.Allow, authz.ReasonAllowed, ""}
)

func allowAs(id string) outcome     { return outcome{authz.Allow, authz.ReasonAllowed, id} }
func forbiddenAs(id string) outcome { return outcome{authz.Forbidden, authz.ReasonNotPermitted, id} }

func checkOutcome(t *testing.T, d authz.Decision, want outcome) {
	t.Helper()
	if got := (outcome{d.Outcome, d.Reason, d.Identity}); got != want {
		t.Errorf("decision = %v/%q/%q, want %v/%q/%q", got.o, got.reason, got.identity, want.o, want.reason, want.identity)
	}
}

// TestAuthInternal ports MediaMTX's TestAuthInternal: one user, ips [127.1.1.1/32], permission
// publish mypath, in three encodings; six outcomes. MediaMTX answers "authentication failed" for
// every failure; we split 401 (who are you?) from 403 (you, but not this).
func TestAuthInternal(t *testing.T) {
	encodings := []struct{ name, user, pass string }{
		{"plain", "testuser", "testpass"},
		{"sha256", sha256TestUser, sha256TestPass},
		{"argon2", argon2TestUser, argon2TestPass},
	}
	outcomes := []struct {
		name string
		r    *authz.Request
		want outcome
	}{
		{"ok", req(authz.ActionPublish, "mypath", "127.1.1.1", "testuser", "testpass"), allowAs("testuser")},
		{"wrong user", req(authz.ActionPublish, "mypath", "127.1.1.1", "wrong", "testpass"), badCreds},
		{"wrong pass", req(authz.ActionPublish, "mypath", "127.1.1.1", "testuser", "wrong"), badCreds},
		{"wrong ip", req(authz.ActionPublish, "mypath", "127.1.1.2", "testuser", "testpass"), badCreds},
		{"wrong action", req(authz.ActionRead, "mypath", "127.1.1.1", "testuser", "testpass"), forbiddenAs("testuser")},
		{"wrong path", req(authz.ActionPublish, "wrong", "127.1.1.1", "testuser", "testpass"), forbiddenAs("testuser")},
	}
	for _, enc := range encodings {
		cfg := mustDecode(t, fmt.Sprintf(`
internal:
  users:
  - user: %s
    pass: %s
    ips: [127.1.1.1/32]
    permissions:
    - action: publish
      path: mypath
`, enc.user, enc.pass))
		// Failures may use every core: these outcomes are not about pacing, and a failed argon2
		// check takes long enough under -race on a busy machine to spend the default budget
		// and make the next subtest's check busy (TestFailurePacing covers the pacing).
		b := New(cfg, WithArgon2FailureShare(1))
		for _, oc := range outcomes {
			t.Run(enc.name+"/"+oc.name, func(t *testing.T) {
				// (a) no credentials: we abstain, and a chain turns that into a 401 challenge, the
				// equivalent of MediaMTX's AskCredentials.
				anon := *oc.r
				anon.User, anon.Pass = "", ""
				checkOutcome(t, authorize(t, b, &anon), abstain)
				cd, _ := authz.NewChain(authz.Method{Name: "users", Backend: b}).Authorize(context.Background(), &anon)
				checkOutcome(t, cd, outcome{authz.Unauthenticated, authz.ReasonNoCredentials, ""})
				// (b) the request itself.
				checkOutcome(t, authorize(t, b, oc.r), oc.want)
			})
		}
	}
}

func TestAnyIgnoresCredentials(t *testing.T) {
	b := New(mustDecode(t, `
internal:
  users:
  - user: any
    permissions: [{action: read}]
  - user: alice
    pass: secret
    permissions: [{action: read}, {action: publish}]
`))
	tests := []struct {
		name string
		r    *authz.Request
		want outcome
	}{
		{"anonymous", req(authz.ActionRead, "cam", "192.0.2.1", "", ""), allowAnon},
		{"wrong credentials still allowed, anonymously", req(authz.ActionRead, "cam", "192.0.2.1", "mallory", "nope"), allowAnon},
		{"a chosen name is not an identity", req(authz.ActionRead, "cam", "192.0.2.1", "alice", "whatever"), allowAnon},
		{"any is not a password for others", req(authz.ActionPublish, "cam", "192.0.2.1", "alice", "any"), badCreds},
		{"named user still works", req(authz.ActionPublish, "cam", "192.0.2.1", "alice", "secret"), allowAs("alice")},
		{"literal user any with a pass", req(authz.ActionPublish, "cam", "192.0.2.1", "any", ""), badCreds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkOutcome(t, authorize(t, b, tt.r), tt.want) })
	}
}

func TestEmptyPassMatchesAnything(t *testing.T) {
	b := New(mustDecode(t, `
internal:
  users:
  - user: bob
    permissions: [{action: read}]
  - user: `+sha256TestUser+`
    permissions: [{action: publish}]
`))
	tests := []struct {
		name string
		r    *authz.Request
		want outcome
	}{
		{"any password", req(authz.ActionRead, "x", "", "bob", "whatever"), allowAs("bob")},
		{"no password", req(authz.ActionRead, "x", "", "bob", ""), allowAs("bob")},
		{"other name", req(authz.ActionRead, "x", "", "rob", ""), badCreds},
		{"hashed name", req(authz.ActionPublish, "x", "", "testuser", "zzz"), allowAs("testuser")},
		{"hashed name, other action", req(authz.ActionRead, "x", "", "testuser", "zzz"), forbiddenAs("testuser")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkOutcome(t, authorize(t, b, tt.r), tt.want) })
	}
}

func TestIPs(t *testing.T) {
	b := New(mustDecode(t, `
internal:
  users:
  - user: any
    ips: [10.0.0.0/8, 192.0.2.7, '2001:db8::/32', '::1']
    permissions: [{action: read}]
`))
	tests := []struct {
		ip   string
		want outcome
	}{
		{"10.1.2.3", allowAnon},
		{"11.0.0.1", abstain},
		{"192.0.2.7", allowAnon},
		{"192.0.2.8", abstain},
		{"::ffff:10.9.9.9", allowAnon}, // IPv4-mapped, as from a dual-stack socket
		{"2001:db8:1::5", allowAnon},
		{"2001:db9::5", abstain},
		{"::1", allowAnon},
		{"::2", abstain},
		{"fe80::1%eth0", abstain},
		{"", abstain}, // unknown address matches no list
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			checkOutcome(t, authorize(t, b, req(authz.ActionRead, "cam", tt.ip, "", "")), tt.want)
		})
	}
	t.Run("empty list matches unknown address", func(t *testing.T) {
		b := New(mustDecode(t, "internal:\n  users:\n  - user: any\n    permissions: [{action: read}]\n"))
		checkOutcome(t, authorize(t, b, req(authz.ActionRead, "cam", "", "", "")), allowAnon)
	})
}

func TestPaths(t *testing.T) {
	b := New(mustDecode(t, `
internal:
  users:
  - user: regex
    permissions: [{action: read, path: ~cam}]
  - user: anchored
    permissions: [{action: read, path: ~^cam$}]
  - user: exact
    permissions: [{action: read, path: cam1}]
  - user: glob
    permissions: [{action: read, path: live/*}]
  - user: globstar
    permissions: [{action: read, path: live/**}]
  - user: anypath
    permissions: [{action: read}]
  - user: ops
    permissions: [{action: api, path: ignored}, {action: metrics, path: ~nomatch}, {action: pprof, path: x}]
`))
	tests := []struct {
		user, path string
		action     authz.Action
		want       bool
	}{
		{"regex", "mycam2", authz.ActionRead, true}, // unanchored, as MediaMTX
		{"regex", "cam", authz.ActionRead, true},
		{"regex", "ca", authz.ActionRead, false},
		{"anchored", "cam", authz.ActionRead, true},
		{"anchored", "mycam", authz.ActionRead, false},
		{"exact", "cam1", authz.ActionRead, true},
		{"exact", "cam10", authz.ActionRead, false},
		{"exact", "xcam1", authz.ActionRead, false},
		{"glob", "live/a", authz.ActionRead, true},
		{"glob", "live/a/b", authz.ActionRead, false},
		{"glob", "live", authz.ActionRead, false},
		{"glob", "xlive/a", authz.ActionRead, false},
		{"globstar", "live/a/b", authz.ActionRead, true},
		{"globstar", "other/a", authz.ActionRead, false},
		{"anypath", "anything/at/all", authz.ActionRead, true},
		{"anypath", "x", authz.ActionPublish, false},
		{"ops", "", authz.ActionAPI, true},
		{"ops", "whatever", authz.ActionMetrics, true},
		{"ops", "", authz.ActionPprof, true},
		{"ops", "x", authz.ActionRead, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.user, tt.action, tt.path), func(t *testing.T) {
			d := authorize(t, b, req(tt.action, tt.path, "", tt.user, "x"))
			want := forbiddenAs(tt.user)
			if tt.want {
				want = allowAs(tt.user)
			}
			checkOutcome(t, d, want)
		})
	}
}

func TestProtocols(t *testing.T) {
	b := New(mustDecode(t, `
internal:
  users:
  - user: any
    permissions: [{action: read, protocols: [hls, webrtc]}]
  - user: cam
    pass: pw
    permissions: [{action: publish, path: cam, protocols: [rtsp]}]
`))
	tests := []struct {
		name string
		r    *authz.Request
		want outcome
	}{
		{"read hls", &authz.Request{Action: authz.ActionRead, Path: "x", Protocol: "hls"}, allowAnon},
		{"read HLS case", &authz.Request{Action: authz.ActionRead, Path: "x", Protocol: "HLS"}, allowAnon},
		{"read rtmp", &authz.Request{Action: authz.ActionRead, Path: "x", Protocol: "rtmp"}, abstain},
		{"read unknown protocol", &authz.Request{Action: authz.ActionRead, Path: "x"}, abstain},
		{"publish rtsp", &authz.Request{Action: authz.ActionPublish, Path: "cam", Protocol: "rtsp", User: "cam", Pass: "pw"}, allowAs("cam")},
		{"publish srt", &authz.Request{Action: authz.ActionPublish, Path: "cam", Protocol: "srt", User: "cam", Pass: "pw"}, forbiddenAs("cam")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkOutcome(t, authorize(t, b, tt.r), tt.want) })
	}
}

// TestFirstMatch: users are tried in order and evaluation stops at the first that matches, so an
// expensive user after a match is never verified.
func TestFirstMatch(t *testing.T) {
	b := New(mustDecode(t, `
internal:
  users:
  - user: testuser
    pass: testpass
    permissions: [{action: publish}]
  - user: testuser
    pass: `+argon2TestPass+`
    permissions: [{action: publish}, {action: read}]
`))
	checkOutcome(t, authorize(t, b, req(authz.ActionPublish, "p", "", "testuser", "testpass")), allowAs("testuser"))
	if got := b.Stats().Argon2Runs; got != 0 {
		t.Errorf("argon2 runs after a first-user match = %d, want 0", got)
	}
	checkOutcome(t, authorize(t, b, req(authz.ActionRead, "p", "", "testuser", "testpass")), allowAs("testuser"))
	if got := b.Stats().Argon2Runs; got != 1 {
		t.Errorf("argon2 runs after a second-user match = %d, want 1", got)
	}
}

// TestOutcomes covers the 401/403 rule across several users.
func TestOutcomes(t *testing.T) {
	b := New(mustDecode(t, `
internal:
  users:
  - user: alice
    pass: a
    ips: [10.0.0.0/8]
    permissions: [{action: publish, path: alice}]
  - user: bob
    pass: b
    permissions: [{action: read}]
  - user: alice
    pass: a2
    permissions: [{action: read, path: ~^public/}]
`))
	tests := []struct {
		name string
		r    *authz.Request
		want outcome
	}{
		{"alice publishes her path", req(authz.ActionPublish, "alice", "10.1.1.1", "alice", "a"), allowAs("alice")},
		{"alice elsewhere: 403", req(authz.ActionPublish, "bob", "10.1.1.1", "alice", "a"), forbiddenAs("alice")},
		{"alice from outside: 401", req(authz.ActionPublish, "alice", "192.0.2.1", "alice", "a"), badCreds},
		{"alice second entry reads public", req(authz.ActionRead, "public/x", "192.0.2.1", "alice", "a2"), allowAs("alice")},
		{"alice second entry, private: 403", req(authz.ActionRead, "private/x", "192.0.2.1", "alice", "a2"), forbiddenAs("alice")},
		{"alice first pass reads: 403", req(authz.ActionRead, "private/x", "10.1.1.1", "alice", "a"), forbiddenAs("alice")},
		{"bob cannot publish: 403", req(authz.ActionPublish, "bob", "192.0.2.1", "bob", "b"), forbiddenAs("bob")},
		{"bob wrong pass: 401", req(authz.ActionPublish, "bob", "192.0.2.1", "bob", "x"), badCreds},
		{"unknown user: 401", req(authz.ActionRead, "x", "192.0.2.1", "carol", "c"), badCreds},
		{"user only: 401", req(authz.ActionRead, "x", "192.0.2.1", "carol", ""), badCreds},
		{"pass only: 401", req(authz.ActionRead, "x", "192.0.2.1", "", "b"), badCreds},
		{"nothing: abstain", req(authz.ActionRead, "x", "192.0.2.1", "", ""), abstain},
		{"token only: abstain", &authz.Request{Action: authz.ActionRead, Path: "x", Token: "eyJ"}, abstain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkOutcome(t, authorize(t, b, tt.r), tt.want) })
	}
}

// TestChainAbstain: for a token-only request, the users backend must not mask a later method's
// more specific denial.
func TestChainAbstain(t *testing.T) {
	b := New(mustDecode(t, "internal:\n  users:\n  - user: alice\n    pass: a\n    permissions: [{action: read}]\n"))
	jwt := authz.BackendFunc(func(context.Context, *authz.Request) (authz.Decision, error) {
		return authz.Denying(authz.Unauthenticated, "token_expired", "token expired"), nil
	})
	c := authz.NewChain(authz.Method{Name: "users", Backend: b}, authz.Method{Name: "jwt", Backend: jwt})
	d, err := c.Authorize(context.Background(), &authz.Request{Action: authz.ActionRead, Path: "x", Token: "eyJ"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Reason, "token_expired"; got != want {
		t.Errorf("chain reason = %q, want %q", got, want)
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func argon2Config(t testing.TB, extra string) Config {
	return mustDecode(t, `
internal:
`+extra+`
  users:
  - user: testuser
    pass: `+argon2TestPass+`
    permissions: [{action: publish}]
  - user: other
    pass: `+argon2TestUser+`
    permissions: [{action: publish}]
`)
}

func TestCache(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	b := New(argon2Config(t, "  cache_ttl: 1m"), WithClock(clk.now))
	ok := req(authz.ActionPublish, "p", "", "testuser", "testpass")
	wrong := req(authz.ActionPublish, "p", "", "testuser", "nope")

	steps := []struct {
		name    string
		r       *authz.Request
		advance time.Duration
		want    outcome
		runs    uint64 // cumulative
		hits    uint64 // cumulative
	}{
		{"cold", ok, 0, allowAs("testuser"), 1, 0},
		{"cached", ok, 0, allowAs("testuser"), 1, 1},
		{"cached again", ok, 30 * time.Second, allowAs("testuser"), 1, 2},
		{"wrong pass not cached", wrong, 0, badCreds, 2, 2},
		{"wrong pass again", wrong, 0, badCreds, 3, 2},
		// Sliding: each use keeps the entry for another ttl, so a credential in steady use
		// never expires (a crowd of viewers never meets an expiry at once).
		{"in use past the first ttl", ok, 59 * time.Second, allowAs("testuser"), 3, 3},
		{"still in use", ok, 59 * time.Second, allowAs("testuser"), 3, 4},
		{"unused just under the ttl", ok, 59*time.Second + 999*time.Millisecond, allowAs("testuser"), 3, 5},
		{"unused for the ttl: expired", ok, time.Minute, allowAs("testuser"), 4, 5},
		{"cached after refresh", ok, 0, allowAs("testuser"), 4, 6},
	}
	for _, s := range steps {
		clk.add(s.advance)
		checkOutcome(t, authorize(t, b, s.r), s.want)
		st := b.Stats()
		if st.Argon2Runs != s.runs || st.CacheHits != s.hits {
			t.Errorf("%s: runs, hits = %d, %d; want %d, %d", s.name, st.Argon2Runs, st.CacheHits, s.runs, s.hits)
		}
	}
	if got, want := b.Stats().CacheEntries, 1; got != want {
		t.Errorf("CacheEntries = %d, want %d", got, want)
	}
	// A new Backend (config reload) starts cold.
	b2 := New(argon2Config(t, "  cache_ttl: 1m"), WithClock(clk.now))
	authorize(t, b2, ok)
	if got, want := b2.Stats().Argon2Runs, uint64(1); got != want {
		t.Errorf("new backend runs = %d, want %d", got, want)
	}
}

func TestCacheBounded(t *testing.T) {
	b := New(argon2Config(t, "  cache_size: 1"))
	a := req(authz.ActionPublish, "p", "", "testuser", "testpass")
	o := req(authz.ActionPublish, "p", "", "other", "testuser")
	for _, r := range []*authz.Request{a, o, a, o} {
		checkOutcome(t, authorize(t, b, r), allowAs(r.User))
	}
	st := b.Stats()
	if st.Argon2Runs != 4 || st.CacheEntries != 1 {
		t.Errorf("runs, entries = %d, %d; want 4, 1 (each evicts the other)", st.Argon2Runs, st.CacheEntries)
	}
	checkOutcome(t, authorize(t, b, o), allowAs("other"))
	if got := b.Stats().Argon2Runs; got != 4 {
		t.Errorf("runs after repeating the last = %d, want 4", got)
	}
}

func TestCacheDisabled(t *testing.T) {
	b := New(argon2Config(t, "  cache_size: 0"))
	r := req(authz.ActionPublish, "p", "", "testuser", "testpass")
	for range 3 {
		checkOutcome(t, authorize(t, b, r), allowAs("testuser"))
	}
	if st := b.Stats(); st.Argon2Runs != 3 || st.CacheHits != 0 || st.CacheEntries != 0 {
		t.Errorf("stats = %+v, want 3 runs, no hits, no entries", st)
	}
}

// TestEqualCostUnknownUser: an unknown name costs one argon2 derivation, like a known name with a
// wrong password; a cached success costs none.
func TestEqualCostUnknownUser(t *testing.T) {
	b := New(argon2Config(t, ""))
	tests := []struct {
		name string
		r    *authz.Request
		want outcome
		runs uint64
	}{
		{"known name, wrong pass", req(authz.ActionPublish, "p", "", "testuser", "x"), badCreds, 1},
		{"unknown name", req(authz.ActionPublish, "p", "", "nobody", "x"), badCreds, 1},
		{"unknown name, no pass", req(authz.ActionPublish, "p", "", "nobody", ""), badCreds, 1},
		{"no credentials", req(authz.ActionPublish, "p", "", "", ""), abstain, 0},
		{"success, cold", req(authz.ActionPublish, "p", "", "testuser", "testpass"), allowAs("testuser"), 1},
		{"success, cached", req(authz.ActionPublish, "p", "", "testuser", "testpass"), allowAs("testuser"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.Stats().Argon2Runs
			checkOutcome(t, authorize(t, b, tt.r), tt.want)
			if got := b.Stats().Argon2Runs - before; got != tt.runs {
				t.Errorf("argon2 runs = %d, want %d", got, tt.runs)
			}
		})
	}
	t.Run("dummy matches the costliest pass", func(t *testing.T) {
		cfg := mustDecode(t, `
internal:
  users:
  - user: a
    pass: x
  - user: b
    pass: argon2:$argon2id$v=19$m=64,t=1,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58
  - user: c
    pass: `+argon2TestPass+`
`)
		d := New(cfg).dummy
		if d == nil || d.kind != kindArgon2 || d.phc.memory != 4096 || d.phc.time != 3 || d.phc.variant != "argon2i" {
			t.Errorf("dummy = %v %+v, want argon2i m=4096 t=3", d, d.phc)
		}
		plain := New(mustDecode(t, "internal:\n  users:\n  - user: a\n    pass: x\n")).dummy
		if plain == nil || plain.kind != kindSHA256 {
			t.Errorf("dummy for plain users = %v, want sha256", plain)
		}
		if got := New(mustDecode(t, "internal:\n  users:\n  - user: any\n")).dummy; got != nil {
			t.Errorf("dummy without named users = %v, want nil", got)
		}
	})
}

// TestSingleflight: identical concurrent verifications share one derivation.
func TestSingleflight(t *testing.T) {
	b := New(argon2Config(t, ""), WithMaxConcurrentArgon2(1))
	b.sem <- struct{}{} // hold the only slot so every caller piles up
	const n = 8
	var wg sync.WaitGroup
	var allowed atomic.Int32
	for range n {
		wg.Go(func() {
			d, err := b.Authorize(context.Background(), req(authz.ActionPublish, "p", "", "testuser", "testpass"))
			if err == nil && d.Allowed() {
				allowed.Add(1)
			}
		})
	}
	for b.Stats().CacheMisses < n {
		time.Sleep(time.Millisecond) // wait for every caller to miss the cache
	}
	<-b.sem
	wg.Wait()
	if got := allowed.Load(); got != n {
		t.Errorf("allowed = %d, want %d", got, n)
	}
	if got := b.Stats().Argon2Runs; got != 1 {
		t.Errorf("argon2 runs = %d, want 1", got)
	}
}

func TestCanceledWhileWaiting(t *testing.T) {
	for _, extra := range []string{"", "  cache_size: 0"} {
		t.Run(fmt.Sprintf("%q", extra), func(t *testing.T) {
			b := New(argon2Config(t, extra), WithMaxConcurrentArgon2(1))
			b.sem <- struct{}{}
			defer func() { <-b.sem }()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := b.Authorize(ctx, req(authz.ActionPublish, "p", "", "testuser", "testpass"))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error = %v, want context.Canceled", err)
			}
			var re *authz.ReasonError
			if !errors.As(err, &re) || re.Reason != authz.ReasonCanceled {
				t.Errorf("error = %v, want a ReasonError with reason %q", err, authz.ReasonCanceled)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	b := New(mustDecode(t, `
internal:
  cache_size: 2
  users:
  - user: any
    permissions: [{action: read, path: ~^public/}]
  - user: testuser
    pass: `+argon2TestPass+`
    permissions: [{action: publish}]
  - user: bob
    pass: `+sha256TestPass+`
    permissions: [{action: read}]
`))
	cases := []struct {
		r    *authz.Request
		want authz.Outcome
	}{
		{req(authz.ActionRead, "public/x", "", "", ""), authz.Allow},
		{req(authz.ActionPublish, "p", "", "testuser", "testpass"), authz.Allow},
		{req(authz.ActionPublish, "p", "", "testuser", "bad"), authz.Unauthenticated},
		{req(authz.ActionRead, "x", "", "bob", "testpass"), authz.Allow},
		{req(authz.ActionPublish, "x", "", "bob", "testpass"), authz.Forbidden},
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				c := cases[(g+i)%len(cases)]
				d, err := b.Authorize(context.Background(), c.r)
				if err != nil || d.Outcome != c.want {
					errs <- fmt.Sprintf("%+v: got %v, %v; want %v", c.r.User, d.Outcome, err, c.want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestConfigBuiltInCode: an empty user name (rejected by decoding) never matches.
func TestConfigBuiltInCode(t *testing.T) {
	pass, err := ParseCredential("pw")
	if err != nil {
		t.Fatal(err)
	}
	perms := authz.Permissions{{Action: authz.ActionRead}}
	b := New(Config{Users: []User{{Pass: pass, Permissions: perms}}})
	checkOutcome(t, authorize(t, b, req(authz.ActionRead, "x", "", "anyone", "pw")), badCreds)
}

// TestHashPastesIntoConfig: the CLI helpers' output works as both user: and pass:.
func TestHashPastesIntoConfig(t *testing.T) {
	argonPass, err := HashArgon2id([]byte("p@ss word/with:odd chars"))
	if err != nil {
		t.Fatal(err)
	}
	b := New(mustDecode(t, `
internal:
  users:
  - user: `+HashSHA256([]byte("studio"))+`
    pass: `+argonPass+`
    permissions: [{action: publish}]
`))
	checkOutcome(t, authorize(t, b, req(authz.ActionPublish, "x", "", "studio", "p@ss word/with:odd chars")), allowAs("studio"))
	checkOutcome(t, authorize(t, b, req(authz.ActionPublish, "x", "", "studio", "p@ss word/with:odd char")), badCreds)
	checkOutcome(t, authorize(t, b, req(authz.ActionRead, "x", "", "studio", "p@ss word/with:odd chars")), forbiddenAs("studio"))
}

// TestWithClockNil: a nil clock keeps time.Now instead of panicking on the first argon2 check.
func TestWithClockNil(t *testing.T) {
	hash, err := HashArgon2id([]byte("pw-for-nil-clock"))
	if err != nil {
		t.Fatal(err)
	}
	pass, err := ParseCredential(hash)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := ParseCredential("alice")
	perm, _ := authz.NewPermission("read", "", nil)
	b := New(Config{Users: []User{{User: user, Pass: pass, Permissions: authz.Permissions{perm}}}}, WithClock(nil))
	for range 2 { // derive, then a cache hit
		d, err := b.Authorize(context.Background(), &authz.Request{Action: authz.ActionRead, Path: "x", User: "alice", Pass: "pw-for-nil-clock"})
		if err != nil || !d.Allowed() {
			t.Fatalf("got %v %q %v, want allow", d.Outcome, d.Reason, err)
		}
	}
	if s := b.Stats(); s.CacheHits != 1 {
		t.Errorf("got %d cache hits, want 1", s.CacheHits)
	}
}

// TestFailurePacing: failed argon2 verifications are paced to their CPU share: once the saved-up
// budget is spent, the next derivation waits (here past its caller's deadline, which ends its
// flight too: nothing derives after the caller has gone), while a cached success never waits.
func TestFailurePacing(t *testing.T) {
	b := New(argon2Config(t, ""), WithArgon2FailureShare(0.0001)) // one failure buys a long wait
	ctx := context.Background()
	if d, err := b.Authorize(ctx, req(authz.ActionPublish, "p", "", "testuser", "testpass")); err != nil || !d.Allowed() {
		t.Fatalf("first login: %+v %v", d, err)
	}
	if d, err := b.Authorize(ctx, req(authz.ActionPublish, "p", "", "testuser", "wrong1")); err != nil || d.Allowed() {
		t.Fatalf("first failure: got %+v %v, want a plain denial (the burst allows it)", d, err)
	}
	runs := b.Stats().Argon2Runs
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.Authorize(short, req(authz.ActionPublish, "p", "", "testuser", "wrong2")); err == nil {
		t.Fatal("second failure within the budget's wait: got no error, want could not decide (deadline)")
	}
	if got := b.Stats().Argon2Runs; got != runs {
		t.Errorf("argon2 runs = %d, want %d: a paced flight derived after its caller's deadline", got, runs)
	}
	if d, err := b.Authorize(ctx, req(authz.ActionPublish, "p", "", "testuser", "testpass")); err != nil || !d.Allowed() {
		t.Errorf("cached login during the wait: got %+v %v, want allowed at once", d, err)
	}
	// A wait longer than maxPaceWait is not served at all: the caller hears "busy" at once
	// instead of being held open until its deadline (a flood must not park its requests).
	long, cancelLong := context.WithTimeout(ctx, 10*time.Second)
	defer cancelLong()
	_, err := b.Authorize(long, req(authz.ActionPublish, "p", "", "testuser", "wrong3"))
	var re *authz.ReasonError
	if !errors.As(err, &re) || re.Reason != ReasonBusy || long.Err() != nil {
		t.Errorf("failure far beyond the budget: got %v (deadline passed: %v), want %s at once", err, long.Err() != nil, ReasonBusy)
	}
	if got := b.Stats().Argon2Runs; got != runs {
		t.Errorf("argon2 runs = %d, want %d: a busy answer derived anyway", got, runs)
	}
}
