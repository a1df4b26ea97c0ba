package banapi

import (
	"errors"
	"testing"

	"gatehouse/authz"
)

func TestParseSubject(t *testing.T) {
	for _, tt := range []struct {
		kind, value string
		want        authz.BanSubject
		err         bool
	}{
		{"ip", "203.0.113.7", authz.BanSubject{Kind: "ip", Value: "203.0.113.7/32"}, false},
		{"ip", "203.0.113.7/32", authz.BanSubject{Kind: "ip", Value: "203.0.113.7/32"}, false},
		{"ip", "2001:db8:1:2::99", authz.BanSubject{Kind: "ip", Value: "2001:db8:1:2::/64"}, false},
		{"ip", "::ffff:192.0.2.1", authz.BanSubject{Kind: "ip", Value: "192.0.2.1/32"}, false},
		{"user", "alice", authz.UserSubject("alice"), false},
		{"user", authz.UserSubject("alice").Value, authz.UserSubject("alice"), false},
		{"key", "key_3kq7w2mhxa", authz.BanSubject{Kind: "key", Value: "key_3kq7w2mhxa"}, false},
		{"ip", "unknown", authz.BanSubject{Kind: "ip", Value: authz.UnknownIP}, false},
		{"ip", "nope", authz.BanSubject{}, true},
		{"host", "x", authz.BanSubject{}, true},
		{"ip", "", authz.BanSubject{}, true},
	} {
		got, err := ParseSubject(tt.kind, tt.value)
		if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrBadSubject)) || got != tt.want {
			t.Errorf("ParseSubject(%q, %q) = %v, %v; want %v (error %v)", tt.kind, tt.value, got, err, tt.want, tt.err)
		}
	}
}
