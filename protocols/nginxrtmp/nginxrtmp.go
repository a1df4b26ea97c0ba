// Package nginxrtmp answers nginx-rtmp-module's notify callbacks (on_publish, on_play, on_update,
// on_done, …) on one URL, telling them apart by the call field. Decisions come from the engine;
// the answer is what nginx-rtmp understands (hook-protocols.md §1.7):
//
//   - publish, play: 200 allows; 302 with Location: <new stream name> allows and renames the
//     stream (a secret stream key was the stream name: the engine's Decision.Rename); 403 denies
//     (nginx-rtmp drops the connection on any non-2xx, so 401 would add nothing);
//   - update_publish, update_play: the session is re-checked with the credentials it started
//     with (a session this handler did not admit, e.g. after a restart, is decided as a new
//     attempt: its failures count and brute-force bans refuse it); 200 keeps it (and re-learns a session gatehouse did not see start, e.g. after a
//     restart, reporting it to the registry under its public path), 403 makes nginx-rtmp drop it (an expired or revoked grant, or a session
//     gatehouse did not see start whose key maps to a path nginx-rtmp cannot rename to). A
//     re-check that no method could decide (IdP or upstream down) keeps the session (200) until
//     the grant it last had expires; new publishes and plays are refused meanwhile;
//   - publish_done, play_done, done, disconnect: registry events; always 200;
//   - connect, record_done and the fork's record_started, playlist: 200 (connect carries no
//     stream, so the checks happen at publish and play);
//   - anything unparseable, a repeated reserved parameter, or an unknown call: 400 with the
//     reason (nginx-rtmp denies).
//
// Replies are small text bodies with a Content-Length; nginx-rtmp speaks HTTP/1.0 and acts only
// when the connection closes, which net/http does after an HTTP/1.0 reply. Callbacks come as POST
// (nginx-rtmp's default notify_method); GET is answered only with Config.AllowGET.
package nginxrtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/hookio"
	"gatehouse/authz/live"
)

// Source is the adapter's name in authz.Request.Source and live.Event.Source.
const Source = "nginx-rtmp"

// Defaults of Config.
const (
	DefaultTimeout     = 5 * time.Second // under nginx-rtmp's netcall_timeout (10 s)
	DefaultMaxBody     = 64 << 10
	DefaultMaxSessions = 65536
)

// Sentinel errors of package nginxrtmp.
var (
	// ErrMalformed is wrapped by every decoding error: the request is not an nginx-rtmp callback.
	ErrMalformed = errors.New("nginxrtmp: malformed callback")
	// ErrDuplicate is returned when a reserved or credential parameter appears more than once: a
	// client tried to inject it through its stream name's query.
	ErrDuplicate = errors.New("nginxrtmp: repeated parameter")
	// ErrRename is returned when the engine's rename target cannot be expressed as an nginx-rtmp
	// stream name in the requested application.
	ErrRename = errors.New("nginxrtmp: unusable rename")
)

// ReasonTruncated replaces the engine's reason when a request is denied and its name?args
// reached nginx-rtmp's 255-byte limit: the credential was cut by nginx-rtmp before the hook.
const ReasonTruncated = "credential_truncated"

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Recorder receives stream and session events; the live registry implements it. Record must not
// block for long: it runs inside nginx-rtmp's callback.
type Recorder interface {
	Record(live.Event)
}

// ElsewhereRecorder is implemented by a Recorder that can tell the other replicas of a fleet
// about a done callback for a session this handler never admitted: behind a load balancer that
// is not sticky, another replica received its start and holds it (and its publish lease). The
// handler passes only the source and the session id ("<clientid>@<nginx address>"): the name in
// a done callback may be a secret key. Optional.
type ElsewhereRecorder interface {
	EndedElsewhere(source, session string, publish bool)
}

