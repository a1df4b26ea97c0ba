package nginxrtmp

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"gatehouse/authz"
	"gatehouse/authz/creds"
	"gatehouse/authz/hookio"
)

// The values of the call field (hook-protocols.md §1.6, §1.10). All hooks may share one URL.
const (
	CallConnect       = "connect"
	CallPublish       = "publish"
	CallPlay          = "play"
	CallUpdatePublish = "update_publish"
	CallUpdatePlay    = "update_play"
	CallUpdate        = "update" // on_update for a session neither publishing nor playing
	CallPublishDone   = "publish_done"
	CallPlayDone      = "play_done"
	CallDone          = "done"
	CallRecordDone    = "record_done"
	CallDisconnect    = "disconnect"
	CallRecordStarted = "record_started" // sergey-dryabzhinsky fork only
	CallPlaylist      = "playlist"       // sergey-dryabzhinsky fork only
)

// maxField is nginx-rtmp's limit for app and name (NGX_RTMP_MAX_NAME - 1). Longer values
// cannot come from nginx-rtmp.
const maxField = 255

// hook is one decoded nginx-rtmp callback.
type hook struct {
	call     string
	app      string
	name     string
	clientID string
	flashver string
	addr     netip.Addr
	addrText string // addr as sent (a slice of the body): remote() formats it when a session is kept
	args     string // the client's own parameters, as sent, '&'-joined (credential keys included)
	creds    creds.Credentials
}

// Indexes of the parameters decode counts, in the order a repeated one is reported. Server keys
// (pCall to pModule): the fields nginx-rtmp (arut, Debian or the fork) writes itself; a client can
// append any of them to its stream name's query, so each may appear at most once, and they are
// not part of the client's args. Credential keys (pUser to pKey, creds.IsParam): client args
// carrying credentials; they stay in the args but may appear only once.
const (
	pCall = iota
	pApp
	pName
	pAddr
	pClientID
	pEpoch
	pFlashver
	pSwfURL
	pTcURL
	pPageURL
	pType
	pStart
	pDuration
	pReset
	pTime
	pTimestamp
	pRecorder
	pPath
	pBytesIn
	pBytesOut
	pModule
	pUser
	pPass
	pToken
	pJWT
	pKey
	nParams
)

// paramIndex returns k's index among the counted parameters, or -1 for a client's own parameter
// that is not a credential.
func paramIndex(k string) int {
	switch k {
	case "call":
		return pCall
	case "app":
		return pApp
	case "name":
		return pName
	case "addr":
		return pAddr
	case "clientid":
		return pClientID
	case "epoch":
		return pEpoch
	case "flashver":
		return pFlashver
	case "swfurl":
		return pSwfURL
	case "tcurl":
		return pTcURL
	case "pageurl":
		return pPageURL
	case "type":
		return pType
	case "start":
		return pStart
	case "duration":
		return pDuration
	case "reset":
		return pReset
	case "time":
		return pTime
	case "timestamp":
		return pTimestamp
	case "recorder":
		return pRecorder
	case "path":
		return pPath
	case "bytes_in":
		return pBytesIn
	case "bytes_out":
		return pBytesOut
	case "module":
		return pModule
	case "user":
		return pUser
	case "pass":
		return pPass
	case "token":
		return pToken
	case "jwt":
		return pJWT
	case "key":
		return pKey
	}
	return -1
}

// params holds what decode keeps of the counted parameters: how often each came (up to 3) and
// the decoded first value of those it reads, plus app's second value (arut's on_disconnect).
type params struct {
	n    [nParams]uint8
	v    [nParams]string
	app2 string
}

// get returns the first value of a credential parameter (creds.FromParams).
func (p *params) get(k string) string {
	if i := paramIndex(k); i >= pUser {
		return p.v[i]
	}
	return ""
}

