// Package ome answers OvenMediaEngine's AdmissionWebhooks (ControlServerUrl
// http://127.0.0.1:8090/hooks/ome). OME posts one JSON document per session start ("opening") and
// end ("closing"), signed with X-OME-Signature when a SecretKey is configured.
//
// Opening: the request becomes one authz.Request (direction incoming → publish, outgoing → read;
// path app/stream from request.url, read as OME reads it, see ParseTarget; credentials from the
// URL query) and the engine's Decision is answered as status 200 with
// {"allowed":…,"reason":…,"lifetime":ms[,"new_url":…]}. OME accepts only status 200, so denials
// are 200 + allowed:false: OME then closes the RTMP/SRT connection, refuses the WebRTC offer, or
// answers WHIP/LL-HLS clients 401 "AdmissionWebhooks error" itself. OME never re-checks a running
// session: the grant's expiry travels as lifetime, after which OME disconnects it. The handler
// remembers the request that admitted each running publish session, so that gatehouse can decide
// it again after a reload and end it through OME's API (Recheck, Kicker).
//
// Closing: reported to the Recorder (Unpublished or Left) and answered 200 {}.
//
// Requests that are not OME's (bad or missing signature while a secret is configured, wrong method,
// oversized or malformed body) get a 4xx status with {"allowed":false,…}: OME treats any non-200
// status as a denial (fail closed), and a forged closing never reaches the Recorder.
package ome

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/creds"
	"gatehouse/authz/hookio"
	"gatehouse/authz/live"
	"gatehouse/authz/recheck"
)

// MaxBody is the largest request body accepted (hookio.DefaultMaxBody).
const MaxBody = hookio.DefaultMaxBody

// SignatureHeader carries base64url(HMAC-SHA1(SecretKey, body)) without padding.
const SignatureHeader = "X-OME-Signature"

// Source is the value of authz.Request.Source and live.Event.Source for this adapter.
const Source = "ome"

// DefaultMaxClockSkew is Config.MaxClockSkew's default.
const DefaultMaxClockSkew = 5 * time.Minute

// Sentinel errors of package ome.
var (
	// ErrBadSignature is returned by Verify when the signature is missing or does not match.
	ErrBadSignature = errors.New("ome: missing or invalid " + SignatureHeader)
	// ErrMalformed is wrapped by every Decode error: the body is not an admission document.
	ErrMalformed = errors.New("ome: malformed admission request")
	// ErrBadURL is wrapped when request.url has no app/stream path or an unusable query.
	ErrBadURL = errors.New("ome: unusable request url")
	// ErrStale is wrapped when a signed request's request.time is missing, unreadable or
	// farther from gatehouse's clock than Config.MaxClockSkew: a replayed body, or clocks apart.
	ErrStale = errors.New("ome: request.time outside the allowed clock skew")
)

// Authorizer decides requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// Recorder receives session start and end events; the live registry implements it. It must be
// idempotent per Session: OME duplicates and reorders opening/closing (issues #1909, #1991).
type Recorder interface {
	Record(live.Event)
}

// Config configures the OME adapter. The zero value accepts unsigned requests and reads the
// token from token, jwt or access_key.
type Config struct {
	// Secret is OME's <SecretKey>. When set, every request (opening and closing) must carry a
	// valid X-OME-Signature, and a request.time within MaxClockSkew of gatehouse's clock (the
	// signature covers the body only, so an old signed body could otherwise be replayed);
	// others are refused with 401. Empty: signatures are not checked, and anyone who reaches
	// the hook can forge openings and closings (gatehouse warns at start when hooks.ome is
	// configured, and once at the first unsigned request).
	Secret string `yaml:"secret"`
	// MaxClockSkew is how far a signed request's request.time may be from gatehouse's clock,
	// either way. Default 5m.
	MaxClockSkew conf.Duration `yaml:"max_clock_skew" conf:"nonzero"`
	// TrustRealIP uses client.real_ip (OME's X-Real-IP / X-Forwarded-For value) instead of
	// client.address. Enable only when every HTTP path into OME passes a proxy that overwrites
	// those headers; clients can forge them otherwise. Default false.
	TrustRealIP bool `yaml:"trust_real_ip"`
	// TokenParams are extra URL query names whose value is used as the token when neither token
	// nor jwt is present. nil (unset): [access_key], the convention of OvenEmprex-style setups
	// ("?access_key=KEY"); an explicit empty list disables the fallback.
	TokenParams []string `yaml:"token_params"`
	// API is OME's REST API (<Managers><API>), used to end the publish session of a revoked
	// stream key, an operator's kick or a grant a reload removed (Kicker, Handler.Recheck): {url:
	// http://127.0.0.1:8081, user:, password:} with the <AccessToken> "user:password". Default:
	// none; a publish then ends at its grant's lifetime, if it has one.
	API conf.Endpoint `yaml:"api"`
	// Vhost is the OME virtual host name in API paths (default "default").
	Vhost string `yaml:"vhost"`
}