// Config tunes the handler. The zero Config uses the defaults.
type Config struct {
	// Timeout bounds one decision (default 5s). Keep it under nginx-rtmp's netcall_timeout (10s).
	Timeout conf.Duration `yaml:"timeout" conf:"nonzero"`
	// MaxBody is the largest request body read, in bytes (default 64 KiB; nginx-rtmp sends < 2 KiB).
	MaxBody int64 `yaml:"max_body" conf:"nonzero"`
	// MaxSessions bounds the table of live sessions kept to report done events under their public
	// names (default 65536). Beyond it, sessions are still authorized but not reported.
	MaxSessions int `yaml:"max_sessions" conf:"nonzero"`
	// ControlURL is nginx-rtmp's control module (an http location with `rtmp_control all;`, e.g.
	// http://127.0.0.1:8080/control). When set, a revoked stream key's session or an operator's
	// kick is dropped at once (Kicker); otherwise it ends at the next on_update. Default: none.
	ControlURL string `yaml:"control_url"`
	// AllowGET accepts callbacks sent with `notify_method get` (default false: only POST, which is
	// nginx-rtmp's default, is answered and a GET gets 405). A GET carries no header that tells a
	// streaming server from a browser's cross-site <img> or link to an http:// hooks address on
	// an IP literal (no Origin, and no Sec-Fetch-* to a non-secure origin), so hookio.Guard
	// cannot refuse it; turn it on only when nginx-rtmp is configured with notify_method get.
	AllowGET bool `yaml:"allow_get"`
	// Now is the clock used to refuse grants that have already expired (nil: time.Now).
	Now func() time.Time `yaml:"-"`
}

// UnmarshalYAML decodes the config strictly.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	var raw plain
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	var errs []error
	if raw.MaxBody < 0 {
		errs = append(errs, conf.Errorf(conf.Value(n, "max_body"), "max_body must not be negative"))
	}
	if raw.MaxSessions < 0 {
		errs = append(errs, conf.Errorf(conf.Value(n, "max_sessions"), "max_sessions must not be negative"))
	}
	if raw.ControlURL != "" {
		u, err := url.Parse(raw.ControlURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			errs = append(errs, conf.Errorf(conf.Value(n, "control_url"), "control_url must be an http:// address such as http://127.0.0.1:8080/control, without user, query or fragment"))
		}
		raw.ControlURL = strings.TrimRight(raw.ControlURL, "/")
	}
	*c = Config(raw)
	return conf.Join(errs...)
}

// Handler serves nginx-rtmp's callbacks (mount it at /hooks/nginx-rtmp and point every on_* there).
// It starts no goroutines; it keeps a bounded in-memory table of allowed sessions so that update
// and done callbacks, which repeat the name the client first asked for, are reported under the
// public name.
type Handler struct {
	auth    Authorizer
	rec     Recorder
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	maxBody int64
	maxSess int
	get     bool

	mu       sync.Mutex
	sessions map[sessionKey]session
}

type sessionKey struct {
	server   string // nginx's address as seen by us: clientid is only unique per nginx instance
	clientID string
	publish  bool
}

type session struct {
	path     string // public path
	identity string
	remote   string
	expires  time.Time // of the last grant that allowed it; zero: none
	keyID    string    // the stream key that admitted it (never the secret)
	keyLabel string
}

// New returns a handler that asks auth and reports events to rec (nil: none), logging to log
// (nil: discard).
func New(cfg Config, auth Authorizer, rec Recorder, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		auth:     auth,
		rec:      rec,
		log:      log,
		now:      cfg.Now,
		timeout:  cfg.Timeout.Or(DefaultTimeout),
		maxBody:  cfg.MaxBody,
		maxSess:  cfg.MaxSessions,
		get:      cfg.AllowGET,
		sessions: make(map[sessionKey]session),
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.maxSess == 0 {
		h.maxSess = DefaultMaxSessions
	}
	return h
}

