package web

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
)

// PathPlaceholder is where a PlayURL inserts the stream path.
const PathPlaceholder = "{path}"

// PlayURL is where a browser plays a stream that gatehouse cannot play itself (one that reaches
// nginx-rtmp, MediaMTX, OvenMediaEngine or SRS rather than gatehouse's WebRTC server): an http or
// https URL holding {path} exactly once, in its path or its query, such as
// http://cdn.example:8080/hls/{path}.m3u8. The zero value is no URL.
//
// Expand inserts the path escaped, so a path can never change the URL's host, add a query
// parameter or end the URL: in the URL's path each segment is percent-encoded (the slashes
// between them kept); in the query the whole path is, slashes included. Only the unreserved
// characters A-Z a-z 0-9 - . _ ~ stay as they are. The grid's script (app.js, playURL) does the
// same; the browser test holds them to each other.
type PlayURL struct {
	tmpl  string
	query bool // {path} is in the query
}

// ParsePlayURL checks s (see PlayURL).
func ParsePlayURL(s string) (PlayURL, error) {
	i := strings.Index(s, PathPlaceholder)
	if i < 0 {
		return PlayURL{}, fmt.Errorf("a play URL needs %s where the stream path goes, such as http://cdn.example:8080/hls/%s.m3u8", PathPlaceholder, PathPlaceholder)
	}
	before, after := s[:i], s[i+len(PathPlaceholder):]
	if strings.Contains(after, PathPlaceholder) {
		return PlayURL{}, fmt.Errorf("a play URL holds %s once", PathPlaceholder)
	}
	if strings.ContainsAny(before+after, "{}") {
		return PlayURL{}, fmt.Errorf("a play URL knows only the placeholder %s", PathPlaceholder)
	}
	u, err := url.Parse(before + "p" + after)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return PlayURL{}, errors.New("a play URL must be an http or https URL with a host, such as http://cdn.example:8080/hls/{path}.m3u8")
	}
	if u.User != nil {
		return PlayURL{}, errors.New("a play URL is shown to every viewer: it may not hold a user name or password")
	}
	// {path} goes after the host: in the path (a "/" after scheme://host) or in the query,
	// never in the scheme, the host, the port or the fragment.
	rest, ok := strings.CutPrefix(strings.ToLower(before), u.Scheme+"://")
	switch {
	case !ok:
		return PlayURL{}, errors.New("a play URL must be an http or https URL with a host, such as http://cdn.example:8080/hls/{path}.m3u8")
	case strings.Contains(before, "#"):
		return PlayURL{}, fmt.Errorf("a play URL takes %s in its path or query, not in the fragment", PathPlaceholder)
	case !strings.ContainsAny(rest, "/?"):
		return PlayURL{}, fmt.Errorf("a play URL takes %s in its path or query, after the host, such as http://cdn.example:8080/hls/%s.m3u8", PathPlaceholder, PathPlaceholder)
	}
	return PlayURL{tmpl: s, query: strings.Contains(before, "?")}, nil
}

// String returns the template as configured ("" for the zero value).
func (p PlayURL) String() string { return p.tmpl }

// IsZero reports whether p is no URL.
func (p PlayURL) IsZero() bool { return p.tmpl == "" }

// Expand returns the URL for the stream path (see PlayURL for the escaping); "" for the zero value.
func (p PlayURL) Expand(path string) string {
	if p.tmpl == "" {
		return ""
	}
	var esc string
	if p.query {
		esc = escapeUnreserved(path)
	} else {
		segs := strings.Split(path, "/")
		for i, s := range segs {
			segs[i] = escapeUnreserved(s)
		}
		esc = strings.Join(segs, "/")
	}
	return strings.Replace(p.tmpl, PathPlaceholder, esc, 1)
}

func escapeUnreserved(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// MarshalText returns the template (for the page's list of play URLs).
func (p PlayURL) MarshalText() ([]byte, error) { return []byte(p.tmpl), nil }

// UnmarshalYAML parses a template and reports a bad one at its line.
func (p *PlayURL) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return conf.Errorf(n, "a play URL is a string such as http://cdn.example:8080/hls/{path}.m3u8")
	}
	v, err := ParsePlayURL(s)
	if err != nil {
		return conf.Errorf(n, "%s", err.Error())
	}
	*p = v
	return nil
}
