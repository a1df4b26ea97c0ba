package revoke

import (
	"context"
	"errors"
	"net/http"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/guard"
	"gatehouse/authz/live"
)

// MaxBan is the longest ban a kick may carry.
const MaxBan = 7 * 24 * time.Hour

// Authorizer decides API requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Banner bans a stream key or identity for a while; *authz.Engine implements it.
type Banner interface {
	Ban(keyID, identity string, until time.Time) error
}

// APIHandler serves the operator's session API on the public listener, for named callers allowed
// the api action (guard.CheckNamed; Source "api"): an anonymous grant (`user: any`, which the
// built-in defaults give loopback clients) may neither list nor kick, because a DNS-rebound page
// shares the loopback address:
//
//	GET    /api/v1/sessions             {"sessions": [...]} every live session of every server
//	DELETE /api/v1/sessions/{id}        end it; ?source= when several servers share the id;
//	                                    ?ban=10m also refuses its stream key (or, without one,
//	                                    its identity) for that long, on every server
//
// DELETE answers 202 with what happens next (the kick is asynchronous), 404 for an unknown id,
// 409 when the id is ambiguous, 400 for a bad ban, 401 (reason identity_required) for an
// anonymous grant. With WithBroadcaster (a fleet of replicas), an id this node does not hold is
// announced to the other nodes instead of 404: the node that holds it ends it and applies the
// ban (Revoker.Apply); the answer is 202 with kick "announced". It starts no goroutines.
func APIHandler(rv *Revoker, auth Authorizer, ban Banner, now func() time.Time, opts ...APIOption) http.Handler {
	if now == nil {
		now = time.Now
	}
	h := &apiHandler{rv: rv, auth: auth, ban: ban, now: now}
	for _, o := range opts {
		o(h)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/sessions", h.list)
	mux.HandleFunc("DELETE /api/v1/sessions/{id}", h.kick)
	return mux
}

type apiHandler struct {
	rv    *Revoker
	auth  Authorizer
	ban   Banner
	now   func() time.Time
	fleet Broadcaster // nil: one node
}

// APIOption configures APIHandler.
type APIOption func(*apiHandler)

// WithBroadcaster announces kicks of sessions this node does not hold to the other nodes of a
// fleet through b.
func WithBroadcaster(b Broadcaster) APIOption { return func(h *apiHandler) { h.fleet = b } }

type sessionJSON struct {
	Source   string `json:"source"`
	ID       string `json:"id"`
	Path     string `json:"path"`
	Protocol string `json:"protocol,omitempty"`
	Identity string `json:"identity,omitempty"`
	Remote   string `json:"remote,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
	KeyLabel string `json:"key_label,omitempty"`
	Publish  bool   `json:"publish"`
}

func toJSON(s live.Session) sessionJSON {
	return sessionJSON{Source: s.Source, ID: s.ID, Path: s.Path, Protocol: s.Protocol, Identity: s.Identity,
		Remote: s.Remote, KeyID: s.KeyID, KeyLabel: s.KeyLabel, Publish: s.Publish}
}

func (h *apiHandler) list(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	all := h.rv.Sessions()
	out := make([]sessionJSON, len(all))
	for i, s := range all {
		out[i] = toJSON(s)
	}
	guard.JSON(w, http.StatusOK, struct {
		Sessions []sessionJSON `json:"sessions"`
	}{out})
}

func (h *apiHandler) kick(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	var ban time.Duration
	if v := r.URL.Query().Get("ban"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > MaxBan {
			writeError(w, http.StatusBadRequest, "ban must be a duration such as 10m or 2h, at most 168h")
			return
		}
		ban = d
	}
	s, err := h.rv.Find(r.URL.Query().Get("source"), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound) && h.fleet != nil:
		o := Order{Source: r.URL.Query().Get("source"), Session: r.PathValue("id"), Why: "kicked by an operator"}
		if ban > 0 {
			o.BanUntil = h.now().Add(ban)
		}
		if err := h.fleet.Broadcast(r.Context(), o); err != nil {
			writeError(w, http.StatusServiceUnavailable, "not a session of this node, and the other nodes cannot be reached")
			return
		}
		guard.JSON(w, http.StatusAccepted, struct {
			Session sessionJSON `json:"session"`
			Kick    string      `json:"kick"`
		}{sessionJSON{Source: o.Source, ID: o.Session}, "announced: the node that holds it ends it"})
		return
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no such session")
		return
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	out := struct {
		Session  sessionJSON `json:"session"`
		Kick     string      `json:"kick"`
		BanUntil *time.Time  `json:"ban_until,omitempty"`
		Banned   string      `json:"banned,omitempty"`
	}{Session: toJSON(s)}
	if ban > 0 {
		keyID, identity, what := banSubject(s)
		out.Banned = what
		if keyID == "" && identity == "" {
			writeError(w, http.StatusBadRequest, "this session has neither a stream key nor an identity to ban")
			return
		}
		until := h.now().Add(ban)
		if err := h.ban.Ban(keyID, identity, until); err != nil {
			writeError(w, http.StatusServiceUnavailable, "too many bans")
			return
		}
		out.BanUntil = &until
	}
	switch err := h.rv.Kick(s, "kicked by an operator"); {
	case err == nil:
		out.Kick = "pending"
	case errors.Is(err, ErrNoKicker):
		out.Kick = "no API for " + s.Source + ": it ends at the server's next re-check"
		if ban == 0 {
			out.Kick += " only if the grant is gone (add ?ban=)"
		}
	default:
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	guard.JSON(w, http.StatusAccepted, out)
}

func (h *apiHandler) authorize(w http.ResponseWriter, r *http.Request) bool {
	d, ok := guard.CheckNamed(w, r, h.auth, authz.ActionAPI, "api")
	if !ok {
		guard.JSON(w, d.HTTPStatus(), struct {
			Error  string `json:"error"`
			Reason string `json:"reason,omitempty"`
		}{d.Message, d.Reason})
	}
	return ok
}

// banSubject is what a kick's ban refuses: the session's stream key or, without one, its
// identity, and how to say so.
func banSubject(s live.Session) (keyID, identity, what string) {
	if s.KeyID != "" {
		return s.KeyID, "", "key " + s.KeyID
	}
	return "", s.Identity, "identity " + s.Identity
}

func writeError(w http.ResponseWriter, status int, msg string) {
	guard.JSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
