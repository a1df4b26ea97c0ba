package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/tokens"
	"gatehouse/backends/jwks"
	"gatehouse/backends/keys"
	"gatehouse/backends/users"
	"gatehouse/protocols/mediamtx"
	"gatehouse/protocols/nginxrtmp"
	"gatehouse/protocols/ome"
	"gatehouse/protocols/srs"
)

// The seam with the real backends (issue 9). The conformance suite (authz/conformance) proves
// the same rules for every adapter against a scripted backend.

const aliceKey = "AliceSecretStreamKey123"

func keysEngine(t testing.TB, log *slog.Logger) *authz.Engine {
	t.Helper()
	k, err := keys.NewKey(aliceKey, "live/alice", "alice", []authz.Action{authz.ActionPublish}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.New(keys.Config{Keys: []keys.Key{k}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return authz.NewEngine(authz.NewChain(authz.Method{Name: "keys", Backend: b}), log)
}

// TestStreamKeyAsNameRefusedWhereNoRename (item 1): methods [keys], key → live/alice. MediaMTX
// cannot rename, so a publish of live/<KEY> is refused (it answered 200 and MediaMTX published
// under the key), as SRS refuses it, while nginx-rtmp renames it with a 302; the decision log
// shows the public path and never the key.
func TestStreamKeyAsNameRefusedWhereNoRename(t *testing.T) {
	var logs bytes.Buffer
	eng := keysEngine(t, slog.New(slog.NewTextHandler(&logs, nil)))
	post := func(h http.Handler, ctype, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		r.RemoteAddr = "127.0.0.1:40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := post(mediamtx.New(mediamtx.Config{}, eng), "application/json", `{"action":"publish","path":"live/`+aliceKey+`","protocol":"rtmp","ip":"192.0.2.1"}`); w.Code != http.StatusForbidden {
		t.Errorf("mediamtx: got %d %s, want 403", w.Code, w.Body)
	}
	if w := post(mediamtx.New(mediamtx.Config{}, eng), "application/json", `{"action":"publish","path":"live/alice","protocol":"rtmp","query":"key=`+aliceKey+`"}`); w.Code != http.StatusOK {
		t.Errorf("mediamtx with ?key= on the public path: got %d %s, want 200", w.Code, w.Body)
	}
	if w := post(srs.New(srs.Config{}, eng, nil, nil), "application/json", `{"action":"on_publish","app":"live","stream":"`+aliceKey+`","ip":"192.0.2.1","client_id":"1"}`); w.Code != http.StatusForbidden {
		t.Errorf("srs: got %d %s, want 403", w.Code, w.Body)
	}
	w := post(nginxrtmp.New(nginxrtmp.Config{}, eng, nil, nil), "application/x-www-form-urlencoded", "call=publish&app=live&name="+aliceKey+"&addr=192.0.2.1&clientid=1")
	if w.Code != http.StatusFound || w.Header().Get("Location") != "alice" {
		t.Errorf("nginx-rtmp: got %d Location %q, want 302 alice", w.Code, w.Header().Get("Location"))
	}
	out := logs.String()
	if strings.Contains(out, aliceKey) || !strings.Contains(out, "path=live/alice") || !strings.Contains(out, "reason="+authz.ReasonRenameUnsupported) {
		t.Errorf("log: want path=live/alice, reason %s and never the key:\n%s", authz.ReasonRenameUnsupported, out)
	}
}

// tokenChain is the example config's methods: [internal, jwt], with one argon2 user (real cost)
// and gatehouse's own issuer.
func tokenChain(t testing.TB, now func() time.Time) (*authz.Engine, *tokens.Issuer) {
	t.Helper()
	const src = `
users:
- user: studio
  pass: argon2:$argon2i$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$/mrZ42TiTv1mcPnpMUera5oi0SFYbbyueAbdx5sUvWo
  permissions: [{action: publish, path: studio}]
`
	var ucfg users.Config
	if err := conf.Decode("users.yml", []byte(src), nil, &ucfg); err != nil {
		t.Fatal(err)
	}
	iss, err := tokens.LoadIssuer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	jb, err := jwks.New(jwks.Config{}, jwks.WithIssuer(iss), jwks.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jb.Close() })
	return authz.NewEngine(authz.NewChain(
		authz.Method{Name: "internal", Backend: users.New(ucfg)},
		authz.Method{Name: "jwt", Backend: jb},
	), nil), iss
}

func issue(t testing.TB, iss *tokens.Issuer) string {
	t.Helper()
	p, err := tokens.ParseAllow("publish:live/cam")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue("alice", []authz.Permission{p}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mediamtxAsk(t testing.TB, h http.Handler, fields string) (int, string) {
	r := httptest.NewRequest(http.MethodPost, "/hooks/mediamtx", strings.NewReader(`{"action":"publish","path":"live/cam","protocol":"rtsp",`+fields+`}`))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// TestTokenInPasswordKeepsItsReason (item 9): a token sent as the password (MediaMTX's advice
// for RTSP, RTMP and SRT) is verified as a token: an expired one is token_expired and a foreign
// one unknown_key, as in the token field, never bad_credentials; whatever the user name.
func TestTokenInPasswordKeepsItsReason(t *testing.T) {
	var later clockShift
	eng, iss := tokenChain(t, later.now)
	h := mediamtx.New(mediamtx.Config{}, eng)
	tok := issue(t, iss)
	other, err := tokens.LoadIssuer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	foreign := issue(t, other)
	for _, user := range []string{"any", "studio", "mallory"} {
		for _, tt := range []struct {
			name, tok  string
			shift      time.Duration
			wantStatus int
			wantReason string
		}{
			{"valid", tok, 0, 200, authz.ReasonAllowed},
			{"expired", tok, 2 * time.Hour, 401, "token_expired"},
			{"foreign", foreign, 0, 401, "unknown_key"},
		} {
			later.set(tt.shift)
			status, body := mediamtxAsk(t, h, `"user":"`+user+`","password":"`+tt.tok+`"`)
			if status != tt.wantStatus || !strings.Contains(body, `"reason":"`+tt.wantReason+`"`) {
				t.Errorf("user %s, %s token as password: got %d %s, want %d %s", user, tt.name, status, body, tt.wantStatus, tt.wantReason)
			}
		}
	}
}

// BenchmarkTokenInPassword (item 9): the same valid token in the password field and in the
// token field must cost the same (the password field paid the internal method's dummy argon2).
func BenchmarkTokenInPassword(b *testing.B) {
	eng, iss := tokenChain(b, time.Now)
	h := mediamtx.New(mediamtx.Config{}, eng)
	tok := issue(b, iss)
	for _, bb := range []struct{ name, fields string }{
		{"password", `"user":"any","password":"` + tok + `"`},
		{"token", `"token":"` + tok + `"`},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if status, body := mediamtxAsk(b, h, bb.fields); status != 200 && bb.name == "token" {
					b.Fatalf("got %d %s", status, body)
				}
			}
		})
	}
}

// clockShift is a clock offset from time.Now that a test moves (not concurrently).
type clockShift struct{ shift time.Duration }

func (a *clockShift) set(d time.Duration) { a.shift = d }
func (a *clockShift) now() time.Time      { return time.Now().Add(a.shift) }

// TestQueryTokenPolicyByOrigin (item 3): with the default policy, an OME LL-HLS request with the
// JWT in ?access_key= is refused like ?token= (the JWT backend used to look for token and jwt
// only), and both are accepted when the policy allows query tokens over HTTP.
func TestQueryTokenPolicyByOrigin(t *testing.T) {
	eng, iss := tokenChain(t, time.Now)
	p, err := tokens.ParseAllow("read:live/cam")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue("viewer", []authz.Permission{p}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lax := authz.NewEngine(eng.Chain().WithPolicy(authz.Policy{QueryTokenOnHTTP: true}), nil)
	for _, param := range []string{"token", "jwt", "access_key"} {
		for _, tt := range []struct {
			eng  *authz.Engine
			want bool
		}{{eng, false}, {lax, true}} {
			body := `{"client":{"address":"192.0.2.1","port":5000},"request":{"direction":"outgoing","protocol":"LLHLS","status":"opening",` +
				`"url":"https://h:3333/live/cam/llhls.m3u8?` + param + `=` + tok + `","time":"2026-01-01T00:00:00+00:00"}}`
			w := httptest.NewRecorder()
			ome.New(ome.Config{}, tt.eng, nil, nil).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/ome", strings.NewReader(body)))
			if got := strings.Contains(w.Body.String(), `"allowed":true`); got != tt.want {
				t.Errorf("?%s= with QueryTokenOnHTTP %v: got %s, want allowed %v", param, tt.eng == lax, w.Body, tt.want)
			}
		}
	}
}