// Handler serves POST /hooks/ome. It starts no goroutines and is safe for concurrent use.
type Handler struct {
	auth        Authorizer
	rec         Recorder
	log         *slog.Logger
	secret      []byte
	maxSkew     time.Duration
	warned      atomic.Bool // the first unsigned request was logged
	trustRealIP bool
	tokenParams []string
	now         func() time.Time
	// publishers remembers each running publish session with the request that admitted it,
	// until its closing: OME never asks again, so gatehouse re-decides them after a reload
	// (Recheck). Viewers are not remembered: OME has no API to end one.
	publishers *recheck.Table
	signers    sync.Pool // *signer under secret, for verify
}

// maxPublishers bounds Handler.publishers; publisherTTL forgets a session whose closing never
// came (OME duplicates and loses callbacks).
const (
	maxPublishers = 10_000
	publisherTTL  = 24 * time.Hour
)

// New returns a Handler asking auth and reporting sessions to rec (nil: not reported), logging to
// log (nil: discard).
func New(cfg Config, auth Authorizer, rec Recorder, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tp := cfg.TokenParams
	if tp == nil {
		tp = []string{"access_key"}
	}
	h := &Handler{
		auth:        auth,
		rec:         rec,
		log:         log,
		trustRealIP: cfg.TrustRealIP,
		tokenParams: append([]string(nil), tp...),
		now:         time.Now,
		publishers:  recheck.New(maxPublishers, publisherTTL, nil, log),
		maxSkew:     cfg.MaxClockSkew.Or(DefaultMaxClockSkew),
	}
	if cfg.Secret != "" {
		h.secret = []byte(cfg.Secret)
	}
	return h
}

// Recheck decides every running publish session again (after a reload) and returns those now
// really denied, forgetting them; the caller ends them through OME's API (Kicker). It implements
// revoke.Rechecker.
func (h *Handler) Recheck(ctx context.Context) []live.Session {
	return h.publishers.Recheck(ctx, h.auth)
}

// Expired forgets the publish sessions whose grant has expired and returns none: OME ends them
// itself at their lifetime, and a kick (by stream name) could end a newer publisher of the same
// stream. It implements revoke.Rechecker.
func (h *Handler) Expired() []live.Session {
	h.publishers.Expired()
	return nil
}

// Sign returns the X-OME-Signature value for body under secret, as OME computes it.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write(body)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks sig against body in constant time. Padded and standard-alphabet encodings of the
// same bytes are accepted too. It returns ErrBadSignature on any mismatch.
func Verify(secret, body []byte, sig string) error {
	return verify(&signer{mac: hmac.New(sha1.New, secret)}, body, sig)
}

// signer is an HMAC-SHA1 under the secret with room for its sum: the handler keeps a few in a
// pool instead of making one (five allocations) per request.
type signer struct {
	mac hash.Hash // hmac.New(sha1.New, secret)
	sum [sha1.Size]byte
}

// maxSig is the longest signature verify reads without allocating (a valid one has 27
// characters; base64 decoding skips '\r' and '\n', so a longer one may still be valid).
const maxSig = 64