// ServeHTTP implements http.Handler for POST (notify_method post, the default) and, with
// Config.AllowGET, GET (405 otherwise).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var raw string
	if r.Method == http.MethodGet && !h.get {
		w.Header().Set("Allow", "POST")
		reply(w, http.StatusMethodNotAllowed, "GET is off: use nginx-rtmp's default notify_method post, or set hooks.nginx_rtmp.allow_get")
		return
	}
	switch r.Method {
	case http.MethodPost:
		body, refused := hookio.ReadBody(w, r, h.maxBody)
		if refused != nil {
			reply(w, refused.Status, refused.Message)
			return
		}
		raw = string(body)
	case http.MethodGet:
		if int64(len(r.URL.RawQuery)) > h.maxBody {
			reply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("query exceeds %d bytes", h.maxBody))
			return
		}
		raw = r.URL.RawQuery
	default:
		allow := "POST"
		if h.get {
			allow = "GET, POST"
		}
		w.Header().Set("Allow", allow)
		reply(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	var hk hook
	if err := hk.decode(raw); err != nil {
		h.badRequest(w, callOf(raw), err)
		return
	}
	server, _, _ := net.SplitHostPort(r.RemoteAddr)
	switch hk.call {
	case CallPublish:
		h.start(r.Context(), w, server, &hk, authz.ActionPublish)
	case CallPlay:
		h.start(r.Context(), w, server, &hk, authz.ActionRead)
	case CallUpdatePublish, CallUpdatePlay, CallUpdate:
		h.update(r.Context(), w, server, &hk)
	case CallPublishDone, CallPlayDone, CallDone, CallDisconnect:
		h.done(server, &hk)
		replyLine(w, http.StatusOK, "ok\n", "")
	case CallConnect, CallRecordDone, CallRecordStarted, CallPlaylist:
		replyLine(w, http.StatusOK, "ok\n", "")
	default:
		h.badRequest(w, hk.call, fmt.Errorf("%w: unknown call %q", ErrMalformed, hookio.Truncate(hk.call)))
	}
}

// start answers publish and play.
func (h *Handler) start(ctx context.Context, w http.ResponseWriter, server string, hk *hook, a authz.Action) {
	path, err := hk.path()
	if err != nil {
		h.badRequest(w, hk.call, err)
		return
	}
	d := h.decide(ctx, hk.request(a, path))
	if !d.Allowed() {
		reply(w, http.StatusForbidden, "denied: "+h.denialReason(hk, d))
		return
	}
	public, location := path, ""
	if d.Rename != "" && d.Rename != path {
		location, err = renameTarget(hk.app, d.Rename)
		if err != nil {
			// A configuration mistake (a key's public path in another app), never the client's.
			h.log.Error("nginx-rtmp: cannot rename stream", "call", hk.call, "rename", d.Rename, "err", err)
			reply(w, http.StatusForbidden, "denied: rename_invalid")
			return
		}
		public = d.Rename
	}
	s := session{path: public, identity: d.Identity, remote: hk.remote(), expires: d.Expires, keyID: d.KeyID, keyLabel: d.KeyLabel}
	h.track(sessionKey{server: server, clientID: hk.clientID, publish: a == authz.ActionPublish}, s)
	typ := live.Joined
	if a == authz.ActionPublish {
		typ = live.Published
	}
	h.record(typ, server, hk.clientID, s)
	if location != "" {
		// Set by hand: http.Redirect would turn the bare name into a path (/name), and
		// nginx-rtmp would then publish a stream called "/name".
		replyLine(w, http.StatusFound, "renamed\n", location)
		return
	}
	replyLine(w, http.StatusOK, "ok\n", "")
}

