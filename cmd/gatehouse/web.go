package main

import (
	"cmp"
	"log/slog"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
	"gatehouse/backends/jwks"
	"gatehouse/web"
	"gatehouse/web/login"
)

// newWeb builds the browser app of the web section: the OIDC login (when configured) maps the
// user's claims with the jwt providers' role mapping and mints viewer tokens with the running
// issuer; without one, a local login lets users allowed api (by name) into /manage.
func (s *server) newWeb(cfg *Config, log *slog.Logger) (*web.App, error) {
	opt := web.Options{
		Registry: s.reg, Auth: s.engine, Title: cfg.Web.Title, Log: log,
		// Another node's SFU stream plays here through this SFU's edge pull (with a fleet, the
		// origin is the node holding the path's lease).
		Playable: func(st live.Stream) bool {
			return st.Source == "sfu" && s.sfu != nil && (st.Node == "" || s.state != nil && s.state.fleet != nil || cfg.SFU.Edge.Origin != "")
		},
		Edge:     s.sfu != nil && (s.state != nil && s.state.fleet != nil || cfg.SFU.Edge.Origin != ""),
		PlayURLs: cfg.Web.PlayURLs, RTMPServer: cfg.Web.RTMPServer,
	}
	if lc := cfg.Web.Login; lc != nil {
		roles := jwks.Provider{Roles: lc.Roles, RolesClient: cmp.Or(lc.RolesClient, lc.ClientID)}
		m, err := login.New(*lc, roles.ClaimPermissions, runningIssuer{s},
			login.WithLogger(log.With("part", "login")), login.WithTrustedProxy(cfg.TrustedProxies.Trusts))
		if err != nil {
			return nil, err
		}
		opt.Login = m
	} else { // no identity provider: /manage offers a login form for the operators of auth
		m, err := login.NewLocal(s.engine, runningIssuer{s}, login.WithLogger(log.With("part", "login")),
			login.WithTrustedProxy(cfg.TrustedProxies.Trusts))
		if err != nil {
			return nil, err
		}
		opt.Login = m
	}
	opt.API = s.apiMux()
	return web.New(opt), nil
}

// runningIssuer mints with the issuer of the running generation (a reload may rotate its key).
type runningIssuer struct{ s *server }

func (r runningIssuer) Issue(subject string, perms []authz.Permission, ttl time.Duration) (string, error) {
	return r.s.issuer.Load().Issue(subject, perms, ttl)
}

func (r runningIssuer) MaxTTL() time.Duration { return r.s.issuer.Load().MaxTTL() }