// kept reports whether decode reads the value of parameter i (the others are only validated).
func kept(i int) bool {
	switch i {
	case pCall, pApp, pName, pAddr, pClientID, pFlashver:
		return true
	}
	return i >= pUser
}

// validEscapes reports whether url.QueryUnescape accepts s: every '%' starts a %XX escape.
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; {
		if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
			return false
		}
		j := strings.IndexByte(s[i+3:], '%')
		if j < 0 {
			break
		}
		i += 3 + j
	}
	return true
}

// queryUnescape is url.QueryUnescape, which returns s itself when it holds no '%' and no '+' (the
// usual key or value): only those are handed to it.
func queryUnescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// decode parses into h a callback's form-encoded parameters (a POST body or a GET query). It rejects a
// server key or credential key that appears twice (a client injecting call=, name=, app=, user=
// … through its stream name's query), a missing call, and invalid percent-encoding. Errors wrap
// ErrMalformed or ErrDuplicate and name keys, never values. It reads the parameters into a fixed
// table, not a map of slices: unescaped values and the client's args are substrings of raw
// unless they need rewriting. The caller's hook can live on its stack.
func (h *hook) decode(raw string) error {
	var (
		p params
		// The client's args: raw[argLo:argHi] while they are one run of raw, else built in b.
		argLo, argHi = -1, -1
		b            []byte
	)
	for i, off := 0, 0; off <= len(raw); i++ {
		pair := raw[off:]
		start := off
		if j := strings.IndexByte(pair, '&'); j >= 0 {
			pair = pair[:j]
			off += j + 1
		} else {
			off = len(raw) + 1
		}
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		// A key that is one of the names as it stands has no '%' or '+', so it unescapes to
		// itself: only the others need unescaping before they are looked up.
		idx := paramIndex(rawKey)
		if idx < 0 {
			k, err := queryUnescape(rawKey)
			if err != nil {
				return fmt.Errorf("%w: parameter %d has invalid percent-encoding", ErrMalformed, i+1)
			}
			idx = paramIndex(k)
		}
		v, valid := "", true
		if idx >= 0 && kept(idx) {
			var err error
			v, err = queryUnescape(rawVal)
			valid = err == nil
		} else {
			valid = validEscapes(rawVal)
		}
		if !valid {
			return fmt.Errorf("%w: value of parameter %d has invalid percent-encoding", ErrMalformed, i+1)
		}
		if idx >= 0 {
			switch p.n[idx] {
			case 0:
				p.v[idx] = v
			case 1:
				if idx == pApp {
					p.app2 = v
				}
			}
			if p.n[idx] < 3 {
				p.n[idx]++
			}
		}
		if idx >= 0 && idx < pUser {
			continue // a server key: not the client's
		}
		switch {
		case argLo < 0:
			argLo, argHi = start, start+len(pair)
		case b == nil && argHi+1 == start: // the next pair of the same run
			argHi = start + len(pair)
		default:
			if b == nil {
				b = append(make([]byte, 0, len(raw)), raw[argLo:argHi]...)
			}
			b = append(append(b, '&'), pair...)
		}
	}
	switch {
	case p.n[pCall] == 0 || p.v[pCall] == "":
		return fmt.Errorf("%w: no call parameter", ErrMalformed)
	case p.n[pCall] > 1:
		return fmt.Errorf("%w %q", ErrDuplicate, "call")
	}
	*h = hook{call: p.v[pCall]}
	for i, n := range p.n {
		if n < 2 {
			continue
		}
		// arut's on_disconnect sends app twice (session prefix and event part) with one value.
		if i == pApp && h.call == CallDisconnect && n == 2 && p.v[pApp] == p.app2 {
			continue
		}
		return fmt.Errorf("%w %q", ErrDuplicate, paramName(i))
	}
	h.app = strings.Trim(p.v[pApp], "/")
	h.name = p.v[pName]
	h.clientID = p.v[pClientID]
	h.flashver = p.v[pFlashver]
	h.addr, _ = hookio.ParseIP(p.v[pAddr])
	h.addrText = p.v[pAddr]
	switch {
	case b != nil:
		h.args = string(b)
	case argLo >= 0:
		h.args = raw[argLo:argHi]
	}
	if len(h.app) > maxField || len(h.name) > maxField {
		return fmt.Errorf("%w: app or name longer than %d bytes", ErrMalformed, maxField)
	}
	h.creds = creds.FromParams(p.get) // duplicates were rejected above
	return nil
}

