package login

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/authz/clientip"
)

// Handler serves the login endpoints; mount it at LoginPath, LoginPath+"/" and LogoutPath:
//
//	GET  /login?next=/watch/x  starts a login at the provider (next: a local path to return to)
//	GET  /login/callback       the provider's answer: a session, or an error page and none
//	POST /login/token          (X-CSRF-Token) a viewer token for the page's WHEP requests
//	POST /logout               (csrf) ends the session, then the provider's session if it can
//
// A local login (NewLocal) serves GET /login as its form and POST /login to check it, and no
// callback.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	if m.Local() {
		mux.HandleFunc("GET "+LoginPath, m.localStart)
		mux.HandleFunc("POST "+LoginPath, m.localLogin)
	} else {
		mux.HandleFunc("GET "+LoginPath, m.start)
		mux.HandleFunc("GET "+CallbackPath, m.callback)
	}
	mux.HandleFunc("POST "+TokenPath, m.viewerToken)
	mux.HandleFunc("POST "+LogoutPath, m.logout)
	return mux
}

// safeNext returns next when it is a path on this site, else "/".
func safeNext(next string) string {
	if next == "" || len(next) > maxNext || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

func (m *Manager) start(w http.ResponseWriter, r *http.Request) {
	d, err := m.discover(r.Context())
	if err != nil {
		m.log.Warn("login: identity provider unavailable", "error", err.Error())
		m.errorPage(w, http.StatusBadGateway, "The login service is unreachable",
			"gatehouse could not reach the identity provider. Try again in a minute.")
		return
	}
	f := &flow{
		state: random(24), nonce: random(24), verifier: oauth2.GenerateVerifier(),
		next: safeNext(r.URL.Query().Get("next")), expires: m.now().Add(FlowTTL),
		client: clientip.Key(clientip.Addr(r)),
	}
	id := random(24)
	m.mu.Lock()
	m.sweep(m.now())
	m.capClient(f.client)
	m.flows[id] = f
	m.mu.Unlock()
	m.setCookie(w, r, flowCookie, id, LoginPath, int(FlowTTL/time.Second))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, d.oauth.AuthCodeURL(f.state, oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)), http.StatusFound)
}

// fail answers a failed callback: the reason is logged (never a code, token or cookie) and the
// browser gets an error page and no session.
func (m *Manager) fail(w http.ResponseWriter, status int, reason, title, detail string) {
	m.log.Warn("login refused", "reason", reason)
	m.errorPage(w, status, title, detail)
}

const again = "Start again from the login button; if it keeps happening, tell whoever runs this site."