// verify is Verify with s's MAC (FuzzVerifyMatchesOld holds it to the old Verify).
func verify(s *signer, body []byte, sig string) error {
	sig = strings.TrimRight(strings.TrimSpace(sig), "=")
	var buf [maxSig]byte
	var enc []byte
	if len(sig) <= len(buf) {
		enc = buf[:len(sig)]
	} else {
		enc = make([]byte, len(sig))
	}
	for i := 0; i < len(sig); i++ { // the standard alphabet's two characters as the URL one's
		switch c := sig[i]; c {
		case '+':
			enc[i] = '-'
		case '/':
			enc[i] = '_'
		default:
			enc[i] = c
		}
	}
	var dec [maxSig * 3 / 4]byte
	got := dec[:]
	if n := base64.RawURLEncoding.DecodedLen(len(enc)); n > len(dec) {
		got = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(got, enc)
	if err != nil || n != sha1.Size {
		return ErrBadSignature
	}
	s.mac.Reset()
	s.mac.Write(body)
	if !hmac.Equal(got[:n], s.mac.Sum(s.sum[:0])) {
		return ErrBadSignature
	}
	return nil
}

// verify checks sig against body with a signer from h's pool.
func (h *Handler) verify(body []byte, sig string) error {
	s, _ := h.signers.Get().(*signer)
	if s == nil {
		s = &signer{mac: hmac.New(sha1.New, h.secret)}
	}
	err := verify(s, body, sig)
	h.signers.Put(s)
	return err
}

// Admission is OME's request document (admission_webhooks.cpp MakeMessageBody). Unknown fields are
// ignored.
type Admission struct {
	Client struct {
		Address   string      `json:"address"`
		Port      json.Number `json:"port"`
		RealIP    string      `json:"real_ip"`
		UserAgent string      `json:"user_agent"`
	} `json:"client"`
	Request struct {
		Direction string `json:"direction"` // incoming (publish) | outgoing (play)
		Protocol  string `json:"protocol"`  // RTMP, WebRTC, SRT, LLHLS, HLSv3, ... (any case)
		Status    string `json:"status"`    // opening | closing
		Time      string `json:"time"`      // ISO 8601 with a numeric offset
		URL       string `json:"url"`       // as requested, with port and query
		NewURL    string `json:"new_url"`   // closing only: the URL after an earlier new_url
	} `json:"request"`
}

// Decode parses and checks an admission body. Every error wraps ErrMalformed and never contains
// the URL (which may carry a token).
func Decode(body []byte) (*Admission, error) {
	a := new(Admission)
	if err := a.decode(body); err != nil {
		return nil, err
	}
	return a, nil
}

// decode is Decode into a (zero), which the handler keeps on its stack: decodeSlow has its own
// admission for encoding/json, which makes it escape.
func (a *Admission) decode(body []byte) error {
	if !a.decodeFast(body) {
		s, err := decodeSlow(body)
		if err != nil {
			return err
		}
		*a = *s
	}
	switch a.Request.Direction {
	case "incoming", "outgoing":
	default:
		return fmt.Errorf("%w: request.direction %q (want incoming or outgoing)", ErrMalformed, hookio.Truncate(a.Request.Direction))
	}
	switch a.Request.Status {
	case "opening", "closing":
	default:
		return fmt.Errorf("%w: request.status %q (want opening or closing)", ErrMalformed, hookio.Truncate(a.Request.Status))
	}
	if a.Request.URL == "" {
		return fmt.Errorf("%w: request.url is empty", ErrMalformed)
	}
	return nil
}

// decodeSlow decodes what decodeFast leaves to encoding/json.
func decodeSlow(body []byte) (*Admission, error) {
	var a Admission
	if err := hookio.DecodeJSON(body, &a, ErrMalformed); err != nil {
		return nil, err
	}
	return &a, nil
}

// The fields decodeFast reads, in its vals.
const (
	fAddress = iota
	fPort
	fRealIP
	fUserAgent
	fDirection
	fProtocol
	fStatus
	fTime
	fURL
	fNewURL
	numFields
)

// decodeFast reads OME's usual body (hookio.WalkJSON's subset, port a plain integer) into a (zero)
// without reflection; false means the caller must use encoding/json (FuzzDecodeFastMatchesJSON
// holds the two to the same result), and a is left as it was. The values alias body until the
// walk succeeds, then are copied out together; a itself stays where the caller put it.
func (a *Admission) decodeFast(body []byte) bool {
	var vals [numFields][]byte // the last value of each field (null leaves it, as encoding/json does)
	ok := hookio.WalkJSON(body, func(parent, key, val []byte, kind hookio.FastKind) bool {
		if parent == nil {
			switch string(key) {
			case "client", "request":
				return kind == hookio.FastObject || kind == hookio.FastNull
			}
			return !hookio.FoldsToAny(key, "client", "request")
		}
		f := -1
		switch string(parent) {
		case "client":
			switch string(key) {
			case "address":
				f = fAddress
			case "real_ip":
				f = fRealIP
			case "user_agent":
				f = fUserAgent
			case "port":
				switch kind {
				case hookio.FastUint:
					vals[fPort] = val
					return true
				case hookio.FastNull:
					return true
				}
				return false // a port in a string: encoding/json checks it is a number
			default:
				return !hookio.FoldsToAny(key, "address", "port", "real_ip", "user_agent")
			}
		case "request":
			switch string(key) {
			case "direction":
				f = fDirection
			case "protocol":
				f = fProtocol
			case "status":
				f = fStatus
			case "time":
				f = fTime
			case "url":
				f = fURL
			case "new_url":
				f = fNewURL
			default:
				return !hookio.FoldsToAny(key, "direction", "protocol", "status", "time", "url", "new_url")
			}
		default:
			return true // a member of an unknown object
		}
		switch kind {
		case hookio.FastString:
			vals[f] = val
		case hookio.FastNull: // encoding/json leaves the field as it was
		default:
			return false // a type encoding/json refuses: let it say so
		}
		return true
	})
	if !ok {
		return false
	}
	var str [numFields]string
	hookio.CopyStrings(str[:], vals[:])
	a.Client.Address, a.Client.Port, a.Client.RealIP, a.Client.UserAgent = str[fAddress], json.Number(str[fPort]), str[fRealIP], str[fUserAgent]
	a.Request.Direction, a.Request.Protocol, a.Request.Status = str[fDirection], str[fProtocol], str[fStatus]
	a.Request.Time, a.Request.URL, a.Request.NewURL = str[fTime], str[fURL], str[fNewURL]
	return true
}

// Action maps request.direction: incoming (a provider: RTMP, SRT, WebRTC/WHIP ingest) is publish,
// outgoing (a publisher: WebRTC, LLHLS, HLSv3, SRT, thumbnail playback) is read.
func (a *Admission) Action() authz.Action {
	if a.Request.Direction == "incoming" {
		return authz.ActionPublish
	}
	return authz.ActionRead
}

// Protocol maps OME's internal type name, compared case-insensitively, to gatehouse's lower-case
// vocabulary: LLHLS and HLSv3 (and HLS) are hls, RTSPPull is rtsp, LLDASH/DASH are dash; other
// names (rtmp, webrtc, srt, mpegts, ovt, thumbnail, ...) are lower-cased as they are.
func Protocol(name string) string {
	p := strings.TrimSpace(name)
	var buf [16]byte
	lower, ok := asciiLower(buf[:0], p) // usual names: lower-cased without allocating
	if !ok {
		lower = []byte(strings.ToLower(p))
	}
	switch string(lower) { // the known names: their constants
	case "llhls", "hlsv3", "hls", "tshls":
		return "hls"
	case "rtsppull", "rtsp":
		return "rtsp"
	case "lldash", "dash", "cmaf":
		return "dash"
	case "whip", "webrtc":
		return "webrtc"
	case "rtmp":
		return "rtmp"
	case "srt":
		return "srt"
	case "thumbnail":
		return "thumbnail"
	}
	return string(lower)
}

// Target is request.url split into what gatehouse needs.
type Target struct {
	Path   string   // app/stream: the stream OME publishes or plays
	Rest   string   // "/file" after app/stream (llhls.m3u8, abr, thumb.jpg, a playlist), or ""
	RawQ   string   // raw query, without '?' (a valid one: url.ParseQuery accepts it)
	URL    *url.URL // the parsed URL the path came from
	Nested bool     // the path came from an SRT streamid query parameter
}

// omeMatch is what OME's own URL grammar (ov::Url, src/base/ovlibrary/url.cpp) reads from a
// request.url. OME matches it with PCRE2, unanchored:
//
//	(?P<scheme>.*)://((?P<id>.+):(?P<password>.+)@)?(?P<host>(\[[0-9A-Za-z:.]+\]|[^:/?#]*))(:(?P<port>[0-9]+))?(?P<path>/([^?]+)?)?(\?(?P<qs>[^?]+)?(.+)?)?
//
// and takes app, stream and file from the path's first three segments, ignoring the rest.
// matchOMEURL reads it by hand with the same leftmost-first choices as that expression (the
// regexp cost more than the rest of the adapter); a fuzz test holds it to the expression.
type omeMatch struct {
	scheme   string
	userinfo bool // id:password@ matched (both non-empty); ParseTarget refuses it
	path     string
	qs       string
}

// matchOMEURL returns OME's reading of raw, or false where the expression does not match (no
// "://"). raw holds no control character (ParseTarget refuses them first): '.' in the
// expression matches every other character, and every delimiter is ASCII, so bytes suffice.
func matchOMEURL(raw string) (omeMatch, bool) {
	var m omeMatch
	i := lastSchemeSep(raw) // scheme is a greedy .*: up to the last "://"
	if i < 0 {
		return m, false
	}
	m.scheme = raw[:i]
	rest := raw[i+3:]
	// ((.+):(.+)@)? matches when some ':' after a first character has an '@' at least two
	// characters later; both .+ being greedy, the host starts after the last '@'.
	if at := strings.LastIndexByte(rest, '@'); at >= 3 && strings.IndexByte(rest[1:at-1], ':') >= 0 {
		m.userinfo, rest = true, rest[at+1:]
	}
	pos := hostEnd(rest)
	if pos+1 < len(rest) && rest[pos] == ':' && isDigit(rest[pos+1]) { // (:([0-9]+))?
		pos += 2
		for pos < len(rest) && isDigit(rest[pos]) {
			pos++
		}
	}
	if pos < len(rest) && rest[pos] == '/' { // (/([^?]+)?)?
		end := strings.IndexByte(rest[pos:], '?')
		if end < 0 {
			end = len(rest) - pos
		}
		m.path, pos = rest[pos:pos+end], pos+end
	}
	if pos < len(rest) && rest[pos] == '?' { // (\?([^?]+)?(.+)?)?
		qs := rest[pos+1:]
		if end := strings.IndexByte(qs, '?'); end >= 0 {
			qs = qs[:end]
		}
		m.qs = qs
	}
	return m, true
}

// lastSchemeSep is strings.LastIndex(raw, "://"), by its ':' (a cheaper search than a
// three-byte pattern).
func lastSchemeSep(raw string) int {
	for end := len(raw); ; {
		i := strings.LastIndexByte(raw[:end], ':')
		if i < 0 || strings.HasPrefix(raw[i:], "://") {
			return i
		}
		end = i
	}
}

// hostEnd is where (\[[0-9A-Za-z:.]+\]|[^:/?#]*) ends at the start of s: the bracketed form
// when it matches (the first alternative), else the run of characters other than ":/?#".
func hostEnd(s string) int {
	if len(s) > 0 && s[0] == '[' {
		j := 1
		for j < len(s) && (isDigit(s[j]) || 'a' <= s[j]|0x20 && s[j]|0x20 <= 'z' || s[j] == ':' || s[j] == '.') {
			j++
		}
		if j > 1 && j < len(s) && s[j] == ']' {
			return j + 1
		}
	}
	if j := strings.IndexAny(s, ":/?#"); j >= 0 {
		return j
	}
	return len(s)
}

// asciiLower appends s lower-cased to b if s is ASCII and fits b's capacity.
func asciiLower(b []byte, s string) ([]byte, bool) {
	if len(s) > cap(b) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c |= 0x20
		}
		b = append(b, c)
	}
	return b, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// ParseTarget splits the request.url of an opening or closing for protocol (OME's type name) into
