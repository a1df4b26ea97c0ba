// Package srs answers SRS http_hooks (on_publish, on_play, ... → http://127.0.0.1:8090/hooks/srs).
// SRS posts one JSON document per event and names it in "action", so one URL serves every hook.
//
// on_publish and on_play become one authz.Request each (path app/stream, credentials from param).
// Allow is status 200 with the body {"code":0}, the one form every SRS version (3.0–7.0) accepts
// (a bare 0 failed in 5.0.63–5.0.87). A denial is status 401 or 403 (Decision.HTTPStatus) with
// {"code":401|403,"msg":…}: SRS requires 200/201 and code 0, so either part alone already denies.
//
// on_unpublish and on_stop are reported to the Recorder (Unpublished, Left) and answered
// {"code":0}. on_connect, on_close, on_dvr, on_hls and on_hls_notify are accepted with {"code":0}
// and no decision: they carry no new authorization question (publish and play are decided by
// on_publish and on_play, which must therefore be configured). Any other action is refused with
// 400, failing closed should a future SRS add a blocking hook.
package srs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/creds"
	"gatehouse/authz/hookio"
	"gatehouse/authz/live"
	"gatehouse/authz/recheck"
)

// MaxBody is the largest request body accepted (hookio.DefaultMaxBody).
const MaxBody = hookio.DefaultMaxBody

// Source is the value of authz.Request.Source and live.Event.Source for this adapter.
const Source = "srs"

// DefaultVhost is SRS's name for the default virtual host.
const DefaultVhost = "__defaultVhost__"

// Sentinel errors of package srs.
var (
	// ErrMalformed is wrapped by every Decode error: the body is not an SRS hook document.
	ErrMalformed = errors.New("srs: malformed hook request")
)

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Recorder receives stream and viewer start and end events; the live registry implements it.
type Recorder interface {
	Record(live.Event)
}

// Config configures the SRS adapter. The zero value maps app/stream to the path and reads the
// token from token or jwt in param.
type Config struct {
	// IncludeVhost prefixes the path with the vhost when it is not __defaultVhost__
	// (video.example.com/live/cam), so several vhosts do not share one path namespace.
	// Default false: the path is app/stream whatever the vhost.
	IncludeVhost bool `yaml:"include_vhost"`
	// TokenParams are extra param names whose value is used as the token when neither token nor
	// jwt is present (e.g. [secret] for SRS's own examples). Default none.
	TokenParams []string `yaml:"token_params"`
	// API is SRS's HTTP API (http_api), used to end the session of a revoked stream key or an
	// operator's kick (Kicker): {url: http://127.0.0.1:1985, user:, password:} (user and
	// password when http_api.auth is enabled). Default: none; sessions then run until they end.
	API conf.Endpoint `yaml:"api"`
	// Now is the clock for running sessions and their grants' expiry (nil: time.Now).
	Now func() time.Time `yaml:"-"`
}

// Handler serves POST /hooks/srs. It starts no goroutines and is safe for concurrent use.
type Handler struct {
	auth         Authorizer
	rec          Recorder
	log          *slog.Logger
	includeVhost bool
	tokenParams  []string
	// sessions remembers each running publish and play session with the request that admitted
	// it, until on_unpublish or on_stop: SRS never asks again, so gatehouse re-decides them after
	// a reload and notices their grant's expiry (Recheck, Expired).
	sessions *recheck.Table
}

// maxSessions bounds Handler.sessions; sessionTTL forgets a session whose end SRS never reported.
const (
	maxSessions = 100_000
	sessionTTL  = 24 * time.Hour
)

// New returns a Handler asking auth and reporting streams and viewers to rec (nil: not
// reported), logging to log (nil: discard).
func New(cfg Config, auth Authorizer, rec Recorder, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		auth:         auth,
		rec:          rec,
		log:          log,
		includeVhost: cfg.IncludeVhost,
		tokenParams:  append([]string(nil), cfg.TokenParams...),
		sessions:     recheck.New(maxSessions, sessionTTL, cfg.Now, log),
	}
}

// Recheck decides every running session again (after a reload) and returns those now really
// denied, forgetting them; the caller ends them through SRS's API. It implements
// revoke.Rechecker.
func (h *Handler) Recheck(ctx context.Context) []live.Session {
	return h.sessions.Recheck(ctx, h.auth)
}

// Expired returns the running sessions whose grant has expired, forgetting them: SRS cannot end
// a session at a time, so the caller ends them through its API. It implements revoke.Rechecker.
func (h *Handler) Expired() []live.Session { return h.sessions.Expired() }

