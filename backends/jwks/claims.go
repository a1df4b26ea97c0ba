package jwks

import (
	"encoding/json"

	"gatehouse/authz"
)

// ClaimPermissions returns the permissions p grants to claims that the caller has already
// verified (the browser login verifies an ID token and reads userinfo itself): the permissions
// claim (ClaimKey, default mediamtx_permissions), the roles in realm_access.roles and
// resource_access.<RolesClient, default Audience>.roles mapped through Roles, and the values of
// the scope claim mapped through Scopes — the same mapping as for a token p verifies. A
// malformed permissions claim is an error; claims of another shape grant nothing.
func (p Provider) ClaimPermissions(raw map[string]json.RawMessage) (authz.Permissions, error) {
	c := claims{raw: raw}
	key := p.ClaimKey
	if key == "" {
		key = DefaultClaimKey
	}
	perms, err := c.permissions(key)
	if err != nil {
		return nil, err
	}
	client := p.RolesClient
	if client == "" {
		client = p.Audience
	}
	for role := range c.roleNames(client) {
		perms = append(perms, p.Roles[role]...)
	}
	for scope := range c.scopeNames() {
		perms = append(perms, p.Scopes[scope]...)
	}
	return perms, nil
}
