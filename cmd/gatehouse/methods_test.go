package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
	"gatehouse/authz/logtest"
)

// TestMethodEntries: every spelling of an auth.methods entry resolves to a type, an id and
// settings; the older forms (a bare name, {method: ..., actions: [...]}, no methods at all) keep
// their meaning.
func TestMethodEntries(t *testing.T) {
	const users = "  internal:\n    users: [{user: any, permissions: [{action: read}]}]\n"
	type inst struct {
		id, typ string
		actions []authz.Action
	}
	tests := []struct {
		name string
		src  string
		want []inst
		list string // methodList, as validate and the start log print it
	}{
		{"bare name", "auth:\n  methods: [internal]\n" + users,
			[]inst{{"internal", "internal", nil}}, "internal"},
		{"older mapping form", "auth:\n  methods: [{method: internal, actions: [api, publish]}, jwt]\n" + users,
			[]inst{{"internal", "internal", []authz.Action{authz.ActionAPI, authz.ActionPublish}}, {"jwt", "jwt", nil}}, "internal, jwt"},
		{"typed, id defaults to the type", "auth:\n  methods: [{type: internal, actions: [read]}]\n" + users,
			[]inst{{"internal", "internal", []authz.Action{authz.ActionRead}}}, "internal"},
		{"two instances of one type", `auth:
  methods:
    - {type: http, id: billing, actions: [publish], config: {address: "http://127.0.0.1:1/a"}}
    - {type: http, id: sso, config: {address: "http://127.0.0.1:1/b"}}
    - {type: jwt, id: staff}
`, []inst{{"billing", "http", []authz.Action{authz.ActionPublish}}, {"sso", "http", nil}, {"staff", "jwt", nil}}, "billing (http), sso (http), staff (jwt)"},
		{"typed without config takes the section", "auth:\n  methods: [{type: internal, id: people}]\n" + users,
			[]inst{{"people", "internal", nil}}, "people (internal)"},
		{"no methods: every section in catalogue order", "auth:\n  http: {address: \"http://127.0.0.1:1/\"}\n  jwt: {}\n" + users,
			[]inst{{"internal", "internal", nil}, {"jwt", "jwt", nil}, {"http", "http", nil}}, "internal, jwt, http"},
		{"no methods, no internal: the built-in users come first", "auth:\n  http: {address: \"http://127.0.0.1:1/\"}\n",
			[]inst{{"internal", "internal", nil}, {"http", "http", nil}}, "internal, http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig("t.yml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			var got []inst
			for _, m := range cfg.Auth.Methods {
				got = append(got, inst{m.ID, m.Type, m.Actions})
			}
			if !slices.EqualFunc(got, tt.want, func(a, b inst) bool {
				return a.id == b.id && a.typ == b.typ && slices.Equal(a.actions, b.actions)
			}) {
				t.Errorf("methods: got %+v, want %+v", got, tt.want)
			}
			if got := strings.Join(methodList(cfg), ", "); got != tt.list {
				t.Errorf("methodList: got %q, want %q", got, tt.list)
			}
			if err := dryBuild(cfg); err != nil {
				t.Errorf("build: %v", err)
			}
		})
	}
}