// remote returns the client address as the live registry keeps it: addr.String(), "" when addr
// is not valid, in bytes of its own (remoteText). Only calls that keep a session need it.
func (h *hook) remote() string { return remoteText(h.addrText, h.addr) }

// remoteText returns a.String(), or "" when a is not valid, for the a that hookio.ParseIP read
// from s. nginx-rtmp's addr is a dotted-decimal IPv4 address, which netip.ParseAddr accepts
// only in canonical form (no leading zeros, four fields), so it is its own String: a copy of s
// is returned instead of formatting a (FuzzRemoteText). A copy, never s itself: s is a slice of
// the callback body, credentials included, and the address is kept for the session's life in
// the live registry (TestRemoteAndClientIDDoNotKeepTheBody).
func remoteText(s string, a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	if !a.Is4() {
		return a.String()
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return a.String() // e.g. ::ffff:1.2.3.4, which ParseIP unmaps
		}
	}
	return strings.Clone(s)
}

// paramName is the name of parameter index i (the inverse of paramIndex).
func paramName(i int) string {
	return [nParams]string{"call", "app", "name", "addr", "clientid", "epoch", "flashver", "swfurl", "tcurl",
		"pageurl", "type", "start", "duration", "reset", "time", "timestamp", "recorder", "path", "bytes_in",
		"bytes_out", "module", "user", "pass", "token", "jwt", "key"}[i]
}

// callOf returns, for the log line of a callback decode refused, the value of its call
// parameter when it has exactly one, or "" (none, several, or not decodable).
func callOf(raw string) string {
	call, n := "", 0
	for _, pair := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if k != "call" {
			continue
		}
		if n++; n > 1 {
			return ""
		}
		call, _ = url.QueryUnescape(v)
	}
	return call
}

// truncated reports whether the stream name and its query (name?args) reached nginx-rtmp's
// limit: nginx-rtmp reads them as one string of at most maxField bytes and silently drops the
// rest, so a credential in them (a JWT is longer) arrives cut. A value exactly at the limit is
// taken as cut; one cut right at its '?' loses the '?' too.
func (h *hook) truncated() bool {
	n := len(h.name)
	if h.args != "" {
		n += 1 + len(h.args)
	}
	return n >= maxField || (n == maxField-1 && h.args == "")
}

// path returns the stream path app/name, or an error for a missing app or name or a path that
// fails authz.CheckPath (control characters, empty, "." or ".." segments).
func (h *hook) path() (string, error) {
	name := strings.Trim(h.name, "/")
	switch {
	case h.app == "":
		return "", fmt.Errorf("%w: no app parameter", ErrMalformed)
	case name == "":
		return "", fmt.Errorf("%w: no stream name", ErrMalformed)
	}
	p := h.app + "/" + name
	if err := authz.CheckPath(p); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return p, nil
}

// request builds the engine's question for this callback.
func (h *hook) request(a authz.Action, path string) *authz.Request {
	req := &authz.Request{
		Action:    a,
		Path:      path,
		Protocol:  "rtmp",
		IP:        h.addr,
		Query:     h.args,
		ID:        h.clientID,
		UserAgent: h.flashver,
		Source:    Source,
		CanRename: true, // a 302 with the new name (within the app: renameTarget)
		CanEndAt:  true, // a 403 to the next on_update
	}
	h.creds.Apply(req)
	return req
}
