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

// keyKind classifies a parameter name. server: a field nginx-rtmp (arut, Debian or the fork)
// writes itself; a client can append any of them to its stream name's query, so each may appear
// at most once, and they are not part of the client's args. cred: a client arg carrying
// credentials (creds.IsParam); it stays in the args but may appear only once.
func keyKind(k string) (server, cred bool) {
	switch k {
	case "call", "app", "name", "addr", "clientid", "epoch",
		"flashver", "swfurl", "tcurl", "pageurl",
		"type", "start", "duration", "reset", "time", "timestamp",
		"recorder", "path", "bytes_in", "bytes_out", "module":
		return true, false
	}
	return false, creds.IsParam(k)
}

// hook is one decoded nginx-rtmp callback.
type hook struct {
	call     string
	app      string
	name     string
	clientID string
	flashver string
	addr     netip.Addr
	args     string // the client's own parameters, as sent, '&'-joined (credential keys included)
	creds    creds.Credentials
}

// decode parses a callback's form-encoded parameters (a POST body or a GET query). It rejects a
// server key or credential key that appears twice (a client injecting call=, name=, app=, user=
// … through its stream name's query), a missing call, and invalid percent-encoding. Errors wrap
// ErrMalformed or ErrDuplicate and name keys, never values.
func decode(raw string) (*hook, error) {
	var (
		seen = make(map[string][]string, 16)
		args []string
	)
	for i, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, fmt.Errorf("%w: parameter %d has invalid percent-encoding", ErrMalformed, i+1)
		}
		v, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, fmt.Errorf("%w: value of parameter %d has invalid percent-encoding", ErrMalformed, i+1)
		}
		server, cred := keyKind(k)
		if server || cred {
			seen[k] = append(seen[k], v)
		}
		if !server {
			args = append(args, pair)
		}
	}
	calls := seen["call"]
	switch {
	case len(calls) == 0 || calls[0] == "":
		return nil, fmt.Errorf("%w: no call parameter", ErrMalformed)
	case len(calls) > 1:
		return nil, fmt.Errorf("%w %q", ErrDuplicate, "call")
	}
	h := &hook{call: calls[0]}
	for k, vs := range seen {
		if len(vs) < 2 {
			continue
		}
		// arut's on_disconnect sends app twice (session prefix and event part) with one value.
		if k == "app" && h.call == CallDisconnect && len(vs) == 2 && vs[0] == vs[1] {
			continue
		}
		return nil, fmt.Errorf("%w %q", ErrDuplicate, k)
	}
	first := func(k string) string {
		if vs := seen[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	h.app = strings.Trim(first("app"), "/")
	h.name = first("name")
	h.clientID = first("clientid")
	h.flashver = first("flashver")
	h.addr, _ = hookio.ParseIP(first("addr"))
	h.args = strings.Join(args, "&")
	if len(h.app) > maxField || len(h.name) > maxField {
		return nil, fmt.Errorf("%w: app or name longer than %d bytes", ErrMalformed, maxField)
	}
	q := make(url.Values, 5)
	for k, vs := range seen {
		if _, cred := keyKind(k); cred {
			q[k] = vs
		}
	}
	c, err := creds.FromQuery(q) // duplicates were rejected above
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h.creds = c
	return h, nil
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
