package web

import (
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
	"gatehouse/web/login"
)

// RemoteSources returns the sources whose streams gatehouse lists but does not play itself: the
// keys PlayURLs accepts (the Source of protocols/nginxrtmp, mediamtx, ome and srs).
func RemoteSources() []string { return []string{"nginx-rtmp", "mediamtx", "ome", "srs"} }

// Config is the `web:` section: present, it turns on the browser app (the grid at /, /watch,
// /manage); absent, the public listener serves only the SFU's bare pages, as before.
type Config struct {
	// Title is the site's name in the header and the tab (default "gatehouse").
	Title string `yaml:"title"`
	// Login is the OpenID Connect login; absent, every visitor is anonymous and sees what
	// `any` may read.
	Login *login.Config `yaml:"login"`
	// PlayURLs maps a source (one of RemoteSources) to where a browser plays its streams, such
	// as nginx-rtmp: http://cdn.example:8080/hls/{path}.m3u8: the stream's card in the grid
	// then offers "Open stream" and a copy button. Default none: the card says the stream plays
	// in the server's own players.
	PlayURLs map[string]PlayURL `yaml:"play_urls"`
	// RTMPServer is the RTMP server OBS publishes to, shown on /manage with a new stream key
	// (followed by "/" and the key path's first segments, the nginx-rtmp application), such as
	// rtmp://live.example.com:1935. Default: rtmp:// and the host of the page.
	RTMPServer string `yaml:"rtmp_server"`
}

// UnmarshalYAML decodes strictly (unknown keys are errors, with their line).
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	var raw plain
	err := conf.Strict(n, &raw)
	*c = Config(raw)
	errs := []error{err}
	if m := conf.Value(n, "play_urls"); m != n && m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; !slices.Contains(RemoteSources(), k.Value) {
				msg := "unknown source %q: one of " + strings.Join(RemoteSources(), ", ")
				if k.Value == "sfu" {
					msg = "%q streams play in the grid itself"
				}
				errs = append(errs, conf.Errorf(k, msg, k.Value))
			}
		}
	}
	if c.RTMPServer != "" {
		if err := checkRTMPServer(c.RTMPServer); err != "" {
			errs = append(errs, conf.Errorf(conf.Value(n, "rtmp_server"), "%s", err))
		}
	}
	return conf.Join(errs...)
}

// checkRTMPServer returns what is wrong with an RTMP server URL ("" when nothing is).
func checkRTMPServer(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" || u.Opaque != "":
		return "an rtmp:// or rtmps:// URL with a host, such as rtmp://live.example.com:1935"
	case u.User != nil:
		return "it is shown on /manage: it may not hold a user name or password"
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return "the server only, without the application (gatehouse adds the key path's first segments)"
	}
	return ""
}