// the stream that OME will publish or play and what follows it. The host (OME's vhost domain)
// and port are dropped.
//
// The path decided is exactly OME's stream: the URL is read with OME's own grammar, and it is
// refused (ErrBadURL) when Go's URL parser reads it differently. That happens with a second
// "://", an "@" after the host, a '#', a second '?', or percent-encoding in the path; OME would
// take another app/stream than the one in plain sight. The path is /app/stream[/file]: file is
// the playlist or file name of a playback URL (llhls.m3u8, abr.m3u8, abr, thumb.jpg,
// ts:playlist.m3u8), which OME serves from app/stream. RTMP is stricter: OME builds that URL
// from the client's tcUrl and the publish name, and /app/a/b may be stream "a/b" (a name with a
// slash) or stream "a" (a longer tcUrl), so an RTMP URL must be exactly /app/stream. A longer
// path, or any empty, "." or ".." segment (authz.CheckPath), is refused rather than truncated.
// A URL with fewer than two segments whose query has one streamid (older OME's SRT form) is read
// through that inner URL under the same rules. Errors never contain the URL.
func ParseTarget(raw, protocol string) (*Target, error) {
	var t target
	if err := t.parse(raw, Protocol(protocol) == "rtmp"); err != nil {
		return nil, err
	}
	u := t.url
	return &Target{Path: t.path, Rest: t.rest, RawQ: t.rawQ, URL: &u, Nested: t.nested}, nil
}

