package forwardauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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

// seal returns "v2.<base64url(json)>.<base64url(mac)>" (the JSON is json.Marshal's), built in
// one allocation when no string of g needs escaping (TestSealMatchesOld, FuzzSealMatchesOld).
func (s sealer) seal(g Grant) string {
	g.Exp = g.Expires.Unix()
	enc := base64.RawURLEncoding
	var jbuf [384]byte
	payload, ok := appendGrant(jbuf[:0], &g)
	if !ok {
		payload, _ = json.Marshal(g) // Grant always marshals
	}
	var pbuf [512]byte
	p := pbuf[:0]
	if n := enc.EncodedLen(len(payload)); n > len(pbuf) {
		p = make([]byte, 0, n)
	}
	p = enc.AppendEncode(p, payload)
	m := macOf(s.key, p)
	var mbuf [43]byte // enc.EncodedLen(sha256.Size)
	enc.Encode(mbuf[:], m[:])
	var b strings.Builder
	b.Grow(len(cookieVersion) + 1 + len(p) + 1 + len(mbuf))
	b.WriteString(cookieVersion + ".")
	b.Write(p)
	b.WriteByte('.')
	b.Write(mbuf[:])
	return b.String()
}

// appendGrant appends json.Marshal(g) to b, or returns false (and b unspecified) when a string of
// g holds a byte json.Marshal would escape (a control byte, '"', '\\', '<', '>', '&') or any
// non-ASCII byte (which it may replace or escape).
func appendGrant(b []byte, g *Grant) ([]byte, bool) {
	ok := true
	str := func(key, v string) {
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c < 0x20 || c >= 0x80, c == '"', c == '\\', c == '<', c == '>', c == '&':
				ok = false
				return
			}
		}
		b = append(append(append(append(b, key...), '"'), v...), '"')
	}
	str(`{"p":`, g.Path)
	if g.Identity != "" {
		str(`,"i":`, g.Identity)
	}
	if g.KeyID != "" {
		str(`,"k":`, g.KeyID)
	}
	str(`,"s":`, g.Session)
	str(`,"n":`, g.Instance)
	if g.Generation != 0 {
		b = strconv.AppendUint(append(b, `,"g":`...), g.Generation, 10)
	}
	b = strconv.AppendInt(append(b, `,"t":`...), g.Issued, 10)
	b = strconv.AppendInt(append(b, `,"e":`...), g.Exp, 10)
	return append(b, '}'), ok
}

// mac returns macOf(s.key, payload).
func (s sealer) mac(payload string) [sha256.Size]byte { return macOf(s.key, payload) }

// macOf returns HMAC-SHA256(key, macLabel || payload), computed by crypto/hmac. (A hand-written
// RFC 2104 over stack buffers saved its few allocations per cookie; not worth owning a MAC.)
func macOf[T string | []byte](key []byte, payload T) [sha256.Size]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macLabel))
	m.Write([]byte(payload))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
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
	g, err := decodeGrant(payload)
	if err != nil || g.Path == "" || g.Exp <= 0 {
		return Grant{}, fmt.Errorf("%w: payload", ErrBadCookie)
	}
	g.Expires = time.Unix(g.Exp, 0)
	if !now.Before(g.Expires) {
		return Grant{}, ErrCookieExpired
	}
	return g, nil
}

// decodeGrant is json.Unmarshal(payload, &g) (FuzzDecodeGrantMatchesJSON). The form seal writes
// (json.Marshal's, keys in field order, strings without escapes) is read directly, its strings
// sharing one copy of payload; anything else is left to encoding/json.
func decodeGrant(payload []byte) (Grant, error) {
	if g, ok := parseGrant(string(payload)); ok {
		return g, nil
	}
	var g Grant
	err := json.Unmarshal(payload, &g)
	return g, err
}

// parseGrant reads s when it is exactly
// {"p":S[,"i":S][,"k":S],"s":S,"n":S[,"g":N],"t":N,"e":N}, where each S is a JSON string of valid
// UTF-8 with no escape or control byte and each N a JSON integer of at most 19 digits (no sign)
// that fits its field:
// what json.Unmarshal reads from it needs no decoding. ok is false for anything else.
func parseGrant(s string) (g Grant, ok bool) {
	r := grantReader{s: s}
	ok = r.str(`{"p":"`, &g.Path, true) &&
		r.str(`,"i":"`, &g.Identity, false) &&
		r.str(`,"k":"`, &g.KeyID, false) &&
		r.str(`,"s":"`, &g.Session, true) &&
		r.str(`,"n":"`, &g.Instance, true)
	if !ok {
		return Grant{}, false
	}
	var gen, issued, exp uint64
	if !r.num(`,"g":`, &gen, math.MaxUint64, false) || !r.num(`,"t":`, &issued, math.MaxInt64, true) ||
		!r.num(`,"e":`, &exp, math.MaxInt64, true) || r.s[r.i:] != "}" {
		return Grant{}, false
	}
	g.Generation, g.Issued, g.Exp = gen, int64(issued), int64(exp)
	return g, true
}

// grantReader is parseGrant's position in its input.
type grantReader struct {
	s string
	i int
}

// str reads key (which ends with the string's opening quote) and the string after it into v. A
// missing key is a failure only when it is required.
func (r *grantReader) str(key string, v *string, required bool) bool {
	if !strings.HasPrefix(r.s[r.i:], key) {
		return !required
	}
	start := r.i + len(key)
	for j := start; j < len(r.s); j++ {
		switch c := r.s[j]; {
		case c == '"':
			if !utf8.ValidString(r.s[start:j]) {
				return false // encoding/json would replace the invalid bytes
			}
			*v, r.i = r.s[start:j], j+1
			return true
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}

// num reads key and the unsigned integer after it (1 to 19 digits, no leading zero, at most max)
// into v. 19 digits always fit a uint64; a longer number is left to encoding/json.
func (r *grantReader) num(key string, v *uint64, max uint64, required bool) bool {
	if !strings.HasPrefix(r.s[r.i:], key) {
		return !required
	}
	start := r.i + len(key)
	j, n := start, uint64(0)
	for ; j < len(r.s) && '0' <= r.s[j] && r.s[j] <= '9'; j++ {
		n = n*10 + uint64(r.s[j]-'0')
	}
	if d := j - start; d == 0 || d > 19 || (d > 1 && r.s[start] == '0') || n > max {
		return false
	}
	*v, r.i = n, j
	return true
}