// Evicted returns how many running sessions a full table has forgotten to make room for new
// ones (those can no longer be re-checked or ended at their grant's expiry).
func (h *Handler) Evicted() uint64 { return h.sessions.Evicted() }

// Hook is an SRS http_hooks document (srs_app_http_hooks.cpp), the union of every action's
// fields in v3–v7. Unknown fields are ignored.
type Hook struct {
	Action   string          `json:"action"`
	ServerID string          `json:"server_id"` // v4+
	ClientID json.RawMessage `json:"client_id"` // int in v3, string in v4+
	IP       string          `json:"ip"`
	Vhost    string          `json:"vhost"`
	App      string          `json:"app"`
	Stream   string          `json:"stream"`
	Param    string          `json:"param"` // "?token=abc" (RTMP, HTTP-FLV) or "token=abc" (WHIP/WHEP)
	TcURL    string          `json:"tcUrl"`
	PageURL  string          `json:"pageUrl"`
	File     string          `json:"file"` // on_dvr, on_hls

	tcURLSent bool // the document had a tcUrl field (v3/v4 on_play has none)
}

// Decode parses an SRS hook body. Every error wraps ErrMalformed and never contains param.
func Decode(body []byte) (*Hook, error) {
	h := new(Hook)
	if err := h.decode(body); err != nil {
		return nil, err
	}
	return h, nil
}

// decode is Decode into h (zero), which the handler keeps on its stack: decodeJSON has its own
// document for encoding/json, which makes it escape.
func (h *Hook) decode(body []byte) error {
	if !h.decodeFast(body) {
		j, err := decodeJSON(body)
		if err != nil {
			return err
		}
		*h = *j
	}
	if h.Action == "" {
		return fmt.Errorf("%w: no action", ErrMalformed)
	}
	return nil
}

// decodeJSON decodes what decodeFast leaves to encoding/json, in one pass: the outer tcUrl
// (shallower) takes the field from Hook's, and its pointer says whether the document had one
// (null counts as absent, as it always did).
func decodeJSON(body []byte) (*Hook, error) {
	var w struct {
		Hook
		TcURL *string `json:"tcUrl"`
	}
	if err := hookio.DecodeJSON(body, &w, ErrMalformed); err != nil {
		return nil, err
	}
	if w.TcURL != nil {
		w.Hook.TcURL, w.Hook.tcURLSent = *w.TcURL, true
	}
	return &w.Hook, nil
}

// hookKeys are Hook's JSON names.
var hookKeys = [...]string{"action", "server_id", "client_id", "ip", "vhost", "app", "stream", "param", "tcUrl", "pageUrl", "file"}

// The string fields decodeFast reads, in its vals.
const (
	fAction = iota
	fServerID
	fIP
	fVhost
	fApp
	fStream
	fParam
	fTcURL
	fPageURL
	fFile
	numFields
)

// decodeFast reads SRS's usual body (hookio.WalkJSON's subset, client_id a string or an unsigned
// integer) into h (zero) without reflection, as Decode's encoding/json pass would; false means
// the caller must use encoding/json (FuzzDecodeFastMatchesJSON holds the two to the same result),
// and h is left as it was. The values alias body until the walk succeeds, then are copied out
// together; h itself stays where the caller put it.
func (h *Hook) decodeFast(body []byte) bool {
	var vals [numFields][]byte // the last value of each field (null leaves it, as encoding/json does)
	var clientID []byte        // client_id's last value: a string's content, or an integer's digits
	clientIDString := false
	tcURLSent := false
	ok := hookio.WalkJSON(body, func(parent, key, val []byte, kind hookio.FastKind) bool {
		if parent != nil {
			return true // a member of an unknown object
		}
		f := -1
		switch string(key) {
		case "action":
			f = fAction
		case "server_id":
			f = fServerID
		case "ip":
			f = fIP
		case "vhost":
			f = fVhost
		case "app":
			f = fApp
		case "stream":
			f = fStream
		case "param":
			f = fParam
		case "pageUrl":
			f = fPageURL
		case "file":
			f = fFile
		case "tcUrl":
			switch kind {
			case hookio.FastString:
				vals[fTcURL], tcURLSent = val, true
			case hookio.FastNull: // the pointer Decode's encoding/json pass reads it into is nil again
				vals[fTcURL], tcURLSent = nil, false
			default:
				return false
			}
			return true
		case "client_id":
			switch kind {
			case hookio.FastString, hookio.FastUint:
				clientID, clientIDString = val, kind == hookio.FastString
			default:
				return false
			}
			return true
		default:
			return !hookio.FoldsToAny(key, hookKeys[:]...)
		}
		switch kind {
		case hookio.FastString:
			vals[f] = val
		case hookio.FastNull: // encoding/json leaves the field as it was
		default:
			return false // a type encoding/json refuses: let it say so
		}
		return true
	})
	if !ok {
		return false
	}
	var str [numFields]string
	hookio.CopyStrings(str[:], vals[:])
	h.Action, h.ServerID, h.IP, h.Vhost, h.App = str[fAction], str[fServerID], str[fIP], str[fVhost], str[fApp]
	h.Stream, h.Param, h.TcURL, h.PageURL, h.File = str[fStream], str[fParam], str[fTcURL], str[fPageURL], str[fFile]
	h.tcURLSent = tcURLSent
	switch {
	case clientID == nil:
	case clientIDString: // json.RawMessage keeps the quotes
		h.ClientID = append(append(append(make(json.RawMessage, 0, len(clientID)+2), '"'), clientID...), '"')
	default:
		h.ClientID = append(json.RawMessage(nil), clientID...)
	}
	return true
}

