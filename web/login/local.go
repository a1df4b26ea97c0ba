package login

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/guard"
)

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// LocalSource is the Request.Source of a local login's check, as the engine logs it.
const LocalSource = "login"

// Limits of the local login: what the form may send, and how failed attempts slow an address.
const (
	maxLocalForm  = 8 << 10
	maxLocalUser  = 128
	maxLocalPass  = 1024
	freeFailures  = 5                // failed logins an address may make before it has to wait
	firstLockout  = 30 * time.Second // the wait after them, doubled with every further failure
	maxLockout    = 15 * time.Minute
	failureMemory = 15 * time.Minute // a quiet address starts again from zero after this
	maxAddresses  = 10_000
)

// NewLocal returns a Manager for a gatehouse without an identity provider: GET /login shows a
// form, and POST /login asks auth whether the user and password are allowed action api under a
// name (an internal user such as an admin; an anonymous grant such as `user: any` from loopback
// is not enough), from the browser's address. A success creates the same kind of session as an
// OIDC login, holding only the api permission (the user manages; it watches what anyone may).
// Failed attempts are counted per address (IPv6: per /64): after 5, the address waits 30 s,
// doubled with every further failure up to 15 minutes, and its attempts are refused without
// asking auth. The password is never logged.
func NewLocal(auth Authorizer, mint Minter, opts ...Option) (*Manager, error) {
	if auth == nil || mint == nil {
		return nil, ErrConfig
	}
	m := &Manager{local: auth, mint: mint, now: time.Now, sessions: map[string]*Session{}, flows: map[string]*flow{},
		fails: map[netip.Addr]*failures{}}
	for _, o := range opts {
		o(m)
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// generationer is what a local Authorizer may also offer (the engine does): the generation of
// its configuration, which advances on every reload that changes auth.
type generationer interface{ Generation() uint64 }

// outdated reports whether a local session was checked against a configuration that a reload
// has since changed: its password cannot be checked again, so it ends (the user may have been
// removed or had its password changed) and the operator logs in again.
func (m *Manager) outdated(s *Session) bool {
	g, ok := m.local.(generationer)
	return m.local != nil && ok && g.Generation() != s.gen
}

// Local reports whether m is a local login (NewLocal) rather than an OpenID Connect client.
func (m *Manager) Local() bool { return m != nil && m.local != nil }

type failures struct {
	n     int
	last  time.Time
	until time.Time
}

// throttleKey is the address failures are counted under: IPv6 clients often hold a whole /64.
func throttleKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		return netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a.Unmap()
}

// lockedFor returns how long a must still wait before its next attempt (0: it may try now).
func (m *Manager) lockedFor(a netip.Addr, now time.Time) time.Duration {
	m.failMu.Lock()
	defer m.failMu.Unlock()
	if f := m.fails[throttleKey(a)]; f != nil && now.Before(f.until) {
		return f.until.Sub(now)
	}
	return 0
}

// failed counts a failed attempt from a.
func (m *Manager) failed(a netip.Addr, now time.Time) {
	m.failMu.Lock()
	defer m.failMu.Unlock()
	k := throttleKey(a)
	f := m.fails[k]
	if f == nil || now.Sub(f.last) > failureMemory {
		if len(m.fails) >= maxAddresses {
			m.sweepFailures(now)
		}
		f = &failures{}
		m.fails[k] = f
	}
	f.n++
	f.last = now
	if f.n >= freeFailures {
		wait := maxLockout
		if shift := f.n - freeFailures; shift < 10 {
			wait = min(firstLockout<<shift, maxLockout)
		}
		f.until = now.Add(wait)
	}
}

// sweepFailures forgets quiet addresses and, while the table is still full, the ones whose last
// failure is oldest (m.failMu held).
func (m *Manager) sweepFailures(now time.Time) {
	for k, f := range m.fails {
		if now.Sub(f.last) > failureMemory && !now.Before(f.until) {
			delete(m.fails, k)
		}
	}
	for len(m.fails) >= maxAddresses {
		var oldest netip.Addr
		var at time.Time
		for k, f := range m.fails {
			if !oldest.IsValid() || f.last.Before(at) {
				oldest, at = k, f.last
			}
		}
		delete(m.fails, oldest)
	}
}

func (m *Manager) succeeded(a netip.Addr) {
	m.failMu.Lock()
	delete(m.fails, throttleKey(a))
	m.failMu.Unlock()
}

var localTmpl = template.Must(template.New("local").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<title>Log in · gatehouse</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/assets/app.css"></head>
<body class="page-message"><a class="brand" href="/"><img src="/favicon.svg" alt="" width="26" height="26"><span>gatehouse</span></a>
<main class="message login-form" data-error="{{.Status}}">
<h1>Log in to manage gatehouse</h1>
<p>Use an operator account from gatehouse's configuration (a user allowed <code>api</code>).</p>
{{if .Error}}<p class="notice error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="next" value="{{.Next}}">
<label>User name <input name="username" autocomplete="username" required maxlength="128" value="{{.User}}"{{if not .User}} autofocus{{end}}></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required maxlength="1024"{{if .User}} autofocus{{end}}></label>
<p class="actions"><button class="button primary" type="submit">Log in</button> <a class="button" href="/">Back to the streams</a></p>
</form>
</main></body></html>
`))

func (m *Manager) localForm(w http.ResponseWriter, status int, next, user, msg string) {
	SecurityHeaders(w.Header(), "")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = localTmpl.Execute(w, struct {
		Status            int
		Next, User, Error string
	}{status, next, user, msg})
}

func (m *Manager) localStart(w http.ResponseWriter, r *http.Request) {
	if s, _ := m.Current(r); s != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	m.localForm(w, http.StatusOK, safeNext(r.URL.Query().Get("next")), "", "")
}

func (m *Manager) localLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLocalForm)
	ip, now := clientip.Addr(r), m.now()
	if !m.SameOrigin(r) {
		m.fail(w, http.StatusForbidden, "local_login_cross_site", "This request did not come from this site", "Open the login page and try again.")
		return
	}
	if err := r.ParseForm(); err != nil {
		m.fail(w, http.StatusBadRequest, "local_login_malformed", "That login form is not valid", "Open the login page and try again.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	user, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
	if wait := m.lockedFor(ip, now); wait > 0 {
		m.log.Warn("login refused", "reason", "too_many_failures", "ip", ip.String())
		guard.SetRetryAfter(w.Header(), wait)
		m.localForm(w, http.StatusTooManyRequests, next, truncate(user, maxLocalUser),
			"Too many failed logins from your address. Try again in "+humanWait(wait)+".")
		return
	}
	if user == "" || pass == "" || len(user) > maxLocalUser || len(pass) > maxLocalPass {
		m.localForm(w, http.StatusBadRequest, next, truncate(user, maxLocalUser), "Enter your user name and password.")
		return
	}
	var gen uint64 // read before the check: a reload during it ends the session at once
	if g, ok := m.local.(generationer); ok {
		gen = g.Generation()
	}
	d := m.local.Authorize(r.Context(), &authz.Request{
		Action: authz.ActionAPI, User: user, Pass: pass, IP: ip, UserAgent: r.UserAgent(), Source: LocalSource,
	})
	if !d.Allowed() || d.Identity == "" {
		if d.Undecided {
			m.log.Warn("login refused", "reason", "undecided", "ip", ip.String())
			m.localForm(w, http.StatusServiceUnavailable, next, user, "gatehouse could not check your account just now. Try again in a minute.")
			return
		}
		if d.Reason == authz.ReasonBanned { // the engine's brute-force ban: say so, count nothing more
			m.log.Warn("login refused", "reason", "banned", "ip", ip.String())
			guard.SetRetryAfter(w.Header(), d.RetryAfter)
			m.localForm(w, http.StatusTooManyRequests, next, user, "Too many failed attempts. Try again in "+humanWait(d.RetryAfter)+".")
			return
		}
		m.failed(ip, now)
		m.log.Warn("login refused", "reason", "bad_credentials_or_not_api", "ip", ip.String())
		m.localForm(w, http.StatusUnauthorized, next, user, "Wrong user name or password, or this account may not manage gatehouse.")
		return
	}
	m.succeeded(ip)
	s := &Session{
		id: random(32), Subject: d.Identity, Name: truncate(d.Identity, 64), CSRF: random(24),
		Perms: authz.Permissions{{Action: authz.ActionAPI}}, Expires: now.Add(m.cfg.SessionTTL.Or(DefaultSessionTTL)),
	}
	s.gen = gen
	m.mu.Lock()
	m.sweep(now)
	m.sessions[s.id] = s
	m.mu.Unlock()
	m.setCookie(w, r, m.cookieName(m.Secure(r)), s.id, "/", int(m.cfg.SessionTTL.Or(DefaultSessionTTL)/time.Second))
	m.log.Info("login", "identity", s.Name, "method", "local", "ip", ip.String())
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func humanWait(d time.Duration) string {
	if d <= time.Minute {
		return strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1)) + " seconds"
	}
	return strconv.Itoa(int((d+time.Minute-1)/time.Minute)) + " minutes"
}
