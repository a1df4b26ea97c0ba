package clientip

import (
	"strings"
	"testing"

	"gatehouse/authz/conf"
)

func TestProxiesYAML(t *testing.T) {
	type file struct {
		P Proxies `yaml:"p"`
	}
	tests := []struct {
		name, src, want, err string
	}{
		{"addresses and networks", "p: [127.0.0.1, '::1', 10.1.2.3/8, '::ffff:192.0.2.1']", "[127.0.0.1/32 ::1/128 10.0.0.0/8 192.0.2.1/32]", ""},
		{"empty list trusts nobody", "p: []", "[]", ""},
		{"bad entry names its line", "p:\n  - 127.0.0.1\n  - localhost\n", "", `t.yml:3: p[1]: "localhost" is not an IP address or CIDR network`},
		{"bad prefix", "p: [10.0.0.0/99]", "", `"10.0.0.0/99" is not an IP address or CIDR network`},
		{"zone refused", "p: ['fe80::1%eth0']", "", "is not an IP address or CIDR network"},
		{"every bad entry reported", "p: [a, b]", "", `"a" is not an IP address or CIDR network (such as 127.0.0.1, ::1 or 10.0.0.0/8)
t.yml:1: p[1]: "b" is not`},
		{"not a list", "p: 10.0.0.0/8", "", "want a list of IP addresses or CIDR networks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := conf.Decode("t.yml", []byte(tt.src), nil, &f)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := "[" + fmtPrefixes(f.P) + "]"; got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if f.P == nil {
				t.Error("decoded to nil; want non-nil")
			}
		})
	}
}

func fmtPrefixes(p Proxies) string {
	s := make([]string, len(p))
	for i, x := range p {
		s[i] = x.String()
	}
	return strings.Join(s, " ")
}
