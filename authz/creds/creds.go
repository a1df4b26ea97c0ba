// Package creds extracts client credentials the way streaming servers and their clients send them:
// an Authorization header (Basic, Bearer, and OBS's "Bearer user:pass"), the protocol's own
// user/password fields, and query parameters. It is the one place that knows credential parameter
// names (user, pass, token, jwt, key, and an adapter's extra token names such as access_key) and
// that sorts what it finds into the kinds a backend verifies: a password pair, a token (with its
// origin) and a stream key. Every adapter and the SFU use it, so all agree on the rules.
package creds

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"gatehouse/authz"
)

// ErrDuplicate is returned when a credential parameter appears more than once in a query: a client
// could otherwise smuggle a second value past a proxy that reads the first.
var ErrDuplicate = errors.New("creds: repeated credential parameter")

// Credentials is what a client presented, sorted by kind: a password pair (User, Pass), a token
// (Token, from TokenFrom; TokenParam names its query parameter) and a stream key parameter (Key).
type Credentials struct {
	User, Pass, Token string
	TokenFrom         authz.Origin
	TokenParam        string
	Key               string
}

// Empty reports whether nothing was presented.
func (c Credentials) Empty() bool {
	return c.User == "" && c.Pass == "" && c.Token == "" && c.Key == ""
}

// Apply copies the credentials into req.
func (c Credentials) Apply(req *authz.Request) {
	req.User, req.Pass, req.Token = c.User, c.Pass, c.Token
	req.TokenFrom, req.TokenParam, req.Key = c.TokenFrom, c.TokenParam, c.Key
}

// Or fills what c lacks from o: the password pair when c has neither user nor password, the token
// when c has none, the stream key when c has none.
func (c Credentials) Or(o Credentials) Credentials {
	if c.User == "" && c.Pass == "" {
		c.User, c.Pass = o.User, o.Pass
	}
	if c.Token == "" {
		c.Token, c.TokenFrom, c.TokenParam = o.Token, o.TokenFrom, o.TokenParam
	}
	if c.Key == "" {
		c.Key = o.Key
	}
	return c
}

// JWTShaped reports whether s looks like a compact JWS: three segments, a JSON header (base64url
// of "{"). It looks at the shape only, never at a user name, so classifying costs the same for
// every client.
func JWTShaped(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// KeyPrefix starts every managed stream key (backends/keys.SecretPrefix; a test there keeps the
// two equal). Secret scanners match it too.
const KeyPrefix = "ghk_"

// KeyShaped reports whether s looks like a managed stream key: it starts with KeyPrefix. Like
// JWTShaped it looks at the shape only (the keys method checks length and checksum).
func KeyShaped(s string) bool { return strings.HasPrefix(s, KeyPrefix) }

// FromUserInfo sorts a user/password pair that came from origin. A password shaped like a JWT is
// also a token (how MediaMTX's docs tell RTSP, RTMP and SRT clients to send one), and one shaped
// like a stream key (KeyShaped: OBS's SRT or RTSP password field) is also a stream key: it is
// offered to the token or key methods, the password methods that hash (internal users) pass on
// it (Request.HasPassword), and a method that forwards the pair (an external HTTP service, as
// MediaMTX does) still receives the password as sent. The user name is kept.
func FromUserInfo(user, pass string, origin authz.Origin) Credentials {
	switch {
	case JWTShaped(pass):
		return Credentials{User: user, Pass: pass, Token: pass, TokenFrom: origin}
	case KeyShaped(pass):
		return Credentials{User: user, Pass: pass, Key: pass}
	}
	return Credentials{User: user, Pass: pass}
}

// FromToken sorts a bearer token that came from origin: one shaped like a stream key (OBS's WHIP
// "Bearer Token" field holding a stream key) is a stream key, anything else a token.
func FromToken(tok string, origin authz.Origin) Credentials {
	switch {
	case tok == "":
		return Credentials{}
	case KeyShaped(tok):
		return Credentials{Key: tok}
	}
	return Credentials{Token: tok, TokenFrom: origin}
}

// FromAuthorization parses an Authorization header value. "Basic b64(user:pass)" gives user and
// password; "Bearer x" gives a token, except that "Bearer user:pass" with exactly one colon gives
// user and password (OBS's WHIP convention, as MediaMTX). Anything else gives nothing. A password
// shaped like a JWT is a token (FromUserInfo), a bearer token or password shaped like a stream
// key is a stream key (FromToken, FromUserInfo); every token found has origin OriginHeader.
func FromAuthorization(h string) Credentials {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return Credentials{}
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "bearer":
		if strings.Count(rest, ":") == 1 {
			u, p, _ := strings.Cut(rest, ":")
			return FromUserInfo(u, p, authz.OriginHeader)
		}
		return FromToken(rest, authz.OriginHeader)
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Credentials{}
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Credentials{}
		}
		return FromUserInfo(u, p, authz.OriginHeader)
	}
	return Credentials{}
}