// target is a Target holding its URL by value, so that the handler keeps both on its stack.
type target struct {
	path, rest, rawQ string
	url              url.URL
	nested           bool
}

// parse is ParseTarget into t for a protocol that Protocol maps to rtmp or not.
func (t *target) parse(raw string, rtmp bool) error {
	found, err := t.parse1(raw, rtmp)
	if err == nil && !found { // fewer than two segments: older OME's SRT streamid form
		outer, perr := url.Parse(raw)
		if perr != nil {
			return fmt.Errorf("%w: not a URL", ErrBadURL)
		}
		q, qerr := url.ParseQuery(outer.RawQuery)
		if qerr != nil {
			return fmt.Errorf("%w: malformed query", ErrBadURL)
		}
		if sid := q["streamid"]; len(sid) != 1 || sid[0] == "" {
			return fmt.Errorf("%w: path is not /app/stream", ErrBadURL)
		}
		if found, err = t.parse1(q.Get("streamid"), rtmp); err == nil && !found {
			return fmt.Errorf("%w: streamid path is not /app/stream", ErrBadURL)
		}
		t.nested = err == nil
	}
	return err
}

// parse1 is parse for one URL; false, nil means the path has fewer than two segments.
func (t *target) parse1(raw string, rtmp bool) (bool, error) {
	if !cleanURL(raw) {
		return false, fmt.Errorf("%w: invalid UTF-8 or a control character", ErrBadURL)
	}
	m, ok := matchOMEURL(raw)
	u := &t.url
	var err error
	if !parseURLFast(raw, u) {
		var pu *url.URL
		if pu, err = url.Parse(raw); err == nil {
			*u = *pu
		}
	}
	if !ok || err != nil {
		return false, fmt.Errorf("%w: not a URL", ErrBadURL)
	}
	if !strings.EqualFold(m.scheme, u.Scheme) || m.userinfo || u.User != nil ||
		u.Opaque != "" || u.Fragment != "" || strings.Contains(raw, "#") ||
		m.qs != u.RawQuery || m.path != u.EscapedPath() || strings.Contains(m.path, "%") {
		return false, fmt.Errorf("%w: OME would read another stream from this url", ErrBadURL)
	}
	if !creds.ValidQuery(u.RawQuery) {
		return false, fmt.Errorf("%w: malformed query", ErrBadURL)
	}
	p := strings.TrimPrefix(u.Path, "/")
	n := strings.Count(p, "/") + 1 // segments
	if n < 2 {
		return false, nil
	}
	max := 3 // app/stream/file
	if rtmp {
		max = 2
	}
	if n > max {
		return false, fmt.Errorf("%w: path has %d segments, at most %d for this protocol", ErrBadURL, n, max)
	}
	if err := authz.CheckPath(p); err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	t.path, t.rest, t.rawQ = p, "", u.RawQuery
	if n == 3 {
		i := strings.LastIndexByte(p, '/')
		t.path, t.rest = p[:i], p[i:]
	}
	return true, nil
}

