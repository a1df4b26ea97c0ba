package web

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/live"
	"gatehouse/web/login"
)

//go:embed assets templates
var files embed.FS

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Options are what the web app needs from the rest of gatehouse.
type Options struct {
	// Registry lists the live streams (required).
	Registry *live.Registry
	// Auth decides which streams a visitor may read (required).
	Auth Authorizer
	// Login is the browser login (OpenID Connect, or a local operator login); nil: every
	// visitor is anonymous and /manage is unavailable.
	Login *login.Manager
	// API serves gatehouse's JSON API (/api/v1/...); /manage calls it on the user's behalf
	// with a one-minute token. nil: /manage shows no data.
	API http.Handler
	// Playable reports whether gatehouse itself can play a stream in the browser (the SFU's
	// streams over WHEP; another node's only when this node pulls them, Edge); others are
	// listed with where they come from.
	Playable func(st live.Stream) bool
	// Edge says this node's SFU plays other nodes' SFU streams by pulling them from their
	// origin (an edge); without it the grid shows such a stream as "on node <id>".
	Edge bool
	// PlayURLs are where browsers play the streams of sources gatehouse does not play itself
	// (Config.PlayURLs); a source without one gets a card saying where it plays.
	PlayURLs map[string]PlayURL
	// RTMPServer is the RTMP server shown with new stream keys (Config.RTMPServer); "": rtmp://
	// and the page's host.
	RTMPServer string
	// Title is the site's name in the header (default "gatehouse").
	Title string
	// Log receives refused management requests (default: discard).
	Log *slog.Logger
}

// App is the browser application: the grid of live streams at /, one stream at /watch/{path},
// a room at /room/{name} (see Participant),
// the operator's page at /manage, their assets, the live events at /events and (with Login) the
// login endpoints. It starts no goroutines; Close ends the open event streams.
type App struct {
	opt      Options
	playURLs string // Options.PlayURLs as JSON, for the pages' script
	events   *live.Events
	pages    map[string]*template.Template
	assets   http.Handler
}

// New returns the app.
func New(opt Options) *App {
	if opt.Title == "" {
		opt.Title = "gatehouse"
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Playable == nil {
		opt.Playable = func(live.Stream) bool { return false }
	}
	a := &App{opt: opt}
	if len(opt.PlayURLs) > 0 {
		b, _ := json.Marshal(opt.PlayURLs) // strings only: cannot fail
		a.playURLs = string(b)
	}
	a.events = live.NewEvents(opt.Registry, a.visible)
	a.pages = map[string]*template.Template{}
	for _, name := range []string{"grid.html", "watch.html", "manage.html", "manage-denied.html", "manage-off.html", "room.html", "room-bad.html"} {
		a.pages[name] = template.Must(template.ParseFS(files, "templates/layout.html", "templates/"+name))
	}
	sub, _ := fs.Sub(files, "assets")
	a.assets = http.FileServerFS(sub)
	return a
}

// Close ends every open event stream (call it before shutting the listener down).
func (a *App) Close() { a.events.Close() }

// Paths lists the patterns Handler serves, for the caller's mux.
func (a *App) Paths() []string {
	p := []string{"/{$}", "/watch/", "/room/", "/manage", "/manage/", "/assets/", "/favicon.svg", "/events"}
	if a.opt.Login != nil {
		p = append(p, login.LoginPath, login.LoginPath+"/", login.LogoutPath)
	}
	return p
}

// Handler serves the app (see Paths).
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.grid)
	mux.HandleFunc("GET /watch/{path...}", a.watch)
	mux.HandleFunc("GET /room/{name}", a.room)
	mux.HandleFunc("POST /room/{name}/join", a.roomJoin)
	mux.HandleFunc("GET /manage", a.manage)
	mux.HandleFunc("/manage/api/{rest...}", a.manageAPI)
	mux.Handle("GET /assets/", a.static(http.StripPrefix("/assets", a.assets)))
	mux.Handle("GET /favicon.svg", a.static(a.assets))
	mux.Handle("GET /events", a.events)
	if a.opt.Login != nil {
		h := a.opt.Login.Handler()
		mux.Handle(login.LoginPath, h)
		mux.Handle(login.LoginPath+"/", h)
		mux.Handle(login.LogoutPath, h)
	}
	return mux
}