// update re-checks a running session with the credentials it started with. Only a real denial
// ends it (authz.Decision.Keep): when no method could decide (an IdP or upstream down), the
// session continues until the expiry of the grant it last had, and is re-checked at the next
// update.
func (h *Handler) update(ctx context.Context, w http.ResponseWriter, server string, hk *hook) {
	var a authz.Action
	switch hk.call {
	case CallUpdatePublish:
		a = authz.ActionPublish
	case CallUpdatePlay:
		a = authz.ActionRead
	default: // bare "update": neither publishing nor playing; nothing to keep alive
		reply(w, http.StatusForbidden, "denied: no_stream")
		return
	}
	path, err := hk.path()
	if err != nil {
		h.badRequest(w, hk.call, err)
		return
	}
	key := sessionKey{server: server, clientID: hk.clientID, publish: a == authz.ActionPublish}
	s, tracked := h.lookup(key)
	req := hk.request(a, path)
	if tracked {
		req.Kind = authz.KindRecheck // a keep-alive of a session we admitted is not a new guess
	}
	// An update for a session this handler does not know is decided as a new attempt
	// (KindAccess): its failures count and brute-force bans refuse it. Otherwise anyone who
	// reaches the hooks could send updates with made-up clientids as an uncounted, unbanned
	// password oracle. The cost falls on sessions that were running when gatehouse restarted
	// (the table is in memory): their first update after the restart is a new attempt, so it
	// still passes with right credentials (an allow is never counted against anyone), but a
	// session whose address or user name is under a brute-force ban at that moment (earned by
	// a NAT neighbour or by guesses at its name) is ended and must reconnect once the ban ends.
	// Asking the live registry which sessions are known instead would not help: after a
	// restart the in-process registry is as empty as this table (it relearns sessions from
	// these same updates).
	d := h.decide(ctx, req)
	if !d.Allowed() && d.Keep() && (!tracked || s.expires.IsZero() || h.now().Before(s.expires)) {
		attrs := []any{"session", hk.clientID, "reason", d.Reason}
		if tracked {
			attrs = append(attrs, "path", s.path)
			h.record(live.Alive, server, hk.clientID, s)
		} // untracked: the presented path may be a secret key, so it is neither logged nor reported
		h.log.Warn("nginx-rtmp: could not re-check session; keeping it", attrs...)
		reply(w, http.StatusOK, "kept: "+d.Reason)
		return
	}
	if !d.Allowed() {
		attrs := []any{"session", hk.clientID, "reason", d.Reason}
		if tracked {
			attrs = append(attrs, "path", s.path) // the public path; the presented one may be a key
		}
		h.log.Info("nginx-rtmp: session no longer authorized; nginx-rtmp will drop it", attrs...)
		reason := h.denialReason(hk, d)
		if d.Keep() {
			reason = "expired" // undecided, and the grant it last had has run out
		}
		reply(w, http.StatusForbidden, "denied: "+reason)
		return
	}
	if !tracked { // e.g. gatehouse restarted while the stream ran
		s = session{path: path, identity: d.Identity, remote: hk.remote(), keyID: d.KeyID, keyLabel: d.KeyLabel}
		if d.Rename != "" && d.Rename != path {
			if _, err := renameTarget(hk.app, d.Rename); err != nil {
				// As in start: the presented name may be a secret key, so never report the
				// session under it; nginx-rtmp drops it instead.
				h.log.Error("nginx-rtmp: cannot rename stream", "call", hk.call, "rename", d.Rename, "err", err)
				reply(w, http.StatusForbidden, "denied: rename_invalid")
				return
			}
			s.path = d.Rename
		}
	}
	s.expires = d.Expires
	h.track(key, s)
	if !tracked {
		// The first allowed keep-alive of a session this process did not see start (gatehouse
		// restarted while it ran): the registry learns it again, under the public path, as a
		// start (an Alive for a session it does not know is ignored).
		typ := live.Joined
		if key.publish {
			typ = live.Published
		}
		h.record(typ, server, hk.clientID, s)
	}
	h.record(live.Alive, server, hk.clientID, s)
	replyLine(w, http.StatusOK, "ok\n", "")
}

// done reports the end of publishing or playing for the sessions this callback closes. Only
// tracked sessions are reported: the name in done callbacks is the one the client first asked
// for, which may be a secret key.
func (h *Handler) done(server string, hk *hook) {
	var kinds []bool
	switch hk.call {
	case CallPublishDone:
		kinds = []bool{true}
	case CallPlayDone:
		kinds = []bool{false}
	default: // done, disconnect: whatever this connection did
		kinds = []bool{true, false}
	}
	for _, publish := range kinds {
		s, ok := h.take(sessionKey{server: server, clientID: hk.clientID, publish: publish})
		if !ok {
			if er, ok := h.rec.(ElsewhereRecorder); ok && hk.clientID != "" {
				er.EndedElsewhere(Source, hk.clientID+"@"+server, publish)
			}
			continue
		}
		typ := live.Left
		if publish {
			typ = live.Unpublished
		}
		h.record(typ, server, hk.clientID, s)
	}
}

// denialReason is the reason answered for a denial: the engine's, or ReasonTruncated (logged with
// what to do instead) when nginx-rtmp cut the name?args that carried the credential, because the
// engine's own reason (malformed_token, bad_signature, bad_credentials) would not say why.
func (h *Handler) denialReason(hk *hook, d authz.Decision) string {
	if !hk.truncated() {
		return d.Reason
	}
	h.log.Warn(fmt.Sprintf("nginx-rtmp: nginx-rtmp cuts name?args at %d bytes, so the credential arrived "+
		"incomplete: use a stream key (rtmp://host/app/<key>, or ?key=<key>)", maxField), "call", hk.call, "app", hookio.Truncate(hk.app),
		"session", hk.clientID, "reason", ReasonTruncated, "engine_reason", d.Reason)
	return ReasonTruncated
}

