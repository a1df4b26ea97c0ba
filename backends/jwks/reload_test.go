package jwks

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
)

// reloadConfigYAML is decoded afresh for every rebuild, as a config reload does; the regex role
// path checks that equal configs compare equal although they compile their own patterns.
const reloadConfigYAML = `
providers:
  - name: idp
    jwks: %s
    issuer: test-issuer
    audience: %s
    roles:
      streamer: [{action: publish, path: "~^live/"}]
`

func reloadConfig(t *testing.T, url, audience string) Config {
	t.Helper()
	var c Config
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(reloadConfigYAML, url, audience)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReloadKeepsProviders: a Backend built WithPrevious from an equal config takes over the
// running provider, so a reload during an IdP outage keeps the keys and the verified-token cache
// and fetches nothing; closing the old Backend does not stop the shared goroutine; a changed
// provider starts fresh and gets none of the old cache.
func TestReloadKeepsProviders(t *testing.T) {
	clk := newClock()
	k := rsaKey("k1")
	srv := newJWKSServer(t, jwksDoc(t, k))
	b1 := newTestBackend(t, reloadConfig(t, srv.URL, "gatehouse"), WithClock(clk.Now))
	claims := func() map[string]any {
		c := claimsAt(clk.Now(), nil)
		c["realm_access"] = map[string]any{"roles": []string{"streamer"}}
		return c
	}
	cached := k.sign(t, claims())
	if d, err := authorize(t, b1, publishReq("live/a", cached)); err != nil || !d.Allowed() {
		t.Fatalf("before reload: got %v %q %v, want allow", d.Outcome, d.Reason, err)
	}
	fetches := srv.hits.Load()
	srv.status.Store(http.StatusServiceUnavailable) // the IdP goes down

	prev := b1
	var b *Backend
	for i := range 20 { // 20 reloads, each closing the generation before it
		var err error
		b, err = New(reloadConfig(t, srv.URL, "gatehouse"), WithClock(clk.Now), WithPrevious(prev))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b.providers[0], b1.providers[0]; got != want {
			t.Fatalf("reload %d: provider not taken over", i)
		}
		prev.Close()
		select {
		case <-b.providers[0].stopped:
			t.Fatalf("reload %d: closing the old backend stopped the shared provider", i)
		default:
		}
		prev = b
	}
	t.Cleanup(func() { b.Close() })
	if d, err := authorize(t, b, publishReq("live/a", cached)); err != nil || !d.Allowed() {
		t.Fatalf("cached token after reloads: got %v %q %v, want allow", d.Outcome, d.Reason, err)
	}
	if got := b.Stats().CacheHits; got != 1 {
		t.Errorf("cache hits: got %d, want 1 (the cache carried over)", got)
	}
	clk.Advance(time.Second)
	if d, err := authorize(t, b, publishReq("live/a", k.sign(t, claims()))); err != nil || !d.Allowed() {
		t.Fatalf("new token after reloads: got %v %q %v, want allow (keys carried over)", d.Outcome, d.Reason, err)
	}
	if got := srv.hits.Load(); got != fetches {
		t.Errorf("JWKS fetches: got %d more after 20 reloads, want 0", got-fetches)
	}

	t.Run("changed provider starts fresh", func(t *testing.T) {
		bc, err := New(reloadConfig(t, srv.URL, "other-audience"), WithClock(clk.Now), WithPrevious(b))
		if err != nil {
			t.Fatal(err)
		}
		defer bc.Close()
		if bc.providers[0] == b.providers[0] {
			t.Fatal("a changed provider was taken over")
		}
		// The old grant is in the shared cache but belongs to the old provider; the new one has
		// no keys while the IdP is down.
		_, err = authorize(t, bc, publishReq("live/a", cached))
		if !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("got %v, want ErrJWKSUnavailable", err)
		}
	})

	t.Run("cache never outlives exp", func(t *testing.T) {
		clk.Advance(2 * time.Hour) // shared by every backend and provider here
		bl, err := New(reloadConfig(t, srv.URL, "gatehouse"), WithClock(clk.Now), WithPrevious(b))
		if err != nil {
			t.Fatal(err)
		}
		defer bl.Close()
		d, err := authorize(t, bl, publishReq("live/a", cached))
		if err != nil || d.Outcome != authz.Unauthenticated || d.Reason != ReasonTokenExpired {
			t.Fatalf("got %v %q %v, want unauthenticated %q", d.Outcome, d.Reason, err, ReasonTokenExpired)
		}
	})

	b.Close()
	select {
	case <-b1.providers[0].stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the last backend did not stop the provider")
	}
	if _, err := New(reloadConfig(t, srv.URL, "gatehouse"), WithPrevious(b)); err != nil {
		t.Fatal(err) // a closed previous backend is no error: its providers are just not taken
	}
}

// TestReloadKeepsIssuerProvider: the same *Issuer keeps its built-in provider, so cached own
// tokens stay cached across reloads.
func TestReloadKeepsIssuerProvider(t *testing.T) {
	clk := newClock()
	iss, err := tokens.LoadIssuer(t.TempDir(), tokens.IssuerClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	b1 := newTestBackend(t, Config{}, WithIssuer(iss), WithClock(clk.Now))
	tok, err := iss.Issue("alice", mustAllow(t, "publish:live/alice"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := authorize(t, b1, publishReq("live/alice", tok)); !d.Allowed() {
		t.Fatalf("got %v %q, want allow", d.Outcome, d.Reason)
	}
	b2 := newTestBackend(t, Config{}, WithIssuer(iss), WithClock(clk.Now), WithPrevious(b1))
	b1.Close()
	if d, _ := authorize(t, b2, publishReq("live/alice", tok)); !d.Allowed() {
		t.Fatalf("got %v %q, want allow", d.Outcome, d.Reason)
	}
	if got := b2.Stats().CacheHits; got != 1 {
		t.Errorf("cache hits: got %d, want 1", got)
	}
}
