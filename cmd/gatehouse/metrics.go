package main

import (
	"gatehouse/authz/metrics"
	"gatehouse/backends/httpauth"
	"gatehouse/backends/jwks"
	"gatehouse/protocols/mediamtx"
	"gatehouse/protocols/ome"
	"gatehouse/protocols/srs"
	"gatehouse/sfu"
)

// watchState registers the collectors that read gatehouse's state when /metrics is scraped:
// bans, live sessions, the MediaMTX and SRS session tables, the running generation's JWKS key
// sets and the SFU. It needs s.mtx and s.srs built.
func (s *server) watchState(m *metrics.Metrics) {
	m.WatchBans(s.engine)
	m.WatchRegistry(s.reg)
	m.WatchEvictions(map[string]func() uint64{mediamtx.Source: s.mtx.Evicted, srs.Source: s.srs.Evicted, ome.Source: s.ome.Evicted})
	m.WatchJWKS(func() []metrics.KeySet {
		s.mu.Lock()
		g := s.gen
		s.mu.Unlock()
		var out []metrics.KeySet
		for _, meth := range g.chain.Methods() {
			b, ok := meth.Backend.(*jwks.Backend)
			if !ok {
				continue
			}
			for _, p := range b.Stats().Providers {
				out = append(out, metrics.KeySet{Method: meth.Name, Provider: p.Name, Keys: p.Keys,
					LastFetch: p.LastFetch, Fetches: p.Fetches, Errors: p.FetchErrors})
			}
		}
		return out
	}, nil)
	if s.sfu != nil {
		m.WatchSFU(func() metrics.SFUStats { return sfuStats(s.sfu.Stats()) })
	}
}

func sfuStats(st sfu.Stats) metrics.SFUStats {
	return metrics.SFUStats{Publishers: st.Publishers, Viewers: st.Viewers,
		PacketsReceived: st.PacketsReceived, PacketsForwarded: st.PacketsForwarded, Dropped: st.Dropped}
}

// upstreamObserver returns the http method id's observer, or nil without metrics.
func (d deps) upstreamObserver(id string) httpauth.Observer {
	if d.metrics == nil {
		return nil
	}
	return d.metrics.Upstream(id)
}
