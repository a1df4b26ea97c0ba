// Package keys is the stream-key backend: a publisher proves itself with a long random secret
// that the operator hands out per stream, the way streaming platforms do ("stream key").
//
// A key is presented in one of two ways:
//
//   - as the last segment of the stream path (OBS: Server rtmp://host/live, Stream key
//     <secret>): the request path live/<secret> is allowed and the Decision carries Rename =
//     the key's public path (live/alice), so an adapter that can rename (nginx-rtmp's 3xx
//     Location) publishes under the public name and viewers never see the key. The presented
//     path must live in the same parent as the public path (live/<secret> for live/alice);
//   - as a key parameter (Request.Key: rtmp://host/live/alice?key=<secret>, read by
//     package authz/creds, which alone knows the parameter's name): the request path must
//     then equal the public path exactly and there is no Rename. This is the form for servers
//     that cannot rename (MediaMTX, SRS): the engine refuses a Rename they cannot honour.
//
// Passwords and bearer tokens (Request.Pass, Request.Token) are deliberately not read: they
// belong to the user and token backends, and a stream key must never be mistaken for a
// password of the same user or vice versa.
//
// Unknown keys: a last segment that is no known key is the ordinary case (most stream names are
// not keys), so the backend abstains and the chain moves on. An explicit key parameter that
// matches nothing is Unauthenticated (bad_credentials); the chain may still allow by another
// method.
//
// Keys live in memory only as SHA-256 digests. Every lookup hashes the candidates and compares
// them with every configured digest in constant time without stopping early, so known and
// unknown keys cost the same. Rotation: edit the configuration and reload (SIGHUP): cmd builds
// a new Backend and swaps the engine's chain, after which the old key abstains, and nginx-rtmp's
// next on_update drops a session still publishing with it. Each key may also carry an expiry.
//
// Managed keys (ghk_…, see NewSecret) are created, rotated and revoked at run time and live in a
// Store (WithStore). A candidate with the ghk_ prefix is checked for length, alphabet and checksum
// first (malformed_key, no lookup), then looked up by digest on every request (no cache, so a
// revocation is refused at the next request). Every decision about a key carries its KeyID and
// KeyLabel; a stream name with the ghk_ prefix is always hidden from the log by Rename.
package keys

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// Sentinel errors of package keys.
var (
	// ErrInvalid is returned by New for a configuration that Config's YAML decoding would reject,
	// and by Spec.Normalize for an unusable key description.
	ErrInvalid = errors.New("keys: invalid configuration")
	// ErrMalformed is returned by ParseSecret for a string that is no managed key.
	ErrMalformed = errors.New("keys: malformed stream key")
	// ErrNotFound is wrapped by a Store that has no such key (by digest or by id).
	ErrNotFound = errors.New("keys: no such key")
	// ErrReadOnly is wrapped by a Store that cannot write (a read-only file), and by the API
	// for a key configured in YAML.
	ErrReadOnly = errors.New("keys: read-only")
	// ErrRevoked is wrapped by a Store asked to rotate a key that is already revoked.
	ErrRevoked = errors.New("keys: key is revoked")
	// ErrExpired is wrapped by a Store asked to rotate a key that has expired: its successor
	// would be born expired (the expiry is kept across a rotation), so a new key is needed.
	ErrExpired = errors.New("keys: key has expired")
)

// MinKeyLen is the shortest plain-text key accepted. Hook endpoints have no rate limit and
// stream keys are bearer secrets, so a short key is refused rather than warned about. Generate
// keys with `openssl rand -hex 16` (32 characters).
const MinKeyLen = 16

// Reasons specific to this backend (see authz.Decision.Reason).
const (
	ReasonKeyExpired    = "key_expired"
	ReasonWrongPath     = "key_wrong_path"
	ReasonKeyRevoked    = "key_revoked"
	ReasonMalformedKey  = "malformed_key"
	ReasonWrongProtocol = "key_wrong_protocol"
	// ReasonStoreUnavailable: the key store could not answer (the decision is Undecided).
	ReasonStoreUnavailable = "key_store_unavailable"
)

