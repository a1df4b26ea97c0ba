package httpauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/authz"
)

// body is MediaMTX's authHTTPAddress request, fields in MediaMTX's order (internal/auth/manager.go).
type body struct {
	IP        string  `json:"ip"`
	User      string  `json:"user"`
	Password  string  `json:"password"`
	Token     string  `json:"token"`
	Action    string  `json:"action"`
	Path      string  `json:"path"`
	Protocol  string  `json:"protocol"`
	ID        *string `json:"id"` // null when there is no session
	Query     string  `json:"query"`
	UserAgent string  `json:"userAgent"`
}

// encodeBody renders req as MediaMTX would. token follows MediaMTX's rule: the token if one was
// presented, else the password. An IPv4-mapped address is written in dotted form, as MediaMTX's
// net.IP does.
func encodeBody(req *authz.Request) ([]byte, error) {
	b := body{
		User:      req.User,
		Password:  req.Pass,
		Token:     req.Token,
		Action:    string(req.Action),
		Path:      req.Path,
		Protocol:  req.Protocol,
		Query:     req.Query,
		UserAgent: req.UserAgent,
	}
	if b.Token == "" {
		b.Token = req.Pass
	}
	if req.IP.IsValid() {
		b.IP = req.IP.Unmap().String()
	}
	if req.ID != "" {
		id := req.ID
		b.ID = &id
	}
	return json.Marshal(b)
}

// cacheKey identifies a request for the cache and for collapsing: a salted SHA-256, so no
// credential is ever held in clear as a key.
type cacheKey [sha256.Size]byte

// key hashes every field the service sees except the session id (which differs for every client
// and would defeat the cache). With the cache disabled the id is included too, so each session
// still reaches the service as with MediaMTX. Every field is length-prefixed: no two distinct
// requests share an encoding.
func (b *Backend) key(req *authz.Request) cacheKey {
	var arr [512]byte
	buf := append(arr[:0], b.salt[:]...)
	buf = append(buf, 1) // encoding version
	buf = appendField(buf, string(req.Action))
	buf = appendField(buf, req.Path)
	buf = appendField(buf, req.Protocol)
	if req.IP.IsValid() {
		buf = req.IP.Unmap().AppendTo(append(buf, 1))
	} else {
		buf = append(buf, 0)
	}
	buf = append(buf, '|')
	buf = appendField(buf, req.User)
	buf = appendField(buf, req.Pass)
	buf = appendField(buf, req.Token)
	buf = appendField(buf, req.Query)
	buf = appendField(buf, req.UserAgent)
	if b.cache == nil {
		buf = appendField(buf, req.ID)
	}
	return sha256.Sum256(buf)
}

func appendField(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// Limits on what a 2xx reply body may set.
const (
	maxIdentity  = 256
	maxExpiresIn = 366 * 24 * time.Hour
)

// reply is the optional JSON body of a 2xx reply.
type reply struct {
	Identity  string        // replaces the request's user as the decision's identity
	ExpiresIn time.Duration // > 0: the grant ends this long after the reply
}

// parseReply reads an optional 2xx body of the form {"identity": "alice", "expires_in": 3600}.
// Anything else — an empty body, text, invalid JSON, a JSON value of the wrong type — is ignored
// as a whole (ok is false), so MediaMTX auth servers that send arbitrary bodies keep working.
// Unknown fields are ignored. An identity must be 1–256 bytes of printable UTF-8; expires_in a
// number of seconds in (0, 366 days]; a field failing its rule is dropped, the others kept.
func parseReply(raw []byte) (rep reply, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return reply{}, false
	}
	var in struct {
		Identity  *string  `json:"identity"`
		ExpiresIn *float64 `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return reply{}, false
	}
	if in.Identity != nil && validIdentity(*in.Identity) {
		rep.Identity = *in.Identity
	}
	if in.ExpiresIn != nil {
		s := *in.ExpiresIn
		if !math.IsNaN(s) && s > 0 && s <= maxExpiresIn.Seconds() {
			if d := time.Duration(s * float64(time.Second)); d > 0 {
				rep.ExpiresIn = d
			}
		}
	}
	return rep, true
}

// validIdentity accepts what can safely appear in logs and downstream headers.
func validIdentity(s string) bool {
	if s == "" || len(s) > maxIdentity || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