// Names of the query parameters read by FromQuery, by kind.
const (
	paramUser  = "user"
	paramPass  = "pass"
	paramToken = "token"
	paramJWT   = "jwt" // MediaMTX's legacy name
	paramKey   = "key" // a stream key on its public path: rtmp://host/live/alice?key=<secret>
)

// IsParam reports whether k is one of the credential parameter names FromQuery reads (besides an
// adapter's extra token names). Adapters use it to refuse a repeated one before anything else.
func IsParam(k string) bool {
	switch k {
	case paramUser, paramPass, paramToken, paramJWT, paramKey:
		return true
	}
	return false
}

// FromQuery reads user and pass (a pair), token (or its legacy name jwt, then each of tokenParams
// in order, e.g. OvenMediaEngine's access_key) and key from q; every token found has origin
// OriginQuery and TokenParam its name. A parameter given more than once is ErrDuplicate (and
// nothing is returned).
func FromQuery(q url.Values, tokenParams ...string) (Credentials, error) {
	for k, vs := range q {
		if len(vs) > 1 && (IsParam(k) || slices.Contains(tokenParams, k)) {
			return Credentials{}, fmt.Errorf("%w %q", ErrDuplicate, k)
		}
	}
	return FromParams(q.Get, tokenParams...), nil
}

// FromParams sorts query parameters as FromQuery does, for a caller that has already refused a
// repeated one: get returns a parameter's value ("" when absent). It lets an adapter with its own
// parameter decoder skip building a url.Values.
func FromParams(get func(k string) string, tokenParams ...string) Credentials {
	c := Credentials{Key: get(paramKey)}
	if v := get(paramToken); v != "" {
		c.Token, c.TokenFrom, c.TokenParam = v, authz.OriginQuery, paramToken
	} else if v := get(paramJWT); v != "" {
		c.Token, c.TokenFrom, c.TokenParam = v, authz.OriginQuery, paramJWT
	} else {
		for _, k := range tokenParams {
			if v := get(k); v != "" {
				c.Token, c.TokenFrom, c.TokenParam = v, authz.OriginQuery, k
				break
			}
		}
	}
	if u, p := get(paramUser), get(paramPass); u != "" || p != "" {
		pair := FromUserInfo(u, p, authz.OriginQuery)
		c.User, c.Pass = pair.User, pair.Pass
		if pair.Token != "" && c.Token == "" {
			c.Token, c.TokenFrom, c.TokenParam = pair.Token, authz.OriginQuery, paramPass
		} else if pair.Token != "" {
			c.Pass = pair.Token // a token is already there: keep the password as it came
		}
		if pair.Key != "" && c.Key == "" {
			c.Key = pair.Key
		} else if pair.Key != "" {
			c.Pass = pair.Key // a key is already there: keep the password as it came
		}
	}
	return c
}

// ParseQuery parses a raw query (with or without a leading '?') and calls FromQuery.
func ParseQuery(raw string, tokenParams ...string) (url.Values, Credentials, error) {
	q, err := url.ParseQuery(strings.TrimPrefix(raw, "?"))
	if err != nil {
		return nil, Credentials{}, fmt.Errorf("creds: malformed query: %w", err)
	}
	c, err := FromQuery(q, tokenParams...)
	return q, c, err
}

