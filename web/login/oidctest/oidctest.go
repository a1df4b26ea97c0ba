// Package oidctest starts a real OpenID Connect provider on loopback for tests: zitadel/oidc's
// OpenID-certified op package with its example storage, configured like Keycloak (issuer
// /realms/<realm>, realm_access.roles, resource_access.<client>.roles, azp) and with a login
// form (username, password) at /login/username. It is imported by tests only.
package oidctest

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is an account at the provider.
type User struct {
	ID, Username, Password string
	RealmRoles             []string            // realm_access.roles
	ClientRoles            map[string][]string // resource_access.<client>.roles
}

// Client is a registered client.
type Client struct {
	ID, Secret, RedirectURL, PostLogoutURL string
}

// Provider is a running provider.
type Provider struct {
	Issuer string // http://127.0.0.1:port/realms/<realm>
	Server *httptest.Server

	st     *kcStorage
	mu     sync.Mutex
	tamper func(claims map[string]any)
	ended  int
}

// Start starts a provider for realm with clients and users; Cleanup stops it.
func Start(t testing.TB, realm string, clients []Client, users ...User) *Provider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	p := &Provider{Issuer: "http://" + srv.Listener.Addr().String() + "/realms/" + realm, Server: srv}
	us := userStore{users: map[string]*storage.User{}, roles: map[string]User{}}
	for _, u := range users {
		us.users[u.ID] = &storage.User{ID: u.ID, Username: u.Username, Password: u.Password, FirstName: u.Username,
			LastName: "Test", Email: u.Username + "@example.test", EmailVerified: true, PreferredLanguage: language.English}
		us.roles[u.ID] = u
	}
	cl := map[string]*storage.Client{}
	post := map[string]string{}
	for _, c := range clients {
		cl[c.ID] = storage.WebClient(c.ID, c.Secret, c.RedirectURL)
		post[c.ID] = c.PostLogoutURL
	}
	p.st = &kcStorage{Storage: storage.NewStorageWithClients(us, cl), users: us, post: post}
	router := exampleop.SetupServer(p.Issuer, p.st, nil, false)
	prefix := "/realms/" + realm
	mux := http.NewServeMux()
	inner := http.StripPrefix(prefix, router)
	mux.Handle(prefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimPrefix(r.URL.Path, prefix) {
		case "/oauth/token":
			p.token(w, r, inner)
			return
		case "/end_session":
			p.mu.Lock()
			p.ended++
			p.mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	}))
	mux.Handle("/login/", router) // the example login form redirects to /login/username
	mux.Handle("/logged-out", router)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// Tamper makes the token endpoint change the ID token's claims and sign it again with the
// provider's own key (nil: stop). It models a provider answer that is signed correctly but
// is for another nonce, audience or issuer.
func (p *Provider) Tamper(f func(claims map[string]any)) {
	p.mu.Lock()
	p.tamper = f
	p.mu.Unlock()
}

// EndSessions returns how many times the end_session endpoint was called.
func (p *Provider) EndSessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request, inner http.Handler) {
	p.mu.Lock()
	tamper := p.tamper
	p.mu.Unlock()
	if tamper == nil {
		inner.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	inner.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		copyResponse(w, rec)
		return
	}
	if idt, ok := body["id_token"].(string); ok {
		body["id_token"] = p.resign(idt, tamper)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = io.Copy(w, rec.Body)
}

func (p *Provider) resign(idt string, tamper func(map[string]any)) string {
	parts := strings.Split(idt, ".")
	if len(parts) != 3 {
		return idt
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return idt
	}
	var claims map[string]any
	if json.Unmarshal(raw, &claims) != nil {
		return idt
	}
	tamper(claims)
	key, err := p.st.SigningKey(context.Background())
	if err != nil {
		return idt
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: key.SignatureAlgorithm(),
		Key: jose.JSONWebKey{Key: key.Key().(*rsa.PrivateKey), KeyID: key.ID()}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return idt
	}
	payload, _ := json.Marshal(claims)
	obj, err := sig.Sign(payload)
	if err != nil {
		return idt
	}
	out, _ := obj.CompactSerialize()
	return out
}

type userStore struct {
	users map[string]*storage.User
	roles map[string]User
}

func (u userStore) GetUserByID(id string) *storage.User { return u.users[id] }
func (u userStore) GetUserByUsername(name string) *storage.User {
	for _, x := range u.users {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u userStore) ExampleClientID() string { return "service" }

// kcStorage adds Keycloak's role claims to ID tokens and userinfo.
type kcStorage struct {
	*storage.Storage
	users userStore
	post  map[string]string
}

func (s *kcStorage) roles(info *oidc.UserInfo, userID string) {
	u, ok := s.users.roles[userID]
	if !ok {
		return
	}
	info.AppendClaims("preferred_username", u.Username)
	info.AppendClaims("realm_access", map[string]any{"roles": nonNil(u.RealmRoles)})
	res := map[string]any{}
	for c, r := range u.ClientRoles {
		res[c] = map[string]any{"roles": r}
	}
	info.AppendClaims("resource_access", res)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *kcStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	s.roles(info, req.GetSubject())
	return nil
}

// SetUserinfoFromToken fills the userinfo endpoint's answer.
func (s *kcStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	s.roles(info, info.Subject)
	return nil
}

// GetClientByClientID returns the client with its post-logout redirect URI.
func (s *kcStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.post[id] == "" {
		return c, nil
	}
	return postLogoutClient{c, s.post[id]}, nil
}

type postLogoutClient struct {
	op.Client
	post string
}

func (c postLogoutClient) PostLogoutRedirectURIs() []string { return []string{c.post} }