func (m *Manager) callback(w http.ResponseWriter, r *http.Request) {
	// The flow is consumed whatever happens next: a state is good for one answer only.
	var f *flow
	if c, err := r.Cookie(flowCookie); err == nil && len(c.Value) <= 64 {
		m.mu.Lock()
		f = m.flows[c.Value]
		delete(m.flows, c.Value)
		m.mu.Unlock()
	}
	m.setCookie(w, r, flowCookie, "", LoginPath, -1)
	if len(r.URL.RawQuery) > maxCallbackQuery {
		m.fail(w, http.StatusBadRequest, "callback_too_large", "That login answer is not valid", again)
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		m.fail(w, http.StatusBadRequest, "callback_malformed", "That login answer is not valid", again)
		return
	}
	for k, v := range q {
		if len(v) > 1 {
			m.fail(w, http.StatusBadRequest, "callback_repeated_"+safeKey(k), "That login answer is not valid", again)
			return
		}
	}
	if e := q.Get("error"); e != "" {
		m.fail(w, http.StatusUnauthorized, "provider_error", "The identity provider did not log you in",
			"It answered: "+truncate(e, 64)+". "+again)
		return
	}
	if f == nil || !m.now().Before(f.expires) {
		m.fail(w, http.StatusBadRequest, "unknown_or_used_state", "This login link has expired or was already used", again)
		return
	}
	code, state := q.Get("code"), q.Get("state")
	if code == "" || len(code) > maxCode || state == "" || len(state) > maxState {
		m.fail(w, http.StatusBadRequest, "callback_missing_or_oversized", "That login answer is not valid", again)
		return
	}
	if subtle.ConstantTimeCompare([]byte(state), []byte(f.state)) != 1 {
		m.fail(w, http.StatusBadRequest, "state_mismatch", "That login answer does not belong to this browser", again)
		return
	}
	d, err := m.discover(r.Context())
	if err != nil {
		m.fail(w, http.StatusBadGateway, "provider_unreachable", "The login service is unreachable", "Try again in a minute.")
		return
	}
	ctx := oidc.ClientContext(r.Context(), m.client)
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		reason := "code_exchange_failed"
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			reason += ": " + safeKey(re.ErrorCode)
		}
		m.fail(w, http.StatusUnauthorized, reason, "The identity provider did not accept this login", again)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		m.fail(w, http.StatusUnauthorized, "no_id_token", "The identity provider sent no ID token", again)
		return
	}
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		m.fail(w, http.StatusUnauthorized, "id_token_invalid", "The identity provider's answer could not be verified", again)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.nonce)) != 1 {
		m.fail(w, http.StatusUnauthorized, "nonce_mismatch", "The identity provider's answer could not be verified", again)
		return
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		m.fail(w, http.StatusUnauthorized, "id_token_claims", "The identity provider's answer could not be verified", again)
		return
	}
	if azp, ok := claims["azp"]; ok {
		var s string
		if json.Unmarshal(azp, &s) != nil || s != m.cfg.ClientID {
			m.fail(w, http.StatusUnauthorized, "azp_mismatch", "The identity provider's answer could not be verified", again)
			return
		}
	}
	m.mergeClaims(ctx, d, tok, idt.Subject, claims)
	perms, err := m.mapper(claims)
	if err != nil {
		m.fail(w, http.StatusUnauthorized, "claims_unmapped", "Your account's permissions could not be read", again)
		return
	}
	s := &Session{
		id: random(32), Issuer: idt.Issuer, Subject: idt.Subject, Name: displayName(claims, idt.Subject),
		Username: claimString(claims, "preferred_username"), UsernameUnique: m.cfg.UniqueUsernames, CSRF: random(24),
		Perms: perms, Expires: m.now().Add(m.cfg.SessionTTL.Or(DefaultSessionTTL)), idToken: raw,
	}
	m.mu.Lock()
	m.sweep(m.now())
	m.sessions[s.id] = s
	m.mu.Unlock()
	secure := m.Secure(r)
	m.setCookie(w, r, m.cookieName(secure), s.id, "/", int(m.cfg.SessionTTL.Or(DefaultSessionTTL)/time.Second))
	m.log.Info("login", "identity", s.Name, "subject", s.Subject, "permissions", len(perms))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, f.next, http.StatusSeeOther)
}

