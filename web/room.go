package web

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gatehouse/web/login"
)

// RoomPrefix is the path prefix of rooms: a room named x holds the streams room/x/<participant>,
// one per participant, each published over WHIP and watched by the others over WHEP.
const RoomPrefix = "room/"

// roomName is what a room may be called: one path segment, plain characters only (it appears in
// URLs, paths and permission patterns, where '*' and '~' mean something).
var roomName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// cleanName is a login name used as a participant name as it is (web.login.unique_usernames).
var cleanName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,31}$`)

// derivedTail is the end of a derived participant name; a login name that ends like one is
// derived too, so a login name can never equal another user's derived name.
var derivedTail = regexp.MustCompile(`-[a-z2-7]{13}$`)

// userHash is the lower-case base32 alphabet of derived names' tails.
var userHash = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Participant returns the name s publishes under in a room (the last segment of
// room/<name>/<participant>): a slug of the login name (or, without one, the display name)
// followed by 13 base32 characters (65 bits) of a hash of the issuer and subject, such as
// "alice-5xq3m2k7d4a1b", because neither login names (OIDC Core §5.1) nor display names are
// unique and one user must not publish as another. Only when the operator vouches for the
// provider's login names (Session.UsernameUnique, web.login.unique_usernames) is a login name
// that is already a lower-case path segment used as it is ("alice").
func Participant(s *login.Session) string {
	if s.UsernameUnique && cleanName.MatchString(s.Username) && !derivedTail.MatchString(s.Username) {
		return s.Username
	}
	name := s.Username
	if strings.TrimSpace(name) == "" {
		name = s.Name
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 24 {
			break
		}
	}
	base := strings.TrimRight(b.String(), "-")
	if base == "" {
		base = "guest"
	}
	// The issuer's length first, so that no two (issuer, subject) pairs are the same bytes.
	sum := sha256.Sum256([]byte(strconv.Itoa(len(s.Issuer)) + ":" + s.Issuer + s.Subject))
	return base + "-" + userHash.EncodeToString(sum[:9])[:13]
}

// roomJoin is the answer of POST /room/{name}/join.
type roomJoin struct {
	Participant string    `json:"participant,omitempty"`
	Path        string    `json:"path,omitempty"`   // where the user publishes
	Publish     bool      `json:"publish"`          // false: the user may only watch
	Token       string    `json:"token,omitempty"`  // publishes on Path only
	Expires     time.Time `json:"expires,omitzero"` // Token's end: join again before it
	Reason      string    `json:"reason,omitempty"` // why not Publish: "login", "not_permitted"
	Detail      string    `json:"detail,omitempty"` // for people
}

func (a *App) room(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !roomName.MatchString(name) {
		d := a.data(w, r, "message", "No such room")
		a.render(w, http.StatusNotFound, "room-bad.html", d)
		return
	}
	d := a.data(w, r, "room", name)
	d.Path = RoomPrefix + name + "/"
	d.Room = name
	a.render(w, http.StatusOK, "room.html", d)
}

// roomJoin answers a logged-in page (with its CSRF token) that wants to speak in a room: a token
// that publishes on room/<name>/<Participant> and nothing else, minted only when the user's
// roles allow publishing there. The participant name is the server's choice, never the page's.
func (a *App) roomJoin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !roomName.MatchString(name) {
		apiError(w, http.StatusNotFound, "no such room")
		return
	}
	s, _ := a.session(r)
	switch {
	case s == nil:
		writeJoin(w, http.StatusUnauthorized, roomJoin{Reason: "login", Detail: "Log in to speak in this room."})
		return
	case !a.opt.Login.CheckCSRF(r, s):
		apiError(w, http.StatusForbidden, "cross-site request refused")
		return
	}
	j := roomJoin{Participant: Participant(s)}
	j.Path = RoomPrefix + name + "/" + j.Participant
	tok, exp, err := a.opt.Login.PublishToken(s, j.Path)
	switch {
	case errors.Is(err, login.ErrNoPermissions):
		j.Reason, j.Detail = "not_permitted", "Your account may watch this room but not speak in it."
	case err != nil:
		a.opt.Log.Error("web: mint room token", "room", name, "identity", s.Name, "error", err.Error())
		apiError(w, http.StatusInternalServerError, "could not mint a token")
		return
	default:
		j.Publish, j.Token, j.Expires = true, tok, exp
	}
	writeJoin(w, http.StatusOK, j)
}

func writeJoin(w http.ResponseWriter, status int, j roomJoin) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(j)
}