// TestMethodEntryErrors: each mistake in auth.methods or an instance's settings is reported with
// its line and key path, all in one error.
func TestMethodEntryErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown type lists the known ones", "auth:\n  methods:\n    - internal\n    - {type: ldap, id: corp}\n  internal: {}\n",
			[]string{`t.yml:4: auth.methods[1].type: unknown method type "ldap" (known types: internal, keys, jwt, http)`}},
		{"unknown bare name", "auth:\n  methods: [ldap]\n",
			[]string{`t.yml:2: auth.methods[0]: unknown method type "ldap" (known types: internal, keys, jwt, http)`}},
		{"duplicate id across types", `auth:
  methods:
    - {type: http, id: corp, config: {address: "http://127.0.0.1:1/"}}
    - {type: jwt, id: corp}
`, []string{`t.yml:4: auth.methods[1]: method id "corp" is used twice (also auth.methods[0])`}},
		{"two instances of a type need ids", `auth:
  methods:
    - {type: http, config: {address: "http://127.0.0.1:1/a"}}
    - {type: http, config: {address: "http://127.0.0.1:1/b"}}
`, []string{`t.yml:4: auth.methods[1]: method id "http" is used twice (also auth.methods[0])`}},
		{"bad id", "auth:\n  methods: [{type: jwt, id: \"a b\"}]\n",
			[]string{`t.yml:2: auth.methods[0].id: id "a b" may contain only letters, digits`}},
		{"unknown key in an entry", "auth:\n  methods: [{type: jwt, ids: x}]\n",
			[]string{`t.yml:2: auth.methods[0].ids: unknown key "ids" (known keys: type, method, id, actions, config)`}},
		{"type and method both", "auth:\n  methods: [{type: jwt, method: jwt}]\n",
			[]string{`t.yml:2: auth.methods[0].method: give the type once`}},
		{"empty type", "auth:\n  methods: [{type: \"\", id: x}]\n",
			[]string{`t.yml:2: auth.methods[0].type: unknown method type ""`}},
		{"key twice in an entry", "auth:\n  methods: [{type: jwt, id: a, id: b}]\n",
			[]string{`t.yml:2: auth.methods[0].id: key "id" is given twice`}},
		{"key twice in auth", "auth:\n  methods: [jwt]\n  jwt: {}\n  jwt: {}\n",
			[]string{`t.yml:4: auth.jwt: key "jwt" is given twice`}},
		{"entry without a type", "auth:\n  methods: [{id: x}]\n",
			[]string{`t.yml:2: auth.methods[0]: a method entry needs a type`}},
		{"unknown action", "auth:\n  methods: [{type: jwt, actions: [watch]}]\n",
			[]string{`t.yml:2: auth.methods[0].actions[0]:`, `"watch"`}},
		{"instance settings are decoded strictly by the type's factory", `auth:
  methods:
    - type: http
      id: billing
      config:
        adress: "http://127.0.0.1:1/"
        timeout: 0s
`, []string{
			`auth.methods[0].config.adress: address is required`,
			`t.yml:6: auth.methods[0].config.adress: unknown key "adress"`,
			`t.yml:7: auth.methods[0].config.timeout: timeout must be positive`,
		}},
		{"a type that needs settings", "auth:\n  methods: [{type: http, id: billing}]\n",
			[]string{`t.yml:2: auth.methods[0]: method "billing" has no settings: add config: {...} to the entry, or an auth.http section`}},
		{"a listed section that is missing", "auth:\n  methods: [keys]\n",
			[]string{`t.yml:2: auth.methods[0]: method "keys" has no settings`}},
		{"unknown section lists the types", "auth:\n  methods: [jwt]\n  ldap: {}\n",
			[]string{`t.yml:3: auth.ldap: unknown key "ldap" (known keys: methods, decision_timeout, query_token_on_http, bruteforce, internal, keys, jwt, http)`}},
		{"every problem at once", `auth:
  methods:
    - {type: ldap}
    - {type: http, id: a, config: {address: "ftp://x"}}
    - {type: jwt, id: a}
  jwt: {providers: [{name: p}]}
`, []string{
			`t.yml:3: auth.methods[0].type: unknown method type "ldap"`,
			`t.yml:4: auth.methods[1].config.address: address must start with http:// or https://`,
			`t.yml:5: auth.methods[2]: method id "a" is used twice`,
			`t.yml:6: auth.jwt.providers[0]: provider "p": jwks (key set URL) is required`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("t.yml", []byte(tt.src))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// engineFor builds cfg's methods (with d) into an engine that logs decisions to the returned buffer.
func engineFor(t *testing.T, src string, d deps) (*authz.Engine, *generation, *logtest.Buffer) {
	t.Helper()
	cfg, err := parseConfig("t.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	logs := new(logtest.Buffer)
	g, err := build(context.Background(), cfg, d, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	return authz.NewEngine(g.chain, slog.New(slog.NewTextHandler(logs, nil))), g, logs
}

// TestTwoHTTPServices: two instances of the http type, each limited to its own actions, each ask
// only their own service, and the decision log names the instance.
func TestTwoHTTPServices(t *testing.T) {
	type service struct {
		*httptest.Server
		calls atomic.Int64
	}
	start := func() *service {
		s := new(service)
		s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.calls.Add(1)
			var body struct{ User, Password string }
			if json.NewDecoder(r.Body).Decode(&body) != nil || body.User != "alice" || body.Password != "pw" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		}))
		t.Cleanup(s.Close)
		return s
	}
	billing, sso := start(), start()
	e, g, logs := engineFor(t, `auth:
  methods:
    - {type: http, id: billing, actions: [publish], config: {address: "`+billing.URL+`/auth", cache: {size: 0}}}
    - {type: http, id: sso, actions: [read], config: {address: "`+sso.URL+`/auth", cache: {size: 0}}}
`, deps{})
	defer g.stop()

	tests := []struct {
		action             authz.Action
		wantBackend        string
		wantBilling, wantS int64
	}{
		{authz.ActionPublish, "billing", 1, 0},
		{authz.ActionRead, "sso", 0, 1},
	}
	for _, tt := range tests {
		t.Run(string(tt.action), func(t *testing.T) {
			b0, s0 := billing.calls.Load(), sso.calls.Load()
			d := e.Authorize(context.Background(), &authz.Request{Action: tt.action, Path: "live/alice", Protocol: "rtmp", User: "alice", Pass: "pw"})
			if !d.Allowed() || d.Backend != tt.wantBackend {
				t.Errorf("got %v by %q (%s), want allow by %q", d.Outcome, d.Backend, d.Reason, tt.wantBackend)
			}
			if b, s := billing.calls.Load()-b0, sso.calls.Load()-s0; b != tt.wantBilling || s != tt.wantS {
				t.Errorf("calls: billing %d, sso %d; want %d, %d", b, s, tt.wantBilling, tt.wantS)
			}
			if want := "action=" + string(tt.action) + " path=live/alice"; !strings.Contains(logs.String(), want) ||
				!strings.Contains(logs.String(), "backend="+tt.wantBackend) {
				t.Errorf("decision log lacks %q with backend=%s:\n%s", want, tt.wantBackend, logs)
			}
		})
	}
	if d := e.Authorize(context.Background(), &authz.Request{Action: authz.ActionPlayback, Path: "live/alice", User: "alice", Pass: "pw"}); d.Allowed() || d.Reason != authz.ReasonNoMethod {
		t.Errorf("playback (no instance handles it): got %v %s, want a no_method denial", d.Outcome, d.Reason)
	}
}

// twoIdPs is a config with two jwt instances over two IdPs whose tokens carry the same role name
// "member", granted publish by one instance and read by the other. The instances' ids are
// staffID and viewersID; extra entries are listed first.
func twoIdPs(staff, viewers *fakeIdP, staffID, viewersID string, extra ...string) string {
	src := "auth:\n  methods:\n"
	for _, e := range extra {
		src += "    - " + e + "\n"
	}
	return src + `    - type: jwt
      id: ` + staffID + `
      config:
        providers:
          - {name: staff-idp, jwks: "` + staff.URL + `", issuer: "https://staff.test",
             roles: {member: [{action: publish, path: "live/*"}]}}
    - type: jwt
      id: ` + viewersID + `
      config:
        providers:
          - {name: viewer-idp, jwks: "` + viewers.URL + `", issuer: "https://viewers.test",
             roles: {member: [{action: read, path: "live/**"}]}}
`
}

// memberToken returns a token of idp for iss whose realm role is "member".
func memberToken(t *testing.T, idp *fakeIdP, iss string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": iss, "sub": "member-of-" + iss, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"realm_access": map[string]any{"roles": []string{"member"}},
	})
	tok.Header["kid"] = "idp-1"
	s, err := tok.SignedString(idp.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// awaitReady waits until every backend of g has fetched its keys.
func awaitReady(t *testing.T, g *generation) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %v", g.ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type idpCase struct {
	name        string
	tok         string
	action      authz.Action
	wantAllow   bool
	wantBackend string
}

