package keys

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/authz"
)

// Store holds managed keys (created with the CLI or the API) by digest. The Backend reads it on
// every request that presents a well-formed managed key; it is declared here, by its consumer, so
// the embedded SQLite store (package sqlitestore) and a shared database can both serve it.
// Implementations must be safe for concurrent use and must never see a plain key.
type Store interface {
	// Lookup returns the key whose digest is d, revoked or expired ones included (the Backend
	// decides), or an error wrapping ErrNotFound. Any other error means "could not decide".
	Lookup(ctx context.Context, d Digest) (Record, error)
	// Touch records that key id was used at t from addr. It must not block on storage: stores
	// batch these and write them later (a publish storm must not become a write storm).
	Touch(id string, t time.Time, addr netip.Addr)
}

// Limits on the free-text fields of a key.
const (
	MaxLabelLen = 200 // bytes of Label
	MaxOwnerLen = 200 // bytes of Owner
	MaxProtocol = 16  // protocols listed on one key
)

// Spec is what a new managed key permits and says about itself.
type Spec struct {
	Label     string         // free text shown in lists ("Alice's OBS"); may be empty
	Owner     string         // identity reported on allow; "" means Path
	Path      string         // public stream path, e.g. "live/alice"
	Actions   []authz.Action // publish, read, playback; nil means [publish]
	Protocols []string       // lower-case protocol names (rtmp, srt, webrtc, ...); nil means any
	Expires   time.Time      // zero: never
}

// Normalize validates s and fills its defaults: actions [publish], protocols lower-cased and
// without duplicates. The error wraps ErrInvalid and says which field is wrong.
func (s Spec) Normalize() (Spec, error) {
	if err := checkText("label", s.Label, MaxLabelLen); err != nil {
		return s, err
	}
	if err := checkText("owner", s.Owner, MaxOwnerLen); err != nil {
		return s, err
	}
	if err := checkPath(s.Path); err != nil {
		return s, err
	}
	if err := checkActions(s.Actions); err != nil {
		return s, err
	}
	acts := make([]authz.Action, 0, len(s.Actions))
	for _, a := range s.Actions {
		if !slices.Contains(acts, a) {
			acts = append(acts, a)
		}
	}
	if len(acts) == 0 {
		acts = []authz.Action{authz.ActionPublish}
	}
	s.Actions = acts
	if len(s.Protocols) > MaxProtocol {
		return s, fmt.Errorf("%w: at most %d protocols", ErrInvalid, MaxProtocol)
	}
	var protos []string
	for _, p := range s.Protocols {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" || len(p) > 16 || strings.IndexFunc(p, func(r rune) bool { return !('a' <= r && r <= 'z' || '0' <= r && r <= '9') }) >= 0 {
			return s, fmt.Errorf("%w: protocol %q is not a protocol name such as rtmp, srt, webrtc", ErrInvalid, p)
		}
		if !slices.Contains(protos, p) {
			protos = append(protos, p)
		}
	}
	s.Protocols = protos
	return s, nil
}

// checkText accepts valid UTF-8 of at most max bytes without control characters.
func checkText(field, v string, max int) error {
	switch {
	case len(v) > max:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, field, max)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %s contains a control character", ErrInvalid, field)
	}
	return nil
}

// Record is one key as stores and the API show it. It never holds the secret.
type Record struct {
	ID string // public, stable id such as "key_3kq7w2mhxa"; "config:N" or "config:<instance>:N" for YAML keys
	Spec
	Created  time.Time
	Revoked  time.Time // zero: not revoked; in the future: a rotation's grace period
	LastUsed time.Time // zero: never (written in batches, so up to a flush interval late)
	LastAddr string    // client address of the last use
	ReadOnly bool      // configured in YAML: change it by editing the file
}

// Identity is who the key's holder is: Owner, or Path when no owner was given.
func (r *Record) Identity() string {
	if r.Owner != "" {
		return r.Owner
	}
	return r.Path
}

// RevokedAt reports whether the key is revoked at t.
func (r *Record) RevokedAt(t time.Time) bool { return !r.Revoked.IsZero() && !t.Before(r.Revoked) }

// ExpiredAt reports whether the key has expired at t.
func (r *Record) ExpiredAt(t time.Time) bool { return !r.Expires.IsZero() && !t.Before(r.Expires) }

// Status is "active", "expired", "revoked" or "revoking" (revoked at a future time) at t.
func (r *Record) Status(t time.Time) string {
	switch {
	case r.RevokedAt(t):
		return "revoked"
	case r.ExpiredAt(t):
		return "expired"
	case !r.Revoked.IsZero():
		return "revoking"
	}
	return "active"
}

// Revocation tells subscribers (the SFU, adapters that can end a session) that a key stops
// working at At: now for a revocation, later for a rotation's grace period.
type Revocation struct {
	KeyID, Label, Owner, Path string
	At                        time.Time
}