// SessionID is SRS's client_id (its context id, unique per connection), prefixed with server_id
// when present so that several SRS processes reporting to one gatehouse do not collide.
func (h *Hook) SessionID() string {
	if s, ok := plainString(h.ClientID); ok {
		// What json.Unmarshal gives, without its reflection, made in one allocation.
		switch {
		case len(s) == 0 || string(s) == "null":
			return ""
		case h.ServerID != "":
			return h.ServerID + "/" + string(s)
		}
		return string(s)
	}
	var id string
	if json.Unmarshal(h.ClientID, &id) != nil {
		id = string(bytes.TrimSpace(h.ClientID))
	}
	if id == "" || id == "null" {
		return ""
	}
	if h.ServerID != "" {
		return h.ServerID + "/" + id
	}
	return id
}

// plainString returns the content of a JSON string of printable ASCII without escapes.
func plainString(raw []byte) ([]byte, bool) {
	n := len(raw)
	if n < 2 || raw[0] != '"' || raw[n-1] != '"' {
		return nil, false
	}
	for _, c := range raw[1 : n-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return nil, false
		}
	}
	return raw[1 : n-1], true
}

// Path returns app/stream (vhost/app/stream with includeVhost and a non-default vhost), or false
// when app or stream is missing or the path fails authz.CheckPath or contains '?' or '#'.
func (h *Hook) Path(includeVhost bool) (string, bool) {
	p := strings.Trim(h.App, "/") + "/" + strings.Trim(h.Stream, "/")
	if includeVhost && h.Vhost != "" && h.Vhost != DefaultVhost {
		if strings.Contains(h.Vhost, "/") {
			return "", false
		}
		p = h.Vhost + "/" + p
	}
	if authz.CheckPath(p) != nil || strings.ContainsAny(p, "?#") {
		return "", false
	}
	return p, true
}

// Protocol is the client's protocol as far as SRS itself establishes it; SRS does not send one.
// It is "webrtc" when the document has a tcUrl field and it is empty: SRS's WHIP/WHEP API (v5+)
// leaves tcUrl unset, while every RTMP connection has a tcUrl with a scheme (SRS refuses one
// without: "discovery tcUrl failed") and SRS builds one for SRT, HTTP-FLV and HLS. Otherwise it
// is "" (unknown), which a protocol-restricted permission never matches: an RTMP client writes
// its tcUrl and param itself (tcUrl=webrtc://…, srt://…, ?upstream=rtc), SRS gives HTTP-FLV and
// HLS viewers an rtmp:// tcUrl, the legacy RTC API takes tcUrl from the client's streamurl, and
// v3/v4 on_play has no tcUrl at all, so no field tells RTMP, SRT, HTTP-FLV, HLS or the legacy
// RTC API apart. Permissions restricted to rtmp or srt therefore never match SRS requests.
func (h *Hook) Protocol() string {
	if h.tcURLSent && h.TcURL == "" {
		return "webrtc"
	}
	return ""
}

// reply is SRS's response document: code 0 allows, anything else denies.
type reply struct {
	Code int    `json:"code"`
	Msg  string `json:"msg,omitempty"`
}

