package web

import (
	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
	"gatehouse/web/login"
)

// Config is the `web:` section: present, it turns on the browser app (the grid at /, /watch,
// /manage); absent, the public listener serves only the SFU's bare pages, as before.
type Config struct {
	// Title is the site's name in the header and the tab (default "gatehouse").
	Title string `yaml:"title"`
	// Login is the OpenID Connect login; absent, every visitor is anonymous and sees what
	// `any` may read.
	Login *login.Config `yaml:"login"`
}

// UnmarshalYAML decodes strictly (unknown keys are errors, with their line).
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	var raw plain
	err := conf.Strict(n, &raw)
	*c = Config(raw)
	return err
}
