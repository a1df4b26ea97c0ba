// Package users is gatehouse's internal user list: MediaMTX's `authInternalUsers`, with the same
// YAML schema, credential formats (plain, sha256:, argon2:) and first-match evaluation, so a
// MediaMTX user can paste their list. On top of MediaMTX it adds glob paths and per-protocol
// permissions (from authz.Permission), a 401/403 split (bad credentials vs. not permitted),
// equal-cost answers for unknown user names, and a bounded cache of argon2 verifications.
//
// The package is named users, not internal, because Go's internal rule would keep cmd/ from
// importing backends/internal.
package users

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// Sentinel errors of package users.
var (
	// ErrInvalidCredential is wrapped by ParseCredential for a malformed stored credential.
	ErrInvalidCredential = errors.New("users: invalid credential")
	// ErrUnsupportedArgon2 is wrapped by ParseCredential for argon2d or an argon2 version other than 19.
	ErrUnsupportedArgon2 = errors.New("users: unsupported argon2 variant")
	// ErrInvalidNetwork is wrapped by ParseNetwork for an `ips` entry that is neither an IP nor a CIDR.
	ErrInvalidNetwork = errors.New("users: invalid IP or network")
)

// ReasonBusy is the reason of a password check the backend could not make at once because failed
// verifications have used their CPU budget (WithArgon2FailureShare): the request is denied as
// undecided, never counted as a guess.
const ReasonBusy = "password_check_busy"

// Defaults of Config.
const (
	DefaultCacheTTL  = 2 * time.Minute
	DefaultCacheSize = 4096
)

// Config is the `users` backend's configuration. Users is MediaMTX's `authInternalUsers` list
// verbatim (user, pass, ips, permissions[{action, path}], plus the protocols: extension).
// CacheTTL (default DefaultCacheTTL) is how long a successful argon2 verification is remembered
// after its last use;
// CacheSize (nil: DefaultCacheSize; 0: no cache) bounds the number remembered. Decoding validates
// everything and reports every problem with its line.
type Config struct {
	Users     []User        `yaml:"users"`
	CacheTTL  conf.Duration `yaml:"cache_ttl" conf:"nonzero"`
	CacheSize *int          `yaml:"cache_size"`
}

// UnmarshalYAML decodes the config strictly (unknown keys are errors).
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config // no UnmarshalYAML: avoids recursion
	var raw plain
	err := conf.Strict(n, &raw)
	if raw.CacheSize != nil && *raw.CacheSize < 0 {
		err = conf.Join(err, conf.Errorf(conf.Value(n, "cache_size"), "cache_size must be 0 (no cache) or more"))
	}
	*c = Config(raw)
	return err
}

// Warnings returns what is legal but probably unintended, one sentence each, prefixed with the
// YAML line when the config was decoded: a named user with an empty pass (which accepts any
// password, as in MediaMTX) and ips 0.0.0.0/0 without an IPv6 network (IPv6 clients never
// match). The caller logs them at load. No warning contains a credential.
func (c *Config) Warnings() []string {
	var out []string
	for i := range c.Users {
		u := &c.Users[i]
		at := fmt.Sprintf("users[%d]", i)
		if u.line > 0 {
			at = fmt.Sprintf("line %d: %s", u.line, at)
		}
		name := "a hashed user"
		if !u.User.IsHashed() && u.name != "" {
			name = fmt.Sprintf("user %q", u.name)
		}
		if !u.User.IsEmpty() && !u.User.IsAny() && u.Pass.IsEmpty() {
			out = append(out, fmt.Sprintf("%s: %s has an empty pass, so any password is accepted", at, name))
		}
		allV4, anyV6 := false, false
		for _, p := range u.IPs {
			allV4 = allV4 || (p.Bits() == 0 && p.Addr().Is4())
			anyV6 = anyV6 || p.Addr().Is6()
		}
		if allV4 && !anyV6 {
			out = append(out, fmt.Sprintf("%s: ips 0.0.0.0/0 matches IPv4 clients only; add ::/0 for IPv6", at))
		}
	}
	return out
}

// User is one entry of the list, MediaMTX's schema. User "any" matches every client, with or
// without credentials, and must have an empty Pass. An empty Pass matches any password. IPs empty
// means any address. Users are tried in order and the first whose IPs, Permissions and credentials
// all match wins.
type User struct {
	User        Credential        `yaml:"user"`
	Pass        Credential        `yaml:"pass"`
	IPs         []netip.Prefix    `yaml:"ips"`
	Permissions authz.Permissions `yaml:"permissions"`

	line int    // of the entry, for Warnings; 0 when built in code
	name string // the plain user name, for Warnings
}

// UnmarshalYAML decodes and validates one user with MediaMTX's rules: a non-empty user, no pass
// for `any`, credentials in a known format, ips as IPs or CIDRs, and valid permissions.
func (u *User) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		User        yaml.Node         `yaml:"user"`
		Pass        yaml.Node         `yaml:"pass"`
		IPs         []yaml.Node       `yaml:"ips"`
		Permissions authz.Permissions `yaml:"permissions"`
	}
	errs := []error{conf.Strict(n, &raw)}
	*u = User{Permissions: raw.Permissions, line: n.Line}

	userNode := &raw.User
	if userNode.Kind == 0 {
		userNode = n
	}
	user, ok := scalar(&raw.User)
	switch {
	case !ok:
		errs = append(errs, conf.Errorf(userNode, "user must be a string"))
	case user == "":
		errs = append(errs, conf.Errorf(userNode, "empty usernames are not supported (use 'any' for everyone)"))
	default:
		c, err := ParseCredential(user)
		if err != nil {
			errs = append(errs, conf.Errorf(userNode, "user: %v", err))
		}
		u.User = c
		if !c.IsHashed() {
			u.name = user
		}
	}

	pass, ok := scalar(&raw.Pass)
	switch {
	case !ok:
		errs = append(errs, conf.Errorf(&raw.Pass, "pass must be a string"))
	case u.User.IsAny() && pass != "":
		errs = append(errs, conf.Errorf(&raw.Pass, "using a password with 'any' user is not supported"))
	default:
		c, err := ParseCredential(pass)
		if err != nil {
			errs = append(errs, conf.Errorf(&raw.Pass, "pass: %v", err))
		}
		u.Pass = c
	}

	for i := range raw.IPs {
		s, ok := scalar(&raw.IPs[i])
		if !ok {
			errs = append(errs, conf.Errorf(&raw.IPs[i], "ips entry must be a string"))
			continue
		}
		p, err := ParseNetwork(s)
		if err != nil {
			errs = append(errs, conf.Errorf(&raw.IPs[i], "%v", err))
			continue
		}
		u.IPs = append(u.IPs, p)
	}
	return conf.Join(errs...)
}

// ParseNetwork parses an `ips` entry: an IP (IPv4 becomes /32, IPv6 /128) or a CIDR, masked to
// its network. An IPv4-mapped IPv6 address is treated as the IPv4 address.
func ParseNetwork(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w %q: zones are not supported", ErrInvalidNetwork, s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w %q (want an IP such as 192.0.2.7 or ::1, or a CIDR such as 10.0.0.0/8)", ErrInvalidNetwork, s)
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// scalar returns a scalar node's value ("" for an absent or null node) and false for a non-scalar.
func scalar(n *yaml.Node) (string, bool) {
	switch {
	case n.Kind == 0:
		return "", true
	case n.Kind == yaml.AliasNode && n.Alias != nil:
		return scalar(n.Alias)
	case n.Kind != yaml.ScalarNode:
		return "", false
	case n.Tag == "!!null":
		return "", true
	}
	return n.Value, true
}
