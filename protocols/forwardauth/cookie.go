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
	return cookieVersion + "." + p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

func (s sealer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(macLabel))
	m.Write([]byte(payload))
	return m.Sum(nil)
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
	if err != nil || !hmac.Equal(got, s.mac(p)) {
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