func checkIdPCases(t *testing.T, e *authz.Engine, logs *logtest.Buffer, cases []idpCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Authorize(context.Background(), &authz.Request{Action: tt.action, Path: "live/cam", Protocol: "rtsp", Token: tt.tok})
			if d.Allowed() != tt.wantAllow || (tt.wantAllow && d.Backend != tt.wantBackend) {
				t.Errorf("got %v by %q (%s), want allowed=%v by %q", d.Outcome, d.Backend, d.Reason, tt.wantAllow, tt.wantBackend)
			}
			if tt.wantAllow && !strings.Contains(logs.String(), "backend="+tt.wantBackend) {
				t.Errorf("decision log lacks backend=%s:\n%s", tt.wantBackend, logs)
			}
		})
	}
}

// TestTwoIdPs: two jwt instances, each over its own IdP, grant a role of the same name different
// permissions: an instance's roles apply to its own IdP's tokens only.
func TestTwoIdPs(t *testing.T) {
	staff, viewers := newFakeIdP(t), newFakeIdP(t)
	e, g, logs := engineFor(t, twoIdPs(staff, viewers, "staff", "viewers"), deps{})
	defer g.stop()
	awaitReady(t, g)
	staffTok, viewerTok := memberToken(t, staff, "https://staff.test"), memberToken(t, viewers, "https://viewers.test")
	checkIdPCases(t, e, logs, []idpCase{
		{"staff member publishes", staffTok, authz.ActionPublish, true, "staff"},
		{"staff member may not read", staffTok, authz.ActionRead, false, ""},
		{"viewer member reads", viewerTok, authz.ActionRead, true, "viewers"},
		{"viewer member may not publish", viewerTok, authz.ActionPublish, false, ""},
		{"viewer IdP's key does not sign for staff", memberToken(t, viewers, "https://staff.test"), authz.ActionPublish, false, ""},
	})
}