// mergeClaims adds the claims of userinfo (same sub) and of an access token that is a JWT of
// the same issuer issued to this client (Keycloak puts roles there by default), without
// replacing the ID token's own claims.
func (m *Manager) mergeClaims(rctx context.Context, d *discovered, tok *oauth2.Token, sub string, claims map[string]json.RawMessage) {
	add := func(more map[string]json.RawMessage) {
		for k, v := range more {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	if at, err := d.atVerifier.Verify(rctx, tok.AccessToken); err == nil && at.Subject == sub {
		var c map[string]json.RawMessage
		if at.Claims(&c) == nil {
			var azp string
			if v, ok := c["azp"]; ok && json.Unmarshal(v, &azp) == nil && azp == m.cfg.ClientID {
				add(c)
			}
		}
	}
	if d.provider.UserInfoEndpoint() != "" {
		if ui, err := d.provider.UserInfo(rctx, oauth2.StaticTokenSource(tok)); err == nil && ui.Subject == sub {
			var c map[string]json.RawMessage
			if ui.Claims(&c) == nil {
				add(c)
			}
		}
	}
}

func displayName(claims map[string]json.RawMessage, sub string) string {
	for _, k := range []string{"preferred_username", "name", "email"} {
		var s string
		if v, ok := claims[k]; ok && json.Unmarshal(v, &s) == nil && strings.TrimSpace(s) != "" {
			return truncate(s, 64)
		}
	}
	return truncate(sub, 64)
}

// claimString returns a string claim ("" when absent or not a string), at most 64 characters.
// Spaces are kept: " alice" is another login name than "alice" where a provider allows it.
func claimString(claims map[string]json.RawMessage, k string) string {
	var s string
	if v, ok := claims[k]; ok && json.Unmarshal(v, &s) == nil {
		return truncate(s, 64)
	}
	return ""
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// safeKey keeps a short word for a log line: letters, digits, _ and -.
func safeKey(s string) string {
	s = truncate(s, 40)
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '?'
	}, s)
}

func (m *Manager) viewerToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	s, _ := m.Current(r)
	if s == nil {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"session expired"}` + "\n"))
		return
	}
	if !m.CheckCSRF(r, s) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"cross-site request refused"}` + "\n"))
		return
	}
	tok, exp, err := m.ViewerToken(s)
	if errors.Is(err, ErrNoPermissions) {
		_, _ = w.Write([]byte(`{"token":""}` + "\n")) // the user watches what anyone may
		return
	}
	if err != nil {
		m.log.Error("login: mint viewer token", "error", err.Error())
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"could not mint a token"}` + "\n"))
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}{tok, exp})
}

func (m *Manager) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	s, _ := m.Current(r)
	if s == nil {
		m.clearSession(w, r)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !m.CheckCSRF(r, s) {
		m.fail(w, http.StatusForbidden, "logout_csrf", "This request did not come from this site", "Nothing was changed.")
		return
	}
	m.mu.Lock()
	delete(m.sessions, s.id)
	m.mu.Unlock()
	m.clearSession(w, r)
	m.log.Info("logout", "identity", s.Name, "subject", s.Subject)
	dest := "/"
	m.discoverMu.Lock()
	d := m.disc
	m.discoverMu.Unlock()
	if d != nil && d.endSession != "" {
		if u, err := url.Parse(d.endSession); err == nil {
			q := u.Query()
			q.Set("client_id", m.cfg.ClientID)
			q.Set("id_token_hint", s.idToken)
			q.Set("post_logout_redirect_uri", m.postLogout())
			u.RawQuery = q.Encode()
			dest = u.String()
		}
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

func (m *Manager) postLogout() string {
	if m.cfg.PostLogoutRedirectURL != "" {
		return m.cfg.PostLogoutRedirectURL
	}
	u, _ := url.Parse(m.cfg.RedirectURL)
	return u.Scheme + "://" + u.Host + "/"
}

func (m *Manager) clearSession(w http.ResponseWriter, r *http.Request) {
	for _, secure := range []bool{true, false} {
		if c, err := r.Cookie(m.cookieName(secure)); err == nil && c.Value != "" {
			m.setCookie(w, r, m.cookieName(secure), "", "/", -1)
		}
	}
}

// ClearStale removes a session cookie that names no session, so the page says "log in again"
// once.
func (m *Manager) ClearStale(w http.ResponseWriter, r *http.Request) { m.clearSession(w, r) }

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · gatehouse</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/assets/app.css"></head>
<body class="page-message"><a class="brand" href="/"><img src="/favicon.svg" alt="" width="26" height="26"><span>gatehouse</span></a>
<main class="message" data-error="{{.Status}}">
<svg class="message-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 2 1 21h22L12 2zm0 6 .01 0M12 9v5m0 3v.01" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>
<h1>{{.Title}}</h1><p>{{.Detail}}</p>
<p class="actions"><a class="button primary" href="/login">Log in again</a> <a class="button" href="/">Back to the streams</a></p>
</main></body></html>
`))

// errorPage writes a page for people; every string is escaped by html/template.
func (m *Manager) errorPage(w http.ResponseWriter, status int, title, detail string) {
	SecurityHeaders(w.Header(), m.FormTarget())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = errorTmpl.Execute(w, struct {
		Status        int
		Title, Detail string
	}{status, title, detail})
}

// CSP returns the Content-Security-Policy of every page: scripts and styles only from
// gatehouse's own files, no inline code, media and fetches to this origin only, no framing, and
// forms that post only here (and, after logout redirects there, to formTarget: the provider's
// origin, or "").
func CSP(formTarget string) string {
	fa := "'self'"
	if formTarget != "" {
		fa += " " + formTarget
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; form-action " + fa + "; " +
		"base-uri 'none'; frame-ancestors 'none'"
}

// FormTarget returns the identity provider's origin (scheme://host), where logout may redirect
// a form; "" when m is nil or a local login.
func (m *Manager) FormTarget() string {
	if m == nil || m.Local() {
		return ""
	}
	u, err := url.Parse(m.cfg.Issuer)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// SecurityHeaders sets the headers every page carries; formTarget as for CSP.
func SecurityHeaders(h http.Header, formTarget string) {
	h.Set("Content-Security-Policy", CSP(formTarget))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}
