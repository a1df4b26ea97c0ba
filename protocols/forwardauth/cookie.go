package forwardauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// maxCookieLen bounds the cookie value accepted for verification.
const maxCookieLen = 4096

// cookieVersion prefixes every value; the MAC also covers a domain-separation label. v2 added
// the configuration binding (Instance, Generation, Issued); v1 cookies are refused.
const (
	cookieVersion = "v2"
	macLabel      = "gatehouse/forwardauth/cookie/v2\x00"
)

// Grant is what a segment cookie proves: the holder was allowed to read Path, as Identity (with
// the stream key KeyID, if a key decided), until Expires, by the configuration that Instance had
// at Generation, in a decision that started at Issued. Session is a random id kept across refreshes, used for viewer events.
type Grant struct {
	Path       string    `json:"p"`
	Identity   string    `json:"i,omitempty"`
	KeyID      string    `json:"k,omitempty"` // the managed stream key that earned it (RevokeKey)
	Session    string    `json:"s"`
	Instance   string    `json:"n"`           // the issuing Handler's random id (one per process)
	Generation uint64    `json:"g,omitempty"` // the Authorizer's Generation when the decision started
	Issued     int64     `json:"t"`           // Unix nanoseconds, taken before Generation was read
	Expires    time.Time `json:"-"`
	Exp        int64     `json:"e"` // Expires in Unix seconds (wire form)
}

// sealer signs and opens grant cookies with one HMAC-SHA256 key.
type sealer struct {
	key []byte
}

// seal returns "v1.<base64url(json)>.<base64url(mac)>".
func (s sealer) seal(g Grant) string {
	g.Exp = g.Expires.Unix()
	payload, _ := json.Marshal(g) // Grant always marshals
	p := base64.RawURLEncoding.EncodeToString(payload)
	m := s.mac(p)
	return cookieVersion + "." + p + "." + base64.RawURLEncoding.EncodeToString(m[:])
}

// mac returns HMAC-SHA256(key, macLabel || payload) (RFC 2104), as crypto/hmac computes it
// (TestMACMatchesHMAC, FuzzMACMatchesHMAC), with sha256.Sum256 over buffers on the stack:
// hmac.New allocates its two hash states and pads, and Sum its result, on every cookie.
func (s sealer) mac(payload string) [sha256.Size]byte {
	var k [sha256.BlockSize]byte // the key, zero-padded; a longer one is hashed first
	if len(s.key) > sha256.BlockSize {
		sum := sha256.Sum256(s.key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], s.key)
	}
	var buf [1024]byte // holds the inner message of every cookie this package issues
	msg := buf[:0]
	if n := sha256.BlockSize + len(macLabel) + len(payload); n > len(buf) {
		msg = make([]byte, 0, n)
	}
	for _, b := range k {
		msg = append(msg, b^0x36)
	}
	msg = append(append(msg, macLabel...), payload...)
	inner := sha256.Sum256(msg)
	var outer [sha256.BlockSize + sha256.Size]byte
	for i, b := range k {
		outer[i] = b ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

// open verifies v and returns its grant, or ErrBadCookie (forged, malformed) or ErrCookieExpired.
// The MAC is checked, in constant time, before the payload is parsed.
func (s sealer) open(v string, now time.Time) (Grant, error) {
	if len(v) > maxCookieLen {
		return Grant{}, fmt.Errorf("%w: too long", ErrBadCookie)
	}
	ver, rest, ok := strings.Cut(v, ".")
	if !ok || ver != cookieVersion {
		return Grant{}, fmt.Errorf("%w: unknown format", ErrBadCookie)
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return Grant{}, fmt.Errorf("%w: unknown format", ErrBadCookie)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return Grant{}, fmt.Errorf("%w: signature mismatch", ErrBadCookie)
	}
	if m := s.mac(p); !hmac.Equal(got, m[:]) {
		return Grant{}, fmt.Errorf("%w: signature mismatch", ErrBadCookie)
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Grant{}, fmt.Errorf("%w: payload encoding", ErrBadCookie)
	}
	var g Grant
	if err := json.Unmarshal(payload, &g); err != nil || g.Path == "" || g.Exp <= 0 {
		return Grant{}, fmt.Errorf("%w: payload", ErrBadCookie)
	}
	g.Expires = time.Unix(g.Exp, 0)
	if !now.Before(g.Expires) {
		return Grant{}, ErrCookieExpired
	}
	return g, nil
}
