// Package creds extracts client credentials the way streaming servers and their clients send them:
// an Authorization header (Basic, Bearer, and OBS's "Bearer user:pass"), and query parameters
// (user, pass, token, jwt). Every adapter and the SFU use it, so all agree on the rules.
package creds

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrDuplicate is returned when a credential parameter appears more than once in a query: a client
// could otherwise smuggle a second value past a proxy that reads the first.
var ErrDuplicate = errors.New("creds: repeated credential parameter")

// Credentials is what a client presented. Token is a bearer token or JWT.
type Credentials struct {
	User, Pass, Token string
}

// Empty reports whether nothing was presented.
func (c Credentials) Empty() bool { return c.User == "" && c.Pass == "" && c.Token == "" }

// FromAuthorization parses an Authorization header value. "Basic b64(user:pass)" gives user and
// password; "Bearer x" gives a token, except that "Bearer user:pass" with exactly one colon gives
// user and password (OBS's WHIP convention, as MediaMTX). Anything else gives nothing.
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
			return Credentials{User: u, Pass: p}
		}
		return Credentials{Token: rest}
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Credentials{}
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Credentials{}
		}
		return Credentials{User: u, Pass: p}
	}
	return Credentials{}
}

// Names of the query parameters read by FromQuery.
var queryNames = [...]string{"user", "pass", "token", "jwt"}

// FromQuery reads user, pass and token (or its legacy name jwt) from q, then, while no token was
// found, each of tokenParams in order (e.g. OvenMediaEngine's access_key). A parameter given more
// than once is ErrDuplicate (and nothing is returned).
func FromQuery(q url.Values, tokenParams ...string) (Credentials, error) {
	for _, names := range [][]string{queryNames[:], tokenParams} {
		for _, k := range names {
			if len(q[k]) > 1 {
				return Credentials{}, fmt.Errorf("%w %q", ErrDuplicate, k)
			}
		}
	}
	c := Credentials{User: q.Get("user"), Pass: q.Get("pass"), Token: q.Get("token")}
	if c.Token == "" {
		c.Token = q.Get("jwt")
	}
	for _, k := range tokenParams {
		if c.Token != "" {
			break
		}
		c.Token = q.Get(k)
	}
	return c, nil
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