// FromRequest reads the Authorization header, then fills what it lacks from the query (as Or).
func FromRequest(header string, q url.Values, tokenParams ...string) (Credentials, error) {
	c := FromAuthorization(header)
	qc, err := FromQuery(q, tokenParams...)
	if err != nil {
		return Credentials{}, err
	}
	return c.Or(qc), nil
}

// maxFastParams is how many parameters FromRawQuery reads itself; a longer query goes through
// ParseQuery (whose limit, 10000 unless GODEBUG urlmaxqueryparams lowers it, then applies).
const maxFastParams = 16

// FromRawQuery returns what ParseQuery returns for raw, without its url.Values: the same
// credentials, and an error exactly when ParseQuery has one (with the same text). A usual query
// (at most 16 parameters, no credential parameter repeated, valid percent-encoding, no ';') is
// read in one pass that only unescapes what needs it; anything else is left to ParseQuery.
func FromRawQuery(raw string, tokenParams ...string) (Credentials, error) {
	if c, ok := fromRawQueryFast(strings.TrimPrefix(raw, "?"), tokenParams); ok {
		return c, nil
	}
	_, c, err := ParseQuery(raw, tokenParams...)
	return c, err
}

// fromRawQueryFast is FromRawQuery's one pass; false means ParseQuery must decide.
func fromRawQueryFast(q string, tokenParams []string) (Credentials, bool) {
	if strings.Count(q, "&") >= maxFastParams {
		return Credentials{}, false
	}
	// The first value of each credential parameter (user, pass, token, jwt, key, tokenParams...).
	var vals [5]string
	var seen [5]bool
	var extra []string // tokenParams' values, allocated only when one is present
	var extraSeen uint64
	if len(tokenParams) > 64 {
		return Credentials{}, false
	}
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if strings.IndexByte(pair, ';') >= 0 {
			return Credentials{}, false // url.ParseQuery: invalid semicolon separator
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.IndexByte(k, '%') >= 0 || strings.IndexByte(k, '+') >= 0 {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				return Credentials{}, false
			}
		}
		slot := -1
		switch k {
		case paramUser:
			slot = 0
		case paramPass:
			slot = 1
		case paramToken:
			slot = 2
		case paramJWT:
			slot = 3
		case paramKey:
			slot = 4
		}
		extraIdx := -1
		if slot < 0 {
			extraIdx = slices.Index(tokenParams, k)
		}
		if slot < 0 && extraIdx < 0 {
			if !validEscapes(v) {
				return Credentials{}, false
			}
			continue
		}
		if strings.IndexByte(v, '%') >= 0 || strings.IndexByte(v, '+') >= 0 {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				return Credentials{}, false
			}
		}
		if slot >= 0 {
			if seen[slot] {
				return Credentials{}, false // repeated: ParseQuery names it
			}
			seen[slot], vals[slot] = true, v
			continue
		}
		if extraSeen&(1<<extraIdx) != 0 {
			return Credentials{}, false
		}
		extraSeen |= 1 << extraIdx
		if extra == nil {
			extra = make([]string, len(tokenParams))
		}
		extra[extraIdx] = v
	}
	get := func(k string) string {
		switch k {
		case paramUser:
			return vals[0]
		case paramPass:
			return vals[1]
		case paramToken:
			return vals[2]
		case paramJWT:
			return vals[3]
		case paramKey:
			return vals[4]
		}
		if i := slices.Index(tokenParams, k); i >= 0 && extra != nil {
			return extra[i]
		}
		return ""
	}
	return FromParams(get, tokenParams...), true
}

// ValidQuery reports whether url.ParseQuery accepts q. A usual query (fewer than 16 '&', no ';',
// every '%' starting an escape) is checked in one pass; url.ParseQuery decides the rest.
func ValidQuery(q string) bool {
	if strings.Count(q, "&") < 16 && strings.IndexByte(q, ';') < 0 {
		return validEscapes(q)
	}
	_, err := url.ParseQuery(q)
	return err == nil
}

// validEscapes reports whether url.QueryUnescape accepts s: every '%' starts a %XX escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
