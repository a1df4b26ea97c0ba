package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

// BanLister lists the bans in force; *authz.Engine implements it.
type BanLister interface{ Bans() []authz.Ban }

// SessionLister lists live sessions; *live.Registry implements it.
type SessionLister interface{ Sessions() []live.Session }

// KeySet describes one JWKS provider's key set for metrics.
type KeySet struct {
	Method, Provider string
	Keys             int
	LastFetch        time.Time // zero: never fetched
	Fetches, Errors  uint64
}

// SFUStats is a snapshot of the WebRTC server.
type SFUStats struct {
	Publishers, Viewers int
	// PacketsReceived from publishers, PacketsForwarded to viewers, and Dropped by reason.
	PacketsReceived, PacketsForwarded uint64
	Dropped                           map[string]uint64
}

// WatchBans reports gatehouse_bans (bans in force by kind and reason) from b at each scrape.
func (m *Metrics) WatchBans(b BanLister) {
	desc := prometheus.NewDesc("gatehouse_bans", "Bans in force, by kind (ip, user, key, identity) and who made them (bruteforce, operator).", []string{"kind", "reason"}, nil)
	m.reg.MustRegister(collectFunc{[]*prometheus.Desc{desc}, func(ch chan<- prometheus.Metric) {
		n := map[[2]string]int{}
		for _, ban := range b.Bans() {
			n[[2]string{bounded(ban.Subject.Kind), bounded(ban.Reason)}]++
		}
		for k, v := range n {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), k[0], k[1])
		}
	}})
}

// WatchRegistry reports gatehouse_live_sessions (by source and role) from r at each scrape.
func (m *Metrics) WatchRegistry(r SessionLister) {
	desc := prometheus.NewDesc("gatehouse_live_sessions", "Sessions in the live registry, by source (adapter) and role (publisher, viewer).", []string{"source", "role"}, nil)
	m.reg.MustRegister(collectFunc{[]*prometheus.Desc{desc}, func(ch chan<- prometheus.Metric) {
		n := map[[2]string]int{}
		for _, s := range r.Sessions() {
			role := "viewer"
			if s.Publish {
				role = "publisher"
			}
			n[[2]string{bounded(s.Source), role}]++
		}
		for k, v := range n {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), k[0], k[1])
		}
	}})
}

// WatchJWKS reports the key sets sets returns at each scrape: gatehouse_jwks_keys,
// gatehouse_jwks_age_seconds (since the last successful fetch), gatehouse_jwks_fetches_total and
// gatehouse_jwks_fetch_errors_total, by method id and provider name (both from the config). The
// counters restart when a reload replaces a provider.
func (m *Metrics) WatchJWKS(sets func() []KeySet, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	labels := []string{"method", "provider"}
	keys := prometheus.NewDesc("gatehouse_jwks_keys", "Usable keys in the provider's current key set.", labels, nil)
	age := prometheus.NewDesc("gatehouse_jwks_age_seconds", "Seconds since the provider's key set was last fetched successfully (absent: never).", labels, nil)
	fetches := prometheus.NewDesc("gatehouse_jwks_fetches_total", "Successful key set fetches.", labels, nil)
	errs := prometheus.NewDesc("gatehouse_jwks_fetch_errors_total", "Failed key set fetches.", labels, nil)
	m.reg.MustRegister(collectFunc{[]*prometheus.Desc{keys, age, fetches, errs}, func(ch chan<- prometheus.Metric) {
		t := now()
		seen := map[[2]string]bool{}
		for _, s := range sets() {
			l := [2]string{bounded(s.Method), bounded(s.Provider)}
			if seen[l] {
				continue
			}
			seen[l] = true
			ch <- prometheus.MustNewConstMetric(keys, prometheus.GaugeValue, float64(s.Keys), l[0], l[1])
			if !s.LastFetch.IsZero() {
				ch <- prometheus.MustNewConstMetric(age, prometheus.GaugeValue, t.Sub(s.LastFetch).Seconds(), l[0], l[1])
			}
			ch <- prometheus.MustNewConstMetric(fetches, prometheus.CounterValue, float64(s.Fetches), l[0], l[1])
			ch <- prometheus.MustNewConstMetric(errs, prometheus.CounterValue, float64(s.Errors), l[0], l[1])
		}
	}})
}

// WatchEvictions reports gatehouse_recheck_evictions_total: how many sessions each adapter's
// full session table (MediaMTX, SRS: servers that never ask again about a running session) has
// forgotten to make room, by source, from evicted (source name: counter) at each scrape. A
// forgotten session is no longer re-checked after a reload nor ended at its grant's expiry:
// a rising count asks for a larger table (or shows a flood of admitted sessions).
func (m *Metrics) WatchEvictions(evicted map[string]func() uint64) {
	desc := prometheus.NewDesc("gatehouse_recheck_evictions_total", "Sessions forgotten by a full re-check table (no longer re-checked nor ended at expiry), by source (adapter).", []string{"source"}, nil)
	m.reg.MustRegister(collectFunc{[]*prometheus.Desc{desc}, func(ch chan<- prometheus.Metric) {
		for src, n := range evicted {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n()), bounded(src))
		}
	}})
}

// dropReasons bounds the SFU's drop reason label.
var dropReasons = map[string]bool{"queue_full": true, "not_connected": true, "malformed": true}

// WatchSFU reports the WebRTC server's sessions and packets from stats at each scrape.
func (m *Metrics) WatchSFU(stats func() SFUStats) {
	sessions := prometheus.NewDesc("gatehouse_sfu_sessions", "WebRTC sessions, by role (publisher, viewer).", []string{"role"}, nil)
	recv := prometheus.NewDesc("gatehouse_sfu_packets_received_total", "RTP packets received from publishers.", nil, nil)
	fwd := prometheus.NewDesc("gatehouse_sfu_packets_forwarded_total", "RTP packets written to viewers.", nil, nil)
	drop := prometheus.NewDesc("gatehouse_sfu_packets_dropped_total", "RTP packets not forwarded, by reason (queue_full: a slow viewer; not_connected: the viewer's transport was not up; malformed: unparsable or padding only).", []string{"reason"}, nil)
	m.reg.MustRegister(collectFunc{[]*prometheus.Desc{sessions, recv, fwd, drop}, func(ch chan<- prometheus.Metric) {
		s := stats()
		ch <- prometheus.MustNewConstMetric(sessions, prometheus.GaugeValue, float64(s.Publishers), "publisher")
		ch <- prometheus.MustNewConstMetric(sessions, prometheus.GaugeValue, float64(s.Viewers), "viewer")
		ch <- prometheus.MustNewConstMetric(recv, prometheus.CounterValue, float64(s.PacketsReceived))
		ch <- prometheus.MustNewConstMetric(fwd, prometheus.CounterValue, float64(s.PacketsForwarded))
		for r := range dropReasons {
			ch <- prometheus.MustNewConstMetric(drop, prometheus.CounterValue, float64(s.Dropped[r]), r)
		}
	}})
}

// collectFunc is a collector that reads state when scraped.
type collectFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