func (a *App) static(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// session returns r's session (nil when anonymous or without login) and whether a stale
// session cookie came with it.
func (a *App) session(r *http.Request) (*login.Session, bool) {
	if a.opt.Login == nil {
		return nil, false
	}
	return a.opt.Login.Current(r)
}

// visible decides, per stream, whether r's visitor may read it: the same engine decision WHEP
// will make, with the visitor's viewer token (none when anonymous).
func (a *App) visible(r *http.Request) live.Visible {
	ip, ua := clientip.Addr(r), r.UserAgent()
	cookies := r.Clone(context.WithoutCancel(r.Context())) // the session is looked up per use
	return func(st live.Stream) bool {
		req := &authz.Request{Action: authz.ActionRead, Path: st.Path, Protocol: st.Protocol, IP: ip, UserAgent: ua, Source: "web",
			Kind: authz.KindProbe} // filtering the grid is not an access attempt
		if a.opt.Playable(st) {
			req.Protocol = "webrtc"
		}
		if s, _ := a.session(cookies); s != nil {
			if tok, _, err := a.opt.Login.ViewerToken(s); err == nil {
				req.Token, req.TokenFrom = tok, authz.OriginHeader
			}
		}
		return a.opt.Auth.Authorize(r.Context(), req).Allowed()
	}
}

// pageData is what every page template gets. Every string is escaped by html/template.
type pageData struct {
	Title     string
	Site      string
	Page      string // grid, watch, manage
	Path      string // watch: the stream path; room: the room's prefix (room/<name>/)
	Room      string // room: its name
	User      string
	CSRF      string
	LoginOn   bool
	Stale     bool // a session cookie that names no session: "Your session expired"
	CanManage bool
	Next      string
	PlayURLs  string // JSON: source -> URL template with {path}
	RTMP      string // the RTMP server shown with new keys ("" : the page's host)
	Edge      bool   // other nodes' SFU streams play here (Options.Edge)
}

func (a *App) data(w http.ResponseWriter, r *http.Request, page, title string) pageData {
	s, stale := a.session(r)
	// A local login (no identity provider) is for operators only: no "Log in" for viewers.
	loginOn := a.opt.Login != nil && !a.opt.Login.Local()
	d := pageData{Title: title, Site: a.opt.Title, Page: page, LoginOn: loginOn, Stale: stale, Next: r.URL.RequestURI(),
		PlayURLs: a.playURLs, RTMP: a.opt.RTMPServer, Edge: a.opt.Edge}
	if stale {
		a.opt.Login.ClearStale(w, r)
	}
	if s != nil {
		d.User, d.CSRF, d.CanManage = s.Name, s.CSRF, s.Can(authz.ActionAPI)
	}
	return d
}

func (a *App) render(w http.ResponseWriter, status int, name string, d pageData) {
	login.SecurityHeaders(w.Header(), a.opt.Login.FormTarget())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := a.pages[name].ExecuteTemplate(w, "layout", d); err != nil {
		a.opt.Log.Warn("web: render", "page", name, "error", err.Error())
	}
}

func (a *App) grid(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, "grid.html", a.data(w, r, "grid", "Live now"))
}

func (a *App) watch(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.PathValue("path"), "/")
	d := a.data(w, r, "watch", path)
	d.Path = path
	a.render(w, http.StatusOK, "watch.html", d)
}

func (a *App) manage(w http.ResponseWriter, r *http.Request) {
	if a.opt.Login == nil {
		d := a.data(w, r, "message", "Management is off")
		a.render(w, http.StatusNotFound, "manage-off.html", d)
		return
	}
	s, _ := a.session(r)
	if s == nil {
		http.Redirect(w, r, login.LoginPath+"?next=/manage", http.StatusSeeOther)
		return
	}
	d := a.data(w, r, "manage", "Manage")
	if !d.CanManage {
		a.render(w, http.StatusForbidden, "manage-denied.html", d)
		return
	}
	a.render(w, http.StatusOK, "manage.html", d)
}

// manageAPI forwards /manage/api/{rest} to /api/v1/{rest} for a session allowed "api": reads
// as they are; changes only with the session's CSRF token and gatehouse's own Origin. The
// request carries a one-minute token minted for the session's api permission, never the
// cookie; the browser never sees that token.
func (a *App) manageAPI(w http.ResponseWriter, r *http.Request) {
	s, _ := a.session(r)
	switch {
	case s == nil:
		apiError(w, http.StatusUnauthorized, "Your session expired — log in again")
		return
	case !s.Can(authz.ActionAPI):
		apiError(w, http.StatusForbidden, "your account may not manage this gatehouse")
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead && !a.opt.Login.CheckCSRF(r, s):
		a.opt.Log.Warn("web: cross-site management request refused", "identity", s.Name, "method", r.Method)
		apiError(w, http.StatusForbidden, "cross-site request refused")
		return
	case a.opt.API == nil:
		apiError(w, http.StatusNotFound, "the API is not available")
		return
	}
	rest := r.PathValue("rest")
	if !strings.HasPrefix(rest, "keys") && !strings.HasPrefix(rest, "streams") && !strings.HasPrefix(rest, "sessions/") && !strings.HasPrefix(rest, "decisions") {
		apiError(w, http.StatusNotFound, "no such endpoint")
		return
	}
	tok, err := a.opt.Login.APIToken(s)
	if err != nil {
		apiError(w, http.StatusForbidden, "your account may not manage this gatehouse")
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/api/v1/" + rest
	// Keep the escaping: a session id may hold "/" (SRS's server_id/client_id), sent as %2F.
	r2.URL.RawPath = "/api/v1/" + strings.TrimPrefix(r.URL.EscapedPath(), "/manage/api/")
	r2.RequestURI = ""
	r2.Header.Del("Cookie")
	r2.Header.Set("Authorization", "Bearer "+tok)
	w.Header().Set("Cache-Control", "no-store")
	a.opt.API.ServeHTTP(w, r2)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Detail string `json:"detail"`
	}{msg})
}
