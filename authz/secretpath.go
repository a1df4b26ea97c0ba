package authz

// SecretPaths is implemented by a backend that knows secrets a client may present as part of a
// stream path (the keys backend: a stream key used as the stream name, including keys kept only
// to be recognised, such as revoked ones). The engine asks every method of its chain that
// implements it, whichever method decides and whatever actions the method is limited to, so that
// a secret in a path never reaches a log line or a public name: when a method allows or denies
// without a Rename, the engine sets the public path as the decision's Rename, or, when there is
// none, keeps the path out of its log line.
type SecretPaths interface {
	// PublicPath reports whether path presents a secret and, if it does, the public path to use
	// instead ("" when the secret is not a path's last segment and no public path exists). Its
	// cost must not depend on which secret matched, or on whether one did.
	PublicPath(path string) (public string, secret bool)
}

// PublicPath implements SecretPaths over every method of the chain (a nil Chain knows no
// secrets). Every method that implements SecretPaths is asked, so the cost does not depend on
// which one recognises the path.
func (c *Chain) PublicPath(path string) (public string, secret bool) {
	if c == nil {
		return "", false
	}
	for _, m := range c.methods {
		sp, ok := m.Backend.(SecretPaths)
		if !ok {
			continue
		}
		if p, s := sp.PublicPath(path); s && !secret {
			public, secret = p, true
		}
	}
	return public, secret
}
