package mediamtx

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

// Config is the MediaMTX adapter's settings (hooks.mediamtx).
//
//	hooks:
//	  mediamtx:
//	    api: {url: http://127.0.0.1:9997, user: gatehouse, password: ${MTX_API_PASS}}
//
// API is MediaMTX's control API, used to end a session whose key is revoked (Kicker). MediaMTX
// decides the api action by its own auth method: with authHTTPAddress pointing at gatehouse,
// give that user the api action in gatehouse. MaxSessions bounds the sessions remembered for
// kicks (default 10000).
type Config struct {
	API         conf.Endpoint `yaml:"api"`
	MaxSessions int           `yaml:"max_sessions" conf:"nonzero"`
	// Now is the clock for remembered sessions and their grants' expiry (nil: time.Now).
	Now func() time.Time `yaml:"-"`
	// Log gets the warning when the table of remembered sessions is full (nil: discard).
	Log *slog.Logger `yaml:"-"`
}

// DefaultMaxSessions is Config.MaxSessions' default.
const DefaultMaxSessions = 10_000

// sessionTTL is how long an admitted session is remembered: MediaMTX reports no session end, so
// an entry is only a candidate for a kick (a kick of an ended session answers 404, which is fine).
const sessionTTL = 24 * time.Hour

// add remembers an admitted publish or read session with the request that admitted it, for
// kicks, re-checks after a reload and the grant's expiry (MediaMTX's auth request is the only
// thing it tells gatehouse about a session).
func (h *Handler) add(req *authz.Request, d authz.Decision) {
	if req.ID == "" || !d.Allowed() || (req.Action != authz.ActionPublish && req.Action != authz.ActionRead) {
		return
	}
	h.sessions.Add(live.Session{Source: Source, ID: req.ID, Path: req.Path, Protocol: req.Protocol,
		Identity: d.Identity, Remote: addr(req), KeyID: d.KeyID, KeyLabel: d.KeyLabel,
		Publish: req.Action == authz.ActionPublish}, req, d)
}

func addr(req *authz.Request) string {
	if req.IP.IsValid() {
		return req.IP.String()
	}
	return ""
}

// Sessions lists the publish and read sessions MediaMTX asked about and gatehouse allowed in the
// last 24 hours (MediaMTX reports no end, so some may have ended), for revocation and the
// operator's kick. It implements revoke.Lister.
func (h *Handler) Sessions() []live.Session { return h.sessions.Sessions() }

// Recheck decides every remembered session again (after a reload) and returns those now really
// denied, forgetting them; the caller ends them through MediaMTX's API. It implements
// revoke.Rechecker.
func (h *Handler) Recheck(ctx context.Context) []live.Session {
	return h.sessions.Recheck(ctx, h.auth)
}

// Expired returns the remembered sessions whose grant has expired, forgetting them: MediaMTX
// cannot end a session at a time, so the caller ends them through its API. It implements
// revoke.Rechecker.
func (h *Handler) Expired() []live.Session { return h.sessions.Expired() }

// kickPaths are the API paths that end a session, by the protocol MediaMTX's auth request names,
// for the id it sends (MediaMTX v1.x internal/api: the RTMP and SRT connection's id, the RTSP,
// WebRTC, HLS and MoQ session's). MediaMTX names rtsps and rtmps "rtsp" and "rtmp": their second
// path is tried when the first answers 404.
var kickPaths = map[string][]string{
	"rtsp":   {"/v3/rtspsessions/kick/", "/v3/rtspssessions/kick/"},
	"rtmp":   {"/v3/rtmpconns/kick/", "/v3/rtmpsconns/kick/"},
	"srt":    {"/v3/srtconns/kick/"},
	"webrtc": {"/v3/webrtcsessions/kick/"},
	"hls":    {"/v3/hlssessions/kick/"},
	"moq":    {"/v3/moqsessions/kick/"},
}

// Kick ends s through MediaMTX's API (POST /v3/<protocol>conns|sessions/kick/<id>, with the
// configured Basic credentials). A 404 everywhere means the session is gone: the error wraps
// errGone (revoke.ErrGone, passed in by NewKicker's caller). It implements revoke.Kicker.
func (k *Kicker) Kick(ctx context.Context, s live.Session) error {
	paths, ok := kickPaths[s.Protocol]
	if !ok {
		return fmt.Errorf("mediamtx: kick: protocol %q has no kick endpoint", s.Protocol)
	}
	for _, p := range paths {
		status, _, err := k.api.Call(ctx, k.client, http.MethodPost, p+url.PathEscape(s.ID))
		switch {
		case err != nil:
			return fmt.Errorf("mediamtx: kick: %w", err)
		case status/100 == 2:
			k.forget(s.ID)
			return nil
		case status == http.StatusNotFound:
			continue
		}
		return fmt.Errorf("mediamtx: kick: %s answered %d %s", p, status, http.StatusText(status))
	}
	k.forget(s.ID)
	return fmt.Errorf("mediamtx: kick: %w", k.gone)
}

// Kicker ends MediaMTX sessions through its API. Build it with NewKicker.
type Kicker struct {
	api    conf.Endpoint
	client *http.Client
	gone   error
	forget func(id string)
}

// NewKicker returns a Kicker calling api with client (nil: conf.DefaultCallTimeout). gone is the
// error a vanished session wraps (revoke.ErrGone); h, if not nil, forgets kicked sessions.
func NewKicker(api conf.Endpoint, client *http.Client, gone error, h *Handler) *Kicker {
	k := &Kicker{api: api, client: client, gone: gone, forget: func(string) {}}
	if h != nil {
		k.forget = h.sessions.Forget
	}
	return k
}

// Evicted returns how many remembered sessions a full table has forgotten to make room for new
// ones (those can no longer be re-checked or ended at their grant's expiry).
func (h *Handler) Evicted() uint64 { return h.sessions.Evicted() }
