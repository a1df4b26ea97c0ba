package main

import (
	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/authz/clientip"
	"gatehouse/authz/conf"
)

// BruteForceConfig is auth.bruteforce: failure counting and temporary bans (authz.BruteForce).
// Absent, gatehouse runs with authz.DefaultBruteForce; `enabled: false` turns it off. It reloads
// with the auth section; bans already made stay (they live in the engine).
//
//	auth:
//	  bruteforce:
//	    max_failures: 10        # per client address (IPv6: per /64) within window
//	    user_max_failures: 50   # per presented user name, from anywhere
//	    unknown_max_failures: 100 # all clients whose address is unknown, together
//	    window: 1m
//	    ban: 1m                 # the first ban; doubles with each ban in a row
//	    max_ban: 1h
//	    allow: [192.0.2.0/24]   # the operator's own networks: never counted or banned by address
type BruteForceConfig struct {
	Enabled         *bool `yaml:"enabled"`           // default true
	MaxFailures     *int  `yaml:"max_failures"`      // default 10; 0: addresses not counted
	UserMaxFailures *int  `yaml:"user_max_failures"` // default 50; 0: user names not counted
	// UnknownMaxFailures counts the clients whose address is unknown (contradictory forwarding
	// headers) as one group: default 100; 0: not counted (authz.BruteForce.UnknownMaxFailures).
	UnknownMaxFailures *int             `yaml:"unknown_max_failures"`
	Window             conf.Duration    `yaml:"window"`  // default 1m
	Ban                conf.Duration    `yaml:"ban"`     // default 1m
	MaxBan             conf.Duration    `yaml:"max_ban"` // default 1h
	Allow              clientip.Proxies `yaml:"allow"`   // default none
}

// UnmarshalYAML decodes strictly and reports negative values and a max_ban below ban with their lines.
func (c *BruteForceConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain BruteForceConfig
	if err := conf.Strict(n, (*plain)(c)); err != nil {
		return err
	}
	var errs []error
	for _, f := range []struct {
		key string
		v   *int
	}{{"max_failures", c.MaxFailures}, {"user_max_failures", c.UserMaxFailures}, {"unknown_max_failures", c.UnknownMaxFailures}} {
		if f.v != nil && *f.v < 0 {
			errs = append(errs, conf.Errorf(conf.Value(n, f.key), "%s must not be negative (0: not counted)", f.key))
		}
	}
	for _, f := range []struct {
		key string
		v   conf.Duration
	}{{"window", c.Window}, {"ban", c.Ban}, {"max_ban", c.MaxBan}} {
		if f.v < 0 {
			errs = append(errs, conf.Errorf(conf.Value(n, f.key), "%s must not be negative", f.key))
		}
	}
	if c.Ban > 0 && c.MaxBan > 0 && c.MaxBan < c.Ban {
		errs = append(errs, conf.Errorf(conf.Value(n, "max_ban"), "max_ban (%s) is shorter than ban (%s)", c.MaxBan.Std(), c.Ban.Std()))
	}
	return conf.Join(errs...)
}

// policy returns the engine's brute-force policy: the defaults, overridden by what is set.
func (c *BruteForceConfig) policy() authz.BruteForce {
	if c == nil {
		return authz.DefaultBruteForce()
	}
	if c.Enabled != nil && !*c.Enabled {
		return authz.BruteForce{}
	}
	b := authz.DefaultBruteForce()
	if c.MaxFailures != nil {
		b.MaxFailures = *c.MaxFailures
	}
	if c.UserMaxFailures != nil {
		b.UserMaxFailures = *c.UserMaxFailures
	}
	if c.UnknownMaxFailures != nil {
		b.UnknownMaxFailures = *c.UnknownMaxFailures
	}
	b.Window = c.Window.Or(b.Window)
	b.Ban = c.Ban.Or(b.Ban)
	b.MaxBan = c.MaxBan.Or(b.MaxBan)
	if b.MaxBan < b.Ban {
		b.MaxBan = b.Ban
	}
	b.Allow = c.Allow
	return b
}