// cleanURL reports whether raw is valid UTF-8 without a control character (C0 or DEL): every
// multi-byte rune is above them, so only bytes need checking once the string is valid.
func cleanURL(raw string) bool {
	ascii := true
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c-0x20 < 0x5f: // printable ASCII, the usual byte: one comparison
		case c < 0x20 || c == 0x7f:
			return false
		default:
			ascii = false
		}
	}
	return ascii || utf8.ValidString(raw)
}

// parseURLFast sets *u to what url.Parse returns for the usual request.url,
// scheme://host[:port][/path][?query] with a host and path of unreserved characters (path also
// '/' and ':') and a query without '#', '?' or control characters; false means the caller must
// use url.Parse (FuzzParseURLFastMatchesParse holds the two to the same result), and *u may have
// been changed.
func parseURLFast(raw string, u *url.URL) bool {
	i := 0
	for i < len(raw) && (isAlpha(raw[i]) || i > 0 && (isDigit(raw[i]) || raw[i] == '+' || raw[i] == '-' || raw[i] == '.')) {
		i++
	}
	if i == 0 || !strings.HasPrefix(raw[i:], "://") {
		return false
	}
	*u = url.URL{Scheme: raw[:i]}
	if hasUpper(u.Scheme) {
		u.Scheme = strings.ToLower(u.Scheme)
	}
	rest := raw[i+3:]
	j, colon := 0, -1
	for ; j < len(rest) && rest[j] != '/' && rest[j] != '?'; j++ {
		switch c := rest[j]; {
		case isUnreserved(c):
			if colon >= 0 && !isDigit(c) {
				return false // not a port
			}
		case c == ':' && colon < 0:
			colon = j
		default:
			return false
		}
	}
	if j == 0 || colon == 0 {
		return false
	}
	u.Host, rest = rest[:j], rest[j:]
	j = 0
	for ; j < len(rest) && rest[j] != '?'; j++ {
		if c := rest[j]; !isUnreserved(c) && c != '/' && c != ':' {
			return false
		}
	}
	u.Path, rest = rest[:j], rest[j:]
	if rest == "" {
		return true
	}
	q := rest[1:]
	for j := 0; j < len(q); j++ {
		if c := q[j]; c < 0x20 || c == 0x7f || c == '#' || c == '?' {
			return false
		}
	}
	u.RawQuery, u.ForceQuery = q, q == ""
	return true
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// isUnreserved: RFC 3986's unreserved characters, which url.Parse neither escapes nor refuses.
func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// SessionID derives a stable session id from client.address, client.port and request.url (OME
// sends no session id). The URL is hashed so that a token in its query never reaches the registry.
// The handler derives it once per request (a hash of the whole URL is most of an opening's own
// cost) and passes it on.
func (a *Admission) SessionID() string {
	var buf [256]byte // usual documents fit: no allocation for the hashed bytes
	b := append(buf[:0], a.Client.Address...)
	b = append(append(b, 0), a.Client.Port...)
	b = append(append(b, 0), a.Request.URL...)
	sum := sha256.Sum256(b)
	var id [len("ome-") + 2*16]byte
	copy(id[:], "ome-")
	hex.Encode(id[len("ome-"):], sum[:16])
	return string(id[:])
}

// reply is OME's response document. Lifetime is omitted on denials.
type reply struct {
	Allowed  bool    `json:"allowed"`
	Reason   string  `json:"reason,omitempty"`
	Lifetime *uint64 `json:"lifetime,omitempty"`
	NewURL   string  `json:"new_url,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, reply{Reason: "use POST"})
		return
	}
	body, refused := hookio.ReadBody(w, r, MaxBody)
	if refused != nil {
		writeJSON(w, refused.Status, reply{Reason: refused.Message})
		return
	}
	if h.secret != nil {
		if err := h.verify(body, r.Header.Get(SignatureHeader)); err != nil {
			h.log.Warn("ome: refused request", "error", err, "remote", r.RemoteAddr)
			writeJSON(w, http.StatusUnauthorized, reply{Reason: "invalid signature"})
			return
		}
	} else if !h.warned.Swap(true) {
		h.log.Warn("ome: accepting unsigned callbacks: anyone who reaches the hook can forge them; set hooks.ome.secret to OME's SecretKey",
			"remote", r.RemoteAddr)
	}
	var adm Admission // on the stack
	a := &adm
	if err := a.decode(body); err != nil {
		h.log.Warn("ome: refused request", "error", err, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusBadRequest, reply{Reason: err.Error()})
		return
	}
	if h.secret != nil {
		if err := h.fresh(a); err != nil {
			h.log.Warn("ome: refused request", "error", err, "remote", r.RemoteAddr)
			writeJSON(w, http.StatusUnauthorized, reply{Reason: "request.time too far from the current time (replayed, or clocks apart)"})
			return
		}
	}
	if a.Request.Status == "closing" {
		h.closing(a)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}\n")
		return
	}
	writeJSON(w, http.StatusOK, h.opening(r.Context(), a))
}

// fresh checks a signed request's request.time against the clock: the signature covers the body
// only, so a captured body would otherwise be good forever.
func (h *Handler) fresh(a *Admission) error {
	t, err := time.Parse(time.RFC3339Nano, a.Request.Time)
	if err != nil {
		return fmt.Errorf("%w: request.time %q is not an ISO 8601 time", ErrStale, hookio.Truncate(a.Request.Time))
	}
	if d := h.now().Sub(t); d > h.maxSkew || d < -h.maxSkew {
		return fmt.Errorf("%w: %s off (at most %s)", ErrStale, d.Round(time.Second), h.maxSkew)
	}
	return nil
}

func (h *Handler) opening(ctx context.Context, a *Admission) reply {
	proto := Protocol(a.Request.Protocol)
	var t target // on the stack
	if err := t.parse(a.Request.URL, proto == "rtmp"); err != nil {
		h.log.Warn("ome: denied", "error", err, "protocol", a.Request.Protocol)
		return reply{Reason: "stream url must be scheme://host[:port]/app/stream[/file]"}
	}
	req := &authz.Request{
		Action:    a.Action(),
		Path:      t.path,
		Protocol:  proto,
		IP:        h.clientIP(a),
		Query:     t.rawQ,
		ID:        a.SessionID(), // once per request: record and the re-check table reuse it
		UserAgent: a.Client.UserAgent,
		Source:    Source,
		CanRename: !t.nested, // new_url cannot rewrite an SRT streamid
		CanEndAt:  true,      // lifetime
	}
	c, err := creds.FromRawQuery(t.rawQ, h.tokenParams...)
	if err != nil {
		return reply{Reason: "repeated credential parameter"}
	}
	c.Apply(req)

	d := h.auth.Authorize(ctx, req)
	if !d.Allowed() {
		return reply{Reason: reason(d)}
	}
	out := reply{Allowed: true, Reason: reason(d)}
	now := h.now()
	var ms uint64 // 0 = unlimited
	if ttl, ok := d.TTL(now); ok {
		// The engine refused a grant already expired. Round up, and never below 1 ms: 0 is
		// what OME reads as unlimited.
		ms = uint64(max(1, min(math.Ceil(float64(ttl)/float64(time.Millisecond)), float64(math.MaxInt64))))
	}
	out.Lifetime = &ms

	path := t.path
	if d.Rename != "" && d.Rename != t.path {
		np, ok := renamed(t.path, d.Rename)
		if !ok {
			// Fail closed: publishing under the presented (secret) name would expose it.
			// Log the public target only: the presented path is the secret key.
			h.log.Warn("ome: denied: rename cannot be expressed as new_url", "rename", d.Rename, "session", req.ID)
			return reply{Reason: "rename not supported for this url"}
		}
		nu := t.url
		nu.Path = "/" + np + t.rest
		nu.RawPath = ""
		out.NewURL = nu.String()
		path = np
	}
	var remote string
	if req.IP.IsValid() {
		remote = req.IP.String()
	}
	h.record(a, req.ID, path, d, req.Protocol, remote)
	if req.Action == authz.ActionPublish {
		s := live.Session{Source: Source, ID: req.ID, Path: path, Protocol: req.Protocol, Identity: d.Identity,
			KeyID: d.KeyID, KeyLabel: d.KeyLabel, Publish: true, Remote: remote}
		// OME allows one publisher per stream, and it loses closings: an earlier publisher of
		// this path has ended. Forget it, or a reload that denies it would have the Kicker
		// delete the stream by name, ending this (allowed) publisher.
		h.publishers.ForgetPath(path, s.ID)
		h.publishers.Add(s, req, d)
	}
	return out
}

// renamed turns Decision.Rename into an OME app/stream: "stream" keeps the app, "app/stream"
// replaces both. Anything else cannot be expressed (OME paths have exactly two segments).
func renamed(orig, rename string) (string, bool) {
	rename = strings.Trim(rename, "/")
	if authz.CheckPath(rename) != nil || strings.ContainsAny(rename, "?#%@") || strings.Contains(rename, "://") {
		return "", false
	}
	switch strings.Count(rename, "/") {
	case 0:
		app, _, _ := strings.Cut(orig, "/")
		return app + "/" + rename, true
	case 1:
		return rename, true
	}
	return "", false
}

func (h *Handler) closing(a *Admission) {
	raw := a.Request.NewURL // the URL after our new_url, so the path matches the opening event
	if raw == "" {
		raw = a.Request.URL
	}
	id := a.SessionID()
	if a.Action() == authz.ActionPublish {
		h.publishers.Forget(id)
	}
	proto := Protocol(a.Request.Protocol)
	var t target
	if err := t.parse(raw, proto == "rtmp"); err != nil {
		h.log.Warn("ome: closing ignored", "error", err)
		return
	}
	var remote string
	if ip := h.clientIP(a); ip.IsValid() {
		remote = ip.String()
	}
	h.record(a, id, t.path, authz.Decision{}, proto, remote)
}

// record reports an opening (d: the decision that admitted it) or a closing (d zero) of session
// id (a.SessionID()) from remote (the client address, or "").
func (h *Handler) record(a *Admission, id, path string, d authz.Decision, protocol, remote string) {
	if h.rec == nil {
		return
	}
	var typ live.EventType
	switch {
	case a.Request.Status == "opening" && a.Action() == authz.ActionPublish:
		typ = live.Published
	case a.Request.Status == "opening":
		typ = live.Joined
	case a.Action() == authz.ActionPublish:
		typ = live.Unpublished
	default:
		typ = live.Left
	}
	ev := live.Event{
		Type:     typ,
		Path:     path,
		Source:   Source,
		Session:  id,
		Identity: d.Identity,
		Protocol: protocol,
		KeyID:    d.KeyID,
		KeyLabel: d.KeyLabel,
		Remote:   remote,
	}
	if t, err := time.Parse(time.RFC3339Nano, a.Request.Time); err == nil {
		ev.Time = t // OME's own clock orders reordered callbacks better than arrival time
	}
	h.rec.Record(ev)
}

func (h *Handler) clientIP(a *Admission) netip.Addr {
	if h.trustRealIP {
		if ip, ok := hookio.ParseIP(a.Client.RealIP); ok {
			return ip
		}
	}
	ip, _ := hookio.ParseIP(a.Client.Address)
	return ip
}

func reason(d authz.Decision) string {
	if d.Message != "" {
		return d.Message
	}
	return d.Reason
}

func writeJSON(w http.ResponseWriter, status int, v reply) {
	o := new(replyOut) // one allocation for the header value and the usual reply
	o.ctype[0] = "application/json"
	w.Header()["Content-Type"] = o.ctype[:] // Header().Set, the key already canonical
	w.WriteHeader(status)
	_, _ = w.Write(v.appendJSON(o.body[:0]))
}

// replyOut holds what writeJSON hands to net/http: the Content-Type value and the encoded reply
// (a longer one grows into its own slice).
type replyOut struct {
	ctype [1]string
	body  [160]byte
}

// appendJSON appends json.Marshal(r) and a newline, without reflection (TestReplyJSONMatchesMarshal).
func (r reply) appendJSON(b []byte) []byte {
	b = strconv.AppendBool(append(b, `{"allowed":`...), r.Allowed)
	if r.Reason != "" {
		b = appendJSONString(append(b, `,"reason":`...), r.Reason)
	}
	if r.Lifetime != nil {
		b = strconv.AppendUint(append(b, `,"lifetime":`...), *r.Lifetime, 10)
	}
	if r.NewURL != "" {
		b = appendJSONString(append(b, `,"new_url":`...), r.NewURL)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as encoding/json writes it: printable ASCII other than the
// characters it escapes ("\\<>&) as it is, anything else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// Evicted returns how many running publishers a full re-check table has forgotten to make room
// for new ones.
func (h *Handler) Evicted() uint64 { return h.publishers.Evicted() }
