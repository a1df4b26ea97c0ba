package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// secretKeys are the config keys whose value is a secret (a password or its hash, an HMAC or
// client secret, a stream key) when written inline rather than as a ${VAR} reference.
var secretKeys = []string{"pass", "password", "secret", "client_secret", "key"}

// configFileWarnings checks the config file at path (content src): world-writable (anyone on the
// host can rewrite the policy), or readable by group or others while it holds secrets inline.
// The findings name keys, never values.
func configFileWarnings(path string, src []byte) []string {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	perm := fi.Mode().Perm()
	var w []string
	if perm&0o002 != 0 {
		w = append(w, fmt.Sprintf("%s is writable by every user (mode %04o): anyone on this host can rewrite the policy; chmod 600 it", path, perm))
	}
	if perm&0o044 != 0 {
		if keys := inlineSecrets(src); len(keys) > 0 {
			w = append(w, fmt.Sprintf("%s is readable by group or others (mode %04o) and holds secrets inline (%s): chmod 600 it, or use ${VAR} references", path, perm, strings.Join(keys, ", ")))
		}
	}
	return w
}

// inlineSecrets returns the dotted paths of secret keys in src written as literal values.
func inlineSecrets(src []byte) []string {
	var root yaml.Node
	if yaml.Unmarshal(src, &root) != nil {
		return nil
	}
	var out []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := strings.TrimPrefix(path+"."+k.Value, ".")
				if v.Kind == yaml.ScalarNode && slices.Contains(secretKeys, k.Value) &&
					v.Value != "" && !strings.Contains(v.Value, "${") && !slices.Contains(out, p) {
					out = append(out, p)
				}
				walk(v, p)
			}
		}
	}
	walk(&root, "")
	return out
}

// plainIssuerWarning warns about an http:// OpenID provider that is not on loopback: the client
// secret and the authorization code travel to its token endpoint in clear.
func plainIssuerWarning(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "http" {
		return ""
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return ""
	}
	return "web.login.issuer is http:// on " + host + ": the client secret, authorization codes and tokens cross the network in clear; use https://"
}
