package jwks

import (
	"encoding/json"
	"slices"
	"testing"

	"gatehouse/authz"
)

func TestClaimPermissions(t *testing.T) {
	read := func(path string) authz.Permission {
		p, err := authz.NewPermission("read", path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := Provider{Audience: "gatehouse", Roles: map[string][]authz.Permission{
		"viewer": {read("members/*")}, "admin": {read("admin/*")}, "other-client-role": {read("nope")},
	}, Scopes: map[string][]authz.Permission{"stream:read": {read("scoped")}}}
	tests := []struct {
		name, claims string
		want         []string
		err          bool
	}{
		{"realm role", `{"realm_access":{"roles":["viewer"]}}`, []string{"read:members/*"}, false},
		{"client role of this client only", `{"resource_access":{"gatehouse":{"roles":["admin"]},"else":{"roles":["other-client-role"]}}}`, []string{"read:admin/*"}, false},
		{"scope value is not a role", `{"scope":"openid viewer stream:read"}`, []string{"read:scoped"}, false},
		{"permissions claim", `{"mediamtx_permissions":[{"action":"read","path":"x"}]}`, []string{"read:x"}, false},
		{"malformed permissions claim", `{"mediamtx_permissions":[{"action":"fly"}]}`, nil, true},
		{"roles of another shape grant nothing", `{"realm_access":"viewer"}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.claims), &raw); err != nil {
				t.Fatal(err)
			}
			perms, err := p.ClaimPermissions(raw)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			var got []string
			for _, q := range perms {
				got = append(got, q.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
