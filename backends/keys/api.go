package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gatehouse/authz"
	"gatehouse/authz/guard"
)

// Admin manages stored keys; *sqlitestore.Store implements it. Errors wrap ErrNotFound,
// ErrInvalid, ErrReadOnly, ErrRevoked or ErrExpired when they are the caller's fault.
type Admin interface {
	Create(ctx context.Context, spec Spec) (Record, string, error)
	List(ctx context.Context) ([]Record, error)
	Get(ctx context.Context, id string) (Record, error)
	Revoke(ctx context.Context, id string) (Record, error)
	Rotate(ctx context.Context, id string, grace time.Duration) (Record, string, Record, error)
}

// Authorizer decides API requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// MaxBody is the largest request body the keys API reads.
const MaxBody = 16 << 10

// APIHandler serves stream-key management as JSON on the public listener:
//
//	GET    /api/v1/keys               {"keys": [Key...]}: stored keys, then YAML keys (read_only)
//	POST   /api/v1/keys               create; body {"path", "label", "owner", "actions",
//	                                  "protocols", "ttl": "12h" | "expires": RFC 3339}; 201 with
//	                                  "secret", shown this once
//	GET    /api/v1/keys/{id}          one key
//	DELETE /api/v1/keys/{id}          revoke now; 200 with the key
//	POST   /api/v1/keys/{id}/rotate   new key, old one revoked after {"grace": "10m"} (default 0);
//	                                  201 with the new key's "secret" and "replaces"; 409
//	                                  (reason expired) for an expired key, whose successor
//	                                  would inherit the expiry: create a new key instead
//
// Every request is decided as action "api" (Source "api") with the Authorization header's
// credentials and the client address from clientip.Addr. POST requires Content-Type
// application/json (a cross-site form cannot send it without a CORS preflight, which gatehouse
// never grants), bodies are read up to MaxBody, must be valid UTF-8 and have no unknown fields.
// Errors are application/problem+json (RFC 9457) with a "reason". No answer other than the one
// to a create or rotate ever contains a secret. admin may be nil (the store could not be
// opened): lists then show the YAML keys and changes answer 503. configKeys (may be nil) returns
// the running configuration's keys. It starts no goroutines.
func APIHandler(admin Admin, auth Authorizer, configKeys func() []Record, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	if configKeys == nil {
		configKeys = func() []Record { return nil }
	}
	h := &apiHandler{admin: admin, auth: auth, config: configKeys, now: now}
	mux := http.NewServeMux()
	for pattern, f := range map[string]http.HandlerFunc{
		"GET /api/v1/keys":              h.list,
		"POST /api/v1/keys":             h.create,
		"GET /api/v1/keys/{id}":         h.get,
		"DELETE /api/v1/keys/{id}":      h.revoke,
		"POST /api/v1/keys/{id}/rotate": h.rotate,
		"/api/v1/keys/": func(w http.ResponseWriter, r *http.Request) {
			problem(w, http.StatusNotFound, "not_found", "no such endpoint under /api/v1/keys")
		},
	} {
		mux.Handle(pattern, h.authorized(f))
	}
	return mux
}

type apiHandler struct {
	admin  Admin
	auth   Authorizer
	config func() []Record
	now    func() time.Time
}