// Config is the backend's configuration, written as a list (or as a mapping {keys: <list>}):
//
//	keys:
//	  - key: ${ALICE_KEY}          # or sha256:<64 hex digits> of the key
//	    path: live/alice
//	    user: alice                # identity; default: the path
//	    actions: [publish]         # default [publish]; publish, read, playback
//	    expires: 2026-12-31T23:59:59Z   # optional, RFC 3339
//	    revoked: true              # optional: permits nothing, but keeps the key out of logs
//
// Several entries may share a path, so a new key can be introduced before the old one is
// removed. The same key twice is an error.
type Config struct {
	Keys []Key `yaml:"keys"`
}

// Key is one configured stream key. Build it through YAML or NewKey; the zero Key is invalid.
type Key struct {
	digest  [sha256.Size]byte
	Path    string         // public stream path, e.g. "live/alice"
	User    string         // identity reported on allow; "" means Path
	Actions []authz.Action // what the key permits; default [publish]
	Expires time.Time      // zero: never
	// Revoked keys permit nothing (reason key_revoked) but are still recognised, so that a
	// client or a running nginx-rtmp session that keeps presenting one as its stream name is
	// logged and reported under Path, never under the key. Rotate by adding the new key and
	// marking the old one revoked; delete it once nothing presents it any more.
	Revoked bool
}

// NewKey validates and returns a key. secret is the plain key or "sha256:<hex digest>"; path the
// public stream path; actions nil means [publish]; expires zero means never. The error never
// contains the secret.
func NewKey(secret, streamPath, user string, actions []authz.Action, expires time.Time) (Key, error) {
	digest, err := parseSecret(secret)
	if err == nil {
		err = checkPath(streamPath)
	}
	if err == nil {
		err = checkActions(actions)
	}
	if err != nil {
		return Key{}, err
	}
	k := Key{digest: digest, Path: streamPath, User: user, Actions: slices.Clone(actions), Expires: expires}
	if len(k.Actions) == 0 {
		k.Actions = []authz.Action{authz.ActionPublish}
	}
	return k, nil
}

// parseSecret returns the digest of a plain key, or the digest written as "sha256:<hex>".
func parseSecret(secret string) (digest [sha256.Size]byte, err error) {
	if hexDigest, ok := strings.CutPrefix(secret, "sha256:"); ok {
		b, err := hex.DecodeString(hexDigest)
		if err != nil || len(b) != sha256.Size {
			return digest, fmt.Errorf("%w: sha256: form needs exactly 64 hex digits", ErrInvalid)
		}
		copy(digest[:], b)
		if digest == sha256.Sum256(nil) { // would let an empty ?key= in
			return digest, fmt.Errorf("%w: sha256: form is the digest of an empty key", ErrInvalid)
		}
		return digest, nil
	}
	switch {
	case secret == "":
		return digest, fmt.Errorf("%w: key is empty", ErrInvalid)
	case len(secret) < MinKeyLen:
		return digest, fmt.Errorf("%w: key is shorter than %d characters (generate one with `openssl rand -hex 16`)", ErrInvalid, MinKeyLen)
	}
	for i := 0; i < len(secret); i++ {
		if !unreserved(secret[i]) {
			return digest, fmt.Errorf("%w: key may contain only letters, digits and - . _ ~ (it travels as a stream name or URL parameter)", ErrInvalid)
		}
	}
	return sha256.Sum256([]byte(secret)), nil
}

// checkActions accepts the actions a stream key can grant: those scoped to a stream path.
func checkActions(actions []authz.Action) error {
	for _, a := range actions {
		if !a.HasPath() {
			return fmt.Errorf("%w: action %q has no stream path (want publish, read or playback)", ErrInvalid, a)
		}
	}
	return nil
}

// unreserved reports whether c is an RFC 3986 unreserved character: such a key survives a stream
// name, a query string and nginx-rtmp's unescaped args untouched.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// checkPath accepts a concrete stream path: authz.CheckPath (no leading or trailing slash, no
// empty, "." or ".." segment, no control character), no pattern syntax, nothing a streaming server
// could read as a URL or a relay target.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: path is empty", ErrInvalid)
	case strings.HasPrefix(p, "~") || strings.Contains(p, "*"):
		return fmt.Errorf("%w: path %q must be a concrete stream path, not a pattern", ErrInvalid, p)
	case strings.ContainsAny(p, "?#&%:\\ "):
		return fmt.Errorf("%w: path %q contains one of ? # & %% : \\ or a space", ErrInvalid, p)
	}
	if err := authz.CheckPath(p); err != nil {
		return fmt.Errorf("%w: path %q: %w", ErrInvalid, p, err)
	}
	return nil
}

