package clientip

import (
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
)

// Proxies lists the networks of reverse proxies whose forwarding headers are believed. The zero
// value trusts nobody. In YAML it is a list of addresses ("127.0.0.1", "::1") and networks
// ("10.0.0.0/8"); every bad entry is reported with its line. An empty list ([]) decodes to a
// non-nil empty Proxies, so callers with a non-empty default can tell "trust nobody" from "not set".
type Proxies []netip.Prefix

// Trusts reports whether a is in one of the networks.
func (p Proxies) Trusts(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, n := range p {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefix parses an address ("192.0.2.1", a one-address network) or a CIDR network
// ("192.0.2.0/24", host bits cleared). IPv4-mapped IPv6 addresses are unmapped.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("clientip: %q is not an IP address or CIDR network (such as 127.0.0.1, ::1 or 10.0.0.0/8)", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("clientip: %q is not an IP address or CIDR network (such as 127.0.0.1, ::1 or 10.0.0.0/8)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// UnmarshalYAML implements yaml.Unmarshaler: a sequence of addresses or CIDR networks.
func (p *Proxies) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return conf.Errorf(n, "want a list of IP addresses or CIDR networks, such as [127.0.0.1, ::1, 10.0.0.0/8]")
	}
	out := make(Proxies, 0, len(n.Content))
	var errs []error
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode {
			errs = append(errs, conf.Errorf(item, "want an IP address or CIDR network, such as 10.0.0.0/8"))
			continue
		}
		pfx, err := ParsePrefix(item.Value)
		if err != nil {
			errs = append(errs, conf.Errorf(item, "%s", strings.TrimPrefix(err.Error(), "clientip: ")))
			continue
		}
		out = append(out, pfx)
	}
	if err := conf.Join(errs...); err != nil {
		return err
	}
	*p = out
	return nil
}