// keyJSON is a key as the API shows it.
type keyJSON struct {
	ID        string     `json:"id"`
	Label     string     `json:"label"`
	Owner     string     `json:"owner,omitempty"`
	Identity  string     `json:"identity"`
	Path      string     `json:"path"`
	Actions   []string   `json:"actions"`
	Protocols []string   `json:"protocols,omitempty"`
	Status    string     `json:"status"`
	ReadOnly  bool       `json:"read_only,omitempty"`
	Created   *time.Time `json:"created,omitempty"`
	Expires   *time.Time `json:"expires,omitempty"`
	Revoked   *time.Time `json:"revoked,omitempty"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
	LastAddr  string     `json:"last_addr,omitempty"`
	Secret    string     `json:"secret,omitempty"`   // only in the answer to a create or rotate
	Replaces  string     `json:"replaces,omitempty"` // rotate: the old key's id
}

func (h *apiHandler) toJSON(r Record) keyJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	k := keyJSON{ID: r.ID, Label: r.Label, Owner: r.Owner, Identity: r.Identity(), Path: r.Path,
		Protocols: r.Protocols, Status: r.Status(h.now()), ReadOnly: r.ReadOnly,
		Created: opt(r.Created), Expires: opt(r.Expires), Revoked: opt(r.Revoked), LastUsed: opt(r.LastUsed), LastAddr: r.LastAddr}
	for _, a := range r.Actions {
		k.Actions = append(k.Actions, string(a))
	}
	return k
}

func (h *apiHandler) list(w http.ResponseWriter, r *http.Request) {
	out := []keyJSON{}
	if h.admin != nil {
		recs, err := h.admin.List(r.Context())
		if err != nil {
			h.fail(w, err)
			return
		}
		for _, rec := range recs {
			out = append(out, h.toJSON(rec))
		}
	}
	for _, rec := range h.config() {
		out = append(out, h.toJSON(rec))
	}
	guard.JSON(w, http.StatusOK, struct {
		Keys []keyJSON `json:"keys"`
	}{out})
}

func (h *apiHandler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if rec, ok := h.configKey(id); ok {
		guard.JSON(w, http.StatusOK, h.toJSON(rec))
		return
	}
	if admin, ok := h.store(w); ok {
		rec, err := admin.Get(r.Context(), id)
		h.reply(w, http.StatusOK, rec, "", "", err)
	}
}

// createBody is the POST /api/v1/keys body.
type createBody struct {
	Path      string   `json:"path"`
	Label     string   `json:"label"`
	Owner     string   `json:"owner"`
	Actions   []string `json:"actions"`
	Protocols []string `json:"protocols"`
	TTL       string   `json:"ttl"`
	Expires   string   `json:"expires"`
}

func (h *apiHandler) create(w http.ResponseWriter, r *http.Request) {
	var body createBody
	if !readJSON(w, r, &body, false) {
		return
	}
	spec, err := body.spec(h.now())
	if err != nil {
		h.fail(w, err)
		return
	}
	if admin, ok := h.store(w); ok {
		rec, secret, err := admin.Create(r.Context(), spec)
		h.reply(w, http.StatusCreated, rec, secret, "", err)
	}
}

// spec turns the body into a Spec, resolving ttl against now.
func (b createBody) spec(now time.Time) (Spec, error) {
	s := Spec{Path: b.Path, Label: b.Label, Owner: b.Owner, Protocols: b.Protocols}
	for _, a := range b.Actions {
		act, err := authz.ParseAction(a)
		if err != nil {
			return s, fmt.Errorf("%w: actions: %w", ErrInvalid, err)
		}
		s.Actions = append(s.Actions, act)
	}
	var err error
	if s.Expires, err = ParseExpiry(b.TTL, b.Expires, now); err != nil {
		return s, err
	}
	return s.Normalize()
}

// ParseExpiry returns the expiry given either as a ttl (a Go duration such as "12h", from now)
// or as an RFC 3339 time; both empty means never. Errors wrap ErrInvalid.
func ParseExpiry(ttl, expires string, now time.Time) (time.Time, error) {
	switch {
	case ttl != "" && expires != "":
		return time.Time{}, fmt.Errorf("%w: give ttl or expires, not both", ErrInvalid)
	case ttl != "":
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("%w: ttl %q is not a positive duration such as 12h or 30m", ErrInvalid, clip(ttl))
		}
		return now.Add(d), nil
	case expires != "":
		t, err := time.Parse(time.RFC3339, expires)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: expires %q is not an RFC 3339 time such as 2026-12-31T23:59:59Z", ErrInvalid, clip(expires))
		}
		if !t.After(now) {
			return time.Time{}, fmt.Errorf("%w: expires is in the past", ErrInvalid)
		}
		return t, nil
	}
	return time.Time{}, nil
}

// clip shortens an echoed value (never a secret: durations and times) to keep errors small.
func clip(s string) string {
	if len(s) > 40 || !utf8.ValidString(s) {
		return "(invalid)"
	}
	return s
}

func (h *apiHandler) revoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if admin, ok := h.changeable(w, id); ok {
		rec, err := admin.Revoke(r.Context(), id)
		h.reply(w, http.StatusOK, rec, "", "", err)
	}
}

func (h *apiHandler) rotate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Grace string `json:"grace"`
	}
	if !readJSON(w, r, &body, true) {
		return
	}
	var grace time.Duration
	if body.Grace != "" {
		g, err := time.ParseDuration(body.Grace)
		if err != nil || g < 0 {
			h.fail(w, fmt.Errorf("%w: grace %q is not a duration such as 10m (0 revokes at once)", ErrInvalid, clip(body.Grace)))
			return
		}
		grace = g
	}
	id := r.PathValue("id")
	if admin, ok := h.changeable(w, id); ok {
		rec, secret, old, err := admin.Rotate(r.Context(), id, grace)
		h.reply(w, http.StatusCreated, rec, secret, old.ID, err)
	}
}

// authorized serves f only to requests allowed action "api" by a named identity
// (guard.CheckNamed): a key grants publishing, so an anonymous api grant — the built-in
// defaults give one to every loopback client — must not mint or list keys.
func (h *apiHandler) authorized(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := guard.CheckNamed(w, r, h.auth, authz.ActionAPI, "api"); !ok {
			problem(w, d.HTTPStatus(), d.Reason, d.Message)
			return
		}
		f(w, r)
	})
}

// store returns the key store, or answers 503 and false when it could not be opened.
func (h *apiHandler) store(w http.ResponseWriter) (Admin, bool) {
	if h.admin == nil {
		h.fail(w, errNoStore)
		return nil, false
	}
	return h.admin, true
}

// changeable returns the key store for changing key id, or answers and returns false when id
// is a YAML key (409) or the store could not be opened (503).
func (h *apiHandler) changeable(w http.ResponseWriter, id string) (Admin, bool) {
	if _, ok := h.configKey(id); ok {
		h.fail(w, errConfigKey)
		return nil, false
	}
	return h.store(w)
}

// reply answers a store operation: err as a problem (fail), else rec as JSON with status. A
// created key (201) comes with its Location and its secret, shown this once, and a rotated one
// with the id of the key it replaces.
func (h *apiHandler) reply(w http.ResponseWriter, status int, rec Record, secret, replaces string, err error) {
	if err != nil {
		h.fail(w, err)
		return
	}
	k := h.toJSON(rec)
	k.Secret, k.Replaces = secret, replaces
	if status == http.StatusCreated {
		w.Header().Set("Location", "/api/v1/keys/"+rec.ID)
	}
	guard.JSON(w, status, k)
}

func (h *apiHandler) configKey(id string) (Record, bool) {
	if !strings.HasPrefix(id, "config:") {
		return Record{}, false
	}
	i := slices.IndexFunc(h.config(), func(r Record) bool { return r.ID == id })
	if i < 0 {
		return Record{}, false
	}
	return h.config()[i], true
}

var (
	errNoStore   = errors.New("keys: the key store is not available (see the server log)")
	errConfigKey = fmt.Errorf("%w: this key is configured in YAML; edit the file to change it", ErrReadOnly)
)

// fail answers err as a problem: the caller's mistakes as 4xx with their (secret-free) text,
// anything else as 503 without details (the store's error may name files).
func (h *apiHandler) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		problem(w, http.StatusNotFound, "not_found", "no key with this id")
	case errors.Is(err, ErrInvalid):
		problem(w, http.StatusBadRequest, "invalid", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	case errors.Is(err, errConfigKey):
		problem(w, http.StatusConflict, "read_only", "this key is configured in YAML; edit the file to change it")
	case errors.Is(err, ErrReadOnly):
		problem(w, http.StatusServiceUnavailable, "read_only", "the key store is read-only (see the server log)")
	case errors.Is(err, ErrRevoked):
		problem(w, http.StatusConflict, "revoked", "the key is revoked; create a new one")
	case errors.Is(err, ErrExpired):
		problem(w, http.StatusConflict, "expired", "the key has expired, and its replacement would be too; create a new one")
	default:
		problem(w, http.StatusServiceUnavailable, "store_unavailable", "the key store is not available (see the server log)")
	}
}

// readJSON decodes a bounded, UTF-8, strictly typed JSON body. With optional, an empty body is
// fine. POST always needs Content-Type application/json.
func readJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		problem(w, http.StatusUnsupportedMediaType, "content_type", "send Content-Type: application/json")
		return false
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", MaxBody))
		return false
	}
	if optional && len(strings.TrimSpace(string(raw))) == 0 {
		return true
	}
	if !utf8.Valid(raw) {
		problem(w, http.StatusBadRequest, "invalid_utf8", "the body is not valid UTF-8")
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem(w, http.StatusBadRequest, "invalid_json", "the body is not the expected JSON object: "+jsonProblem(err))
		return false
	}
	if dec.More() {
		problem(w, http.StatusBadRequest, "invalid_json", "the body has data after the JSON object")
		return false
	}
	return true
}

// jsonProblem describes a decoding error without echoing the body.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if len(name) > 42 || !utf8.ValidString(name) {
			return "unknown field"
		}
		return "unknown field " + name
	}
	return "not a JSON object"
}

func problem(w http.ResponseWriter, status int, reason, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Reason string `json:"reason"`
	}{"about:blank", http.StatusText(status), status, detail, reason})
}