// UnmarshalYAML decodes one key strictly; every problem is reported with the line of its value.
func (k *Key) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		Key     string   `yaml:"key"`
		Path    string   `yaml:"path"`
		User    string   `yaml:"user"`
		Actions []string `yaml:"actions"`
		Expires string   `yaml:"expires"`
		Revoked bool     `yaml:"revoked"`
	}
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	var errs []error
	problem := func(key string, err error) {
		errs = append(errs, conf.Errorf(conf.Value(n, key), "%s: %s", key, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")))
	}
	digest, err := parseSecret(raw.Key)
	if err != nil {
		problem("key", err)
	}
	if err := checkPath(raw.Path); err != nil {
		problem("path", err)
	}
	actions := make([]authz.Action, 0, len(raw.Actions))
	for _, s := range raw.Actions {
		a, err := authz.ParseAction(s)
		if err == nil {
			err = checkActions([]authz.Action{a})
		}
		if err != nil {
			problem("actions", err)
			continue
		}
		actions = append(actions, a)
	}
	if len(actions) == 0 {
		actions = []authz.Action{authz.ActionPublish}
	}
	var exp time.Time
	if raw.Expires != "" {
		if exp, err = time.Parse(time.RFC3339, raw.Expires); err != nil {
			problem("expires", fmt.Errorf("%q is not an RFC 3339 time such as 2026-12-31T23:59:59Z", raw.Expires))
		}
	}
	if len(errs) > 0 {
		return conf.Join(errs...)
	}
	*k = Key{digest: digest, Path: raw.Path, User: raw.User, Actions: actions, Expires: exp, Revoked: raw.Revoked}
	return nil
}

// UnmarshalYAML decodes the key list strictly, either as the list itself (auth: {keys: [...]},
// the usual form) or as a mapping {keys: [...]}, and rejects a key configured twice (by digest,
// so the "sha256:" and plain forms of one key collide too).
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		Keys []Key `yaml:"keys"`
	}
	list := n
	if n.Kind == yaml.SequenceNode {
		if err := n.Decode(&raw.Keys); err != nil {
			return err
		}
	} else {
		if err := conf.Strict(n, &raw); err != nil {
			return err
		}
		list = conf.Value(n, "keys")
	}
	var errs []error
	if list != nil && list.Kind == yaml.SequenceNode {
		for i := range raw.Keys {
			for j := 0; j < i; j++ {
				if raw.Keys[i].digest == raw.Keys[j].digest && i < len(list.Content) {
					errs = append(errs, conf.Errorf(list.Content[i], "key is the same as keys[%d] (each key must be unique)", j))
					break
				}
			}
		}
	}
	c.Keys = raw.Keys
	return conf.Join(errs...)
}

// Backend authorizes requests that present a stream key: one configured in YAML (immutable, held
// as digests) or, with WithStore, a managed key from a Store. It is safe for concurrent use and
// starts no goroutines; reloading means building a new Backend (the Store outlives it).
type Backend struct {
	keys     []Key
	records  []Record // keys[i] as a read-only Record with ID "config:<i+1>" or "config:<instance>:<i+1>"
	store    Store    // nil: YAML keys only
	now      func() time.Time
	instance string
}

// Option configures a Backend.
type Option func(*Backend)

// WithStore makes the backend look up managed keys (ghk_…) in s. Without it, a managed key is
// refused as unknown.
func WithStore(s Store) Option { return func(b *Backend) { b.store = s } }

// WithInstance names the method instance the backend is, so that the ids of its YAML keys
// ("config:<instance>:<n>") cannot collide with another instance's: they are key ids in
// decisions, events, bans and revocations. Without it (or with ""), the ids are "config:<n>".
// instance must not contain ':'.
func WithInstance(instance string) Option { return func(b *Backend) { b.instance = instance } }