// decide asks the engine within the handler's timeout (kept under nginx-rtmp's netcall_timeout;
// the engine refuses a grant that has already expired). The bound is authz.LazyTimeout: a
// decision that never waits costs no timer.
func (h *Handler) decide(ctx context.Context, req *authz.Request) authz.Decision {
	ctx, cancel := authz.LazyTimeout(ctx, h.timeout)
	defer cancel()
	return h.auth.Authorize(ctx, req)
}

// renameTarget turns the engine's public path into what nginx-rtmp's Location means for publish
// and play: a new stream name in the same application. It refuses anything nginx-rtmp would read
// otherwise (an rtmp:// relay target, a name it would truncate, header-breaking bytes).
func renameTarget(app, public string) (string, error) {
	name, ok := strings.CutPrefix(strings.Trim(public, "/"), app+"/")
	switch {
	case !ok || name == "":
		return "", fmt.Errorf("%w: %q is not a stream in application %q", ErrRename, public, app)
	case len(name) > maxField:
		return "", fmt.Errorf("%w: name longer than %d bytes", ErrRename, maxField)
	case len(name) >= 7 && strings.EqualFold(name[:7], "rtmp://"):
		return "", fmt.Errorf("%w: %q would be a relay target", ErrRename, public)
	case strings.ContainsAny(name, "?&#"):
		return "", fmt.Errorf("%w: %q contains ? & or #", ErrRename, public)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return "", fmt.Errorf("%w: control character in %q", ErrRename, public)
		}
	}
	return name, nil
}

func (h *Handler) track(k sessionKey, s session) {
	if k.clientID == "" {
		return
	}
	k.clientID = strings.Clone(k.clientID) // a slice of the callback body, which holds credentials
	h.mu.Lock()
	full := false
	if len(h.sessions) >= h.maxSess { // only a full table needs to know whether k is in it
		_, exists := h.sessions[k]
		full = !exists
	}
	if !full {
		h.sessions[k] = s
	}
	h.mu.Unlock()
	if full {
		h.log.Warn("nginx-rtmp: session table full; done events for this session will not be reported",
			"max_sessions", h.maxSess, "session", k.clientID)
	}
}

func (h *Handler) lookup(k sessionKey) (session, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.sessions[k]
	return s, ok
}

func (h *Handler) take(k sessionKey) (session, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.sessions[k]
	delete(h.sessions, k)
	return s, ok
}

func (h *Handler) record(t live.EventType, server, clientID string, s session) {
	if h.rec == nil {
		return
	}
	id := ""
	if clientID != "" {
		id = clientID + "@" + server
	}
	h.rec.Record(live.Event{
		Type:     t,
		Path:     s.path,
		Source:   Source,
		Session:  id,
		Identity: s.identity,
		KeyID:    s.keyID,
		KeyLabel: s.keyLabel,
		Protocol: "rtmp",
		Remote:   s.remote,
		Time:     h.now(),
	})
}

func (h *Handler) badRequest(w http.ResponseWriter, call string, err error) {
	if call == "" {
		call = "(none)" // an empty value reads as a logging bug
	}
	h.log.Warn("nginx-rtmp: bad callback", "call", hookio.Truncate(call), "err", err)
	reply(w, http.StatusBadRequest, err.Error())
}

// reply writes a short text answer with an explicit Content-Length (nginx-rtmp is an HTTP/1.0
// client: no chunking). nginx-rtmp reads only the status; the body is for people and logs.
func reply(w http.ResponseWriter, status int, msg string) {
	replyLine(w, status, msg+"\n", "")
}

// replyLine is reply for a message that already ends in a newline (a constant one needs no
// concatenation), with a Location header unless location is "".
func replyLine(w http.ResponseWriter, status int, line, location string) {
	// The header map is filled directly, as Header.Set would: the keys are canonical already
	// (Set canonicalizes each again), and the values share one allocation (Set makes one per
	// value), each slice capped so that appending to one cannot write over the next.
	hdr := w.Header()
	var vals []string
	if location == "" {
		vals = make([]string, 2)
	} else {
		vals = make([]string, 3)
		vals[2] = location
		hdr["Location"] = vals[2:3:3]
	}
	vals[0], vals[1] = "text/plain; charset=utf-8", strconv.Itoa(len(line))
	hdr["Content-Type"] = vals[0:1:1]
	hdr["Content-Length"] = vals[1:2:2]
	w.WriteHeader(status)
	_, _ = io.WriteString(w, line)
}
