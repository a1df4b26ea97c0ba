package main

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
)

// hostList is allowed_hosts: the host names (or IP literals) that requests to the public listener
// may carry in Host, without port, lower-cased, trailing dot removed. Empty: any Host.
type hostList []string

// UnmarshalYAML implements yaml.Unmarshaler, reporting every bad entry with its line.
func (h *hostList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return conf.Errorf(n, "want a list of host names, such as [stream.example.com, localhost, 127.0.0.1]")
	}
	var out hostList
	var errs []error
	for _, item := range n.Content {
		v := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(item.Value)), ".")
		v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]") // [::1] as written in a URL
		if item.Kind != yaml.ScalarNode || v == "" || strings.ContainsAny(v, "/ \t@*?#") ||
			(strings.Contains(v, ":") && net.ParseIP(v) == nil) {
			errs = append(errs, conf.Errorf(item, "%q is not a host name: write the name alone, without scheme, port, path or wildcard (stream.example.com)", item.Value))
			continue
		}
		out = append(out, v)
	}
	if err := conf.Join(errs...); err != nil {
		return err
	}
	*h = out
	return nil
}

// allows reports whether a request's Host header value (host or host:port) is listed.
func (h hostList) allows(hostport string) bool {
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return slices.Contains(h, strings.TrimSuffix(strings.ToLower(host), "."))
}

// handler refuses, with 421 Misdirected Request, requests whose Host is not listed: a page on
// another site that re-points its own name at this machine (DNS rebinding) then cannot reach the
// API or the pages of a desktop install. Empty h lets every Host through.
func (h hostList) handler(next http.Handler) http.Handler {
	if len(h) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.allows(r.Host) {
			http.Error(w, "gatehouse: this host name is not served here (allowed_hosts)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}