// SharedSecret reports the first key of c whose secret is also a key of o, by index in each:
// one secret in two method instances would be decided by whichever comes first, under two ids.
func (c Config) SharedSecret(o Config) (i, j int, ok bool) {
	for i := range c.Keys {
		for j := range o.Keys {
			if c.Keys[i].digest == o.Keys[j].digest {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// New returns a backend over cfg's keys. now is the clock used for expiry (nil: time.Now). It
// re-validates keys built by hand and returns ErrInvalid for a zero Key or a repeated key.
func New(cfg Config, now func() time.Time, opts ...Option) (*Backend, error) {
	if now == nil {
		now = time.Now
	}
	b := &Backend{keys: slices.Clone(cfg.Keys), now: now}
	for _, o := range opts {
		o(b)
	}
	idPrefix := "config:"
	if b.instance != "" {
		idPrefix += b.instance + ":"
	}
	var zero [sha256.Size]byte
	records := make([]Record, len(cfg.Keys))
	for i, k := range cfg.Keys {
		if k.digest == zero || checkPath(k.Path) != nil || len(k.Actions) == 0 {
			return nil, fmt.Errorf("%w: keys[%d] was not built with NewKey or YAML", ErrInvalid, i)
		}
		for j := 0; j < i; j++ {
			if cfg.Keys[j].digest == k.digest {
				return nil, fmt.Errorf("%w: keys[%d] repeats keys[%d]", ErrInvalid, i, j)
			}
		}
		records[i] = Record{
			ID:       fmt.Sprintf("%s%d", idPrefix, i+1),
			Spec:     Spec{Owner: k.User, Path: k.Path, Actions: slices.Clone(k.Actions), Expires: k.Expires},
			ReadOnly: true,
		}
		if k.Revoked { // revoked in the file: refused, still recognised (and kept out of logs)
			records[i].Revoked = time.Unix(0, 0).UTC()
		}
	}
	b.records = records
	return b, nil
}

// ConfigRecords returns the YAML-configured keys as read-only Records (for lists; no secrets).
func (b *Backend) ConfigRecords() []Record {
	out := make([]Record, len(b.records))
	for i, r := range b.records {
		r.Actions = slices.Clone(r.Actions)
		out[i] = r
	}
	return out
}

// BoundByContext implements authz.ContextBound: the YAML keys are a scan in memory; a Store
// counts only if it promises to honour its context too (authz.ContextBound).
func (b *Backend) BoundByContext() bool {
	if b.store == nil {
		return true
	}
	s, ok := b.store.(authz.ContextBound)
	return ok && s.BoundByContext()
}

// Authorize implements authz.Backend. See the package documentation for where the key is read
// and what an unknown key answers. It returns an error only when the Store could not answer.
func (b *Backend) Authorize(ctx context.Context, req *authz.Request) (authz.Decision, error) {
	if !req.Action.HasPath() {
		return authz.Decision{}, nil
	}
	param, hasParam := req.Key, req.Key != ""
	parent, last := splitLast(req.Path)
	// Hash both candidates always and scan every key without stopping, so the cost does not
	// depend on whether or where a key matches.
	segDigest := sha256.Sum256([]byte(last))
	paramDigest := sha256.Sum256([]byte(param))
	segIdx, paramIdx := -1, -1
	for i := range b.keys {
		d := b.keys[i].digest[:]
		segIdx = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(segDigest[:], d)&eqInt(segIdx, -1), i, segIdx)
		paramIdx = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(paramDigest[:], d)&eqInt(paramIdx, -1), i, paramIdx)
	}
	if !hasParam {
		paramIdx = -1
	}
	switch {
	case segIdx >= 0 && last != "":
		return b.bySegment(&b.records[segIdx], req, parent), nil
	case last != "" && IsManagedForm(last):
		// The stream name has a managed key's form: it is a key (never a stream name to pass
		// on), so every answer carries Rename and the log never shows it.
		hidden := joinPath(parent, "("+SecretPrefix+"key)")
		rec, d, err := b.lookup(ctx, last)
		if err != nil || rec == nil {
			d.Rename = hidden
			return d, err
		}
		return b.bySegment(rec, req, parent), nil
	case paramIdx >= 0:
		return b.byParam(&b.records[paramIdx], req), nil
	case hasParam && IsManagedForm(param):
		rec, d, err := b.lookup(ctx, param)
		if err != nil || rec == nil {
			return d, err
		}
		return b.byParam(rec, req), nil
	case hasParam:
		return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "stream key not accepted"), nil
	}
	return authz.Decision{}, nil
}

// lookup resolves a managed key: a malformed one is refused before the store is asked; the
// store is asked by digest (see Store). It returns the record, or the denial, or the store's
// error.
func (b *Backend) lookup(ctx context.Context, secret string) (*Record, authz.Decision, error) {
	digest, err := ParseSecret(secret)
	if err != nil {
		return nil, authz.Denying(authz.Unauthenticated, ReasonMalformedKey, "stream key is malformed (mistyped or truncated)"), nil
	}
	if b.store == nil {
		return nil, authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "stream key not accepted"), nil
	}
	rec, err := b.store.Lookup(ctx, digest)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "stream key not accepted"), nil
	case err != nil:
		return nil, authz.Decision{}, &authz.ReasonError{Reason: ReasonStoreUnavailable, Message: "stream key store unavailable", Err: err}
	}
	return &rec, authz.Decision{}, nil
}