// TestReloadTakesOverJWKSPerInstance: a reload (a new generation built with the running one as
// prev) takes over each jwt instance's unchanged providers from the instance with the same id, so
// with both IdPs down the new generation is ready at once, fetches nothing and still verifies
// both IdPs' tokens after the old generation stopped. An instance whose id now names other
// settings starts fresh.
func TestReloadTakesOverJWKSPerInstance(t *testing.T) {
	staff, viewers := newFakeIdP(t), newFakeIdP(t)
	_, gen1, _ := engineFor(t, twoIdPs(staff, viewers, "staff", "viewers"), deps{})
	awaitReady(t, gen1)
	staff.down.Store(true)
	viewers.down.Store(true)
	hits := staff.hits.Load() + viewers.hits.Load()

	// Another instance first: takeover goes by id, not by position.
	reordered := twoIdPs(staff, viewers, "staff", "viewers", `{type: http, id: billing, config: {address: "http://127.0.0.1:1/"}}`)
	e, gen2, logs := engineFor(t, reordered, deps{prev: gen1})
	defer gen2.stop()
	if err := gen2.ready(); err != nil {
		t.Fatalf("after the reload: %v, want ready at once (providers taken over)", err)
	}
	gen1.stop()
	checkIdPCases(t, e, logs, []idpCase{
		{"staff member publishes", memberToken(t, staff, "https://staff.test"), authz.ActionPublish, true, "staff"},
		{"viewer member reads", memberToken(t, viewers, "https://viewers.test"), authz.ActionRead, true, "viewers"},
	})
	if got := staff.hits.Load() + viewers.hits.Load() - hits; got != 0 {
		t.Errorf("JWKS fetches caused by the reload: got %d, want 0", got)
	}

	_, gen3, _ := engineFor(t, twoIdPs(staff, viewers, "viewers", "staff"), deps{prev: gen2})
	defer gen3.stop()
	if err := gen3.ready(); err == nil {
		t.Error("ids swapped between the IdPs: ready at once, want fresh providers (IdPs down: not ready)")
	}
}

// TestMethodWarnings: every instance's settings are checked for warnings (an instance's own
// config included), and a section shared by several instances is warned about once.
func TestMethodWarnings(t *testing.T) {
	cfg, err := parseConfig("t.yml", []byte(`auth:
  methods:
    - {type: internal, id: a}
    - {type: internal, id: b}
    - {type: internal, id: c, config: {users: [{user: carol, permissions: [{action: read}]}]}}
  internal:
    users: [{user: bob, permissions: [{action: read}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.warnings(), "\n")
	for name, want := range map[string]int{`user "bob" has an empty pass`: 1, `user "carol" has an empty pass`: 1} {
		if got := strings.Count(w, name); got != want {
			t.Errorf("warnings about %s: got %d, want %d:\n%s", name, got, want, w)
		}
	}
}