// ok is the exact allow body, accepted by every SRS version.
const ok = `{"code":0}`

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		deny(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	body, refused := hookio.ReadBody(w, r, MaxBody)
	if refused != nil {
		deny(w, refused.Status, refused.Message)
		return
	}
	var doc Hook // on the stack
	hook := &doc
	if err := hook.decode(body); err != nil {
		h.log.Warn("srs: refused request", "error", err, "remote", r.RemoteAddr)
		deny(w, http.StatusBadRequest, err.Error())
		return
	}
	switch hook.Action {
	case "on_publish":
		h.decide(r.Context(), w, hook, authz.ActionPublish, live.Published)
	case "on_play":
		h.decide(r.Context(), w, hook, authz.ActionRead, live.Joined)
	case "on_unpublish":
		f := h.facts(hook)
		h.sessions.Forget(f.id)
		h.record(f, live.Unpublished, authz.Decision{})
		allow(w)
	case "on_stop":
		f := h.facts(hook)
		h.sessions.Forget(f.id)
		h.record(f, live.Left, authz.Decision{})
		allow(w)
	case "on_connect", "on_close", "on_dvr", "on_hls", "on_hls_notify":
		h.log.Debug("srs: hook accepted", "action", hook.Action, "app", hook.App, "stream", hook.Stream)
		allow(w)
	default:
		h.log.Warn("srs: unknown action refused", "action", hookio.Truncate(hook.Action))
		deny(w, http.StatusBadRequest, "unknown action")
	}
}

// facts are what handling a hook derives from it, once: its path (pathOK false: none), session
// id, protocol and client address (remote: its text, "" when ip is not an address).
type facts struct {
	path, id, protocol, remote string
	pathOK                     bool
	ip                         netip.Addr
}

func (h *Handler) facts(hook *Hook) facts {
	f := facts{id: hook.SessionID(), protocol: hook.Protocol()}
	f.path, f.pathOK = hook.Path(h.includeVhost)
	if ip, ok := hookio.ParseIP(hook.IP); ok {
		f.ip, f.remote = ip, ip.String()
	}
	return f
}

func (h *Handler) decide(ctx context.Context, w http.ResponseWriter, hook *Hook, action authz.Action, ev live.EventType) {
	f := h.facts(hook)
	if !f.pathOK {
		h.log.Warn("srs: denied: no app/stream", "action", hook.Action)
		deny(w, http.StatusBadRequest, "app and stream are required")
		return
	}
	// SRS can neither rename a stream from a hook nor end a session at a time: the engine
	// refuses a rename (CanRename false) rather than publish under a secret name.
	req := &authz.Request{
		Action:   action,
		Path:     f.path,
		Protocol: f.protocol,
		ID:       f.id,
		Query:    strings.TrimPrefix(hook.Param, "?"),
		Source:   Source,
		IP:       f.ip,
	}
	c, err := h.credentials(hook.Param)
	if err != nil {
		deny(w, http.StatusUnauthorized, "malformed or repeated credential parameter")
		return
	}
	c.Apply(req)

	d := h.auth.Authorize(ctx, req)
	if !d.Allowed() {
		deny(w, d.HTTPStatus(), message(d))
		return
	}
	h.sessions.Add(session(hook, f, d), req, d)
	h.record(f, ev, d)
	allow(w)
}

// session is the live.Session of an admitted hook, as the registry lists it.
func session(hook *Hook, f facts, d authz.Decision) live.Session {
	return live.Session{Source: Source, ID: f.id, Path: f.path, Protocol: f.protocol, Remote: f.remote,
		Identity: d.Identity, KeyID: d.KeyID, KeyLabel: d.KeyLabel, Publish: hook.Action == "on_publish"}
}

// record reports a start (d: the decision that admitted it) or an end (d zero) of the hook f
// describes.
func (h *Handler) record(f facts, typ live.EventType, d authz.Decision) {
	if h.rec == nil || !f.pathOK {
		return
	}
	// Time is left zero (arrival time): SRS sends no timestamp.
	h.rec.Record(live.Event{
		Type:     typ,
		Path:     f.path,
		Source:   Source,
		Session:  f.id,
		Identity: d.Identity,
		Protocol: f.protocol,
		KeyID:    d.KeyID,
		KeyLabel: d.KeyLabel,
		Remote:   f.remote,
	})
}

// credentials parses param (with or without its leading '?') with package creds, adding the
// configured token parameters. A malformed or repeated parameter is an error.
func (h *Handler) credentials(param string) (creds.Credentials, error) {
	if param == "" {
		return creds.Credentials{}, nil
	}
	return creds.FromRawQuery(param, h.tokenParams...) // ParseQuery's credentials and errors
}

func message(d authz.Decision) string {
	if d.Message != "" {
		return d.Message
	}
	return d.Reason
}

func allow(w http.ResponseWriter) {
	w.Header()["Content-Type"] = []string{"application/json"} // Header().Set, the key already canonical
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ok)
}

// deny answers a non-200 status with a non-zero code; SRS fails on either.
func deny(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(reply{Code: status, Msg: msg}) // reply always marshals
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