// bySegment answers a key presented as the last path segment: it must belong to the same parent
// (application) and every answer carries Rename (the public path), so the engine's log line never
// shows the key, whether it allows or denies.
func (b *Backend) bySegment(k *Record, req *authz.Request, parent string) authz.Decision {
	d := authz.Denying(authz.Forbidden, ReasonWrongPath, "this stream key belongs to another application")
	if keyParent, _ := splitLast(k.Path); keyParent == parent {
		d = b.grant(k, req)
	}
	if k.Path != req.Path {
		d.Rename = k.Path
	}
	return d
}

// byParam answers a key presented as ?key=: the request path must be the key's path exactly.
func (b *Backend) byParam(k *Record, req *authz.Request) authz.Decision {
	if k.Path != req.Path {
		return authz.Denying(authz.Forbidden, ReasonWrongPath, "this stream key belongs to another stream path")
	}
	return b.grant(k, req)
}

func (b *Backend) grant(k *Record, req *authz.Request) authz.Decision {
	now := b.now()
	var d authz.Decision
	switch {
	case k.RevokedAt(now):
		d = authz.Denying(authz.Unauthenticated, ReasonKeyRevoked, "stream key revoked")
	case k.ExpiredAt(now):
		d = authz.Denying(authz.Unauthenticated, ReasonKeyExpired, "stream key expired")
	case !slices.Contains(k.Actions, req.Action):
		d = authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, fmt.Sprintf("stream key does not permit %s", req.Action))
		d.Identity = k.Identity()
	case len(k.Protocols) > 0 && !slices.Contains(k.Protocols, strings.ToLower(req.Protocol)):
		d = authz.Denying(authz.Forbidden, ReasonWrongProtocol, "stream key does not permit this protocol")
		d.Identity = k.Identity()
	default:
		exp := k.Expires
		if !k.Revoked.IsZero() && (exp.IsZero() || k.Revoked.Before(exp)) {
			exp = k.Revoked // a rotation's grace period ends the grant
		}
		d = authz.Allowing(k.Identity(), exp)
		if !k.ReadOnly && b.store != nil {
			b.store.Touch(k.ID, now, req.IP)
		}
	}
	d.KeyID, d.KeyLabel = k.ID, k.Label
	return d
}

func joinPath(parent, last string) string {
	if parent == "" {
		return last
	}
	return parent + "/" + last
}

// PublicPath implements authz.SecretPaths: it reports whether a segment of p is a configured key
// (revoked and expired ones included) or has a managed key's form, and, when that segment is the
// last one and a configured key, the key's public path. The engine uses it to keep keys out of its log and out of public names even when another
// method decides (a rule allowing read on live/* deciding live/<key>). Every segment is hashed and
// compared with every key, so the cost does not depend on which key matches or whether one does.
func (b *Backend) PublicPath(p string) (public string, secret bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	lastIdx, found := -1, 0
	for si, seg := range segs {
		d := sha256.Sum256([]byte(seg))
		idx := -1
		for i := range b.keys {
			idx = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(d[:], b.keys[i].digest[:])&eqInt(idx, -1), i, idx)
		}
		nonEmpty := subtle.ConstantTimeSelect(eqInt(len(seg), 0), 0, 1)
		found |= (1 - eqInt(idx, -1)) & nonEmpty
		if IsManagedForm(seg) { // a managed key (its public path needs a store lookup): hide it
			found = 1
		}
		if si == len(segs)-1 {
			lastIdx = subtle.ConstantTimeSelect(nonEmpty, idx, -1)
		}
	}
	if lastIdx >= 0 {
		return b.keys[lastIdx].Path, true
	}
	return "", found == 1
}

// eqInt returns 1 if a == b, else 0, in constant time.
func eqInt(a, b int) int { return subtle.ConstantTimeEq(int32(a), int32(b)) }

// splitLast splits "live/alice" into "live" and "alice", and "alice" into "" and "alice".
func splitLast(p string) (parent, last string) {
	p = strings.Trim(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}
