package authz

import (
	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
)

// UnmarshalYAML decodes MediaMTX's {action, path} (plus protocols) strictly: a missing or unknown
// action, an invalid regular expression or an unknown key is an error with its line.
func (p *Permission) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		Action    *string  `yaml:"action"`
		Path      string   `yaml:"path"`
		Protocols []string `yaml:"protocols"`
	}
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	if raw.Action == nil || *raw.Action == "" {
		return conf.Errorf(n, "permission has no action (want one of publish, read, playback, api, metrics, pprof)")
	}
	perm, err := NewPermission(*raw.Action, raw.Path, raw.Protocols)
	if err != nil {
		return conf.Errorf(n, "%v", err)
	}
	*p = perm
	return nil
}
