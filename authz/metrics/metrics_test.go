package metrics

import (
	"errors"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/live"
)

type bans []authz.Ban

func (b bans) Bans() []authz.Ban { return b }

type sessions []live.Session

func (s sessions) Sessions() []live.Session { return s }

// scrape returns the exposition text of m's handler.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestScrape: every metric is exposed under its documented name and labels through the real
// handler, state is read at scrape time, and the Go runtime is there.
func TestScrape(t *testing.T) {
	m := New()
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	m.WatchBans(bans{{Subject: authz.BanSubject{Kind: authz.BanIP, Value: "203.0.113.7/32"}, Reason: "bruteforce"}})
	m.WatchRegistry(sessions{{Source: "nginx-rtmp", Publish: true}, {Source: "sfu"}, {Source: "sfu"}})
	m.WatchJWKS(func() []KeySet {
		return []KeySet{{Method: "jwt", Provider: "keycloak", Keys: 2, LastFetch: now.Add(-90 * time.Second), Fetches: 3, Errors: 1}}
	}, func() time.Time { return now })
	m.WatchSFU(func() SFUStats {
		return SFUStats{Publishers: 1, Viewers: 4, PacketsReceived: 100, PacketsForwarded: 390, Dropped: map[string]uint64{"queue_full": 10}}
	})
	m.WatchEvictions(map[string]func() uint64{"mediamtx": func() uint64 { return 7 }})
	req := &authz.Request{Action: authz.ActionPublish, Protocol: "RTMP", Source: "nginx-rtmp", Path: "live/secret", User: "alice"}
	d := authz.Allowing("alice", time.Time{})
	d.Backend = "internal"
	m.Decided(req, d, 2*time.Millisecond)
	m.Decided(req, authz.Decision{Outcome: authz.Forbidden, Reason: authz.ReasonBanned}, time.Microsecond)
	m.Failed()
	m.Banned(authz.BanIP)
	m.Upstream("billing").Upstream(30*time.Millisecond, nil)
	m.Upstream("billing").Upstream(time.Second, fmt.Errorf("down"))

	out := scrape(t, m)
	for _, want := range []string{
		`gatehouse_decisions_total{action="publish",method="internal",protocol="rtmp",result="allow",source="nginx-rtmp"} 1`,
		`gatehouse_decisions_total{action="publish",method="none",protocol="rtmp",result="banned",source="nginx-rtmp"} 1`,
		`gatehouse_decision_duration_seconds_bucket{action="publish",result="allow",le="0.005"} 1`,
		`gatehouse_bruteforce_failures_total 1`,
		`gatehouse_recheck_evictions_total{source="mediamtx"} 7`,
		`gatehouse_bruteforce_bans_total{kind="ip"} 1`,
		`gatehouse_bans{kind="ip",reason="bruteforce"} 1`,
		`gatehouse_live_sessions{role="viewer",source="sfu"} 2`,
		`gatehouse_live_sessions{role="publisher",source="nginx-rtmp"} 1`,
		`gatehouse_jwks_keys{method="jwt",provider="keycloak"} 2`,
		`gatehouse_jwks_age_seconds{method="jwt",provider="keycloak"} 90`,
		`gatehouse_jwks_fetches_total{method="jwt",provider="keycloak"} 3`,
		`gatehouse_jwks_fetch_errors_total{method="jwt",provider="keycloak"} 1`,
		`gatehouse_upstream_request_duration_seconds_count{method="billing"} 2`,
		`gatehouse_upstream_errors_total{method="billing"} 1`,
		`gatehouse_sfu_sessions{role="viewer"} 4`,
		`gatehouse_sfu_packets_forwarded_total 390`,
		`gatehouse_sfu_packets_dropped_total{reason="queue_full"} 10`,
		`gatehouse_sfu_packets_dropped_total{reason="not_connected"} 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, secret := range []string{"live/secret", "alice", "203.0.113.7"} {
		if strings.Contains(out, secret) {
			t.Errorf("scrape contains %q: paths, identities and addresses are never labels", secret)
		}
	}
}

// TestCardinalityBounded: decisions with 10,000 distinct paths, identities, addresses and
// protocol names make a bounded number of series.
func TestCardinalityBounded(t *testing.T) {
	m := New()
	for i := range 10_000 {
		req := &authz.Request{Action: authz.Actions[i%len(authz.Actions)], Path: fmt.Sprint("live/", i), User: fmt.Sprint("u", i),
			Protocol: fmt.Sprint("proto", i), Source: "srs"}
		d := authz.Decision{Outcome: authz.Outcome(i % 4), Identity: fmt.Sprint("u", i), Backend: "internal"}
		m.Decided(req, d, time.Duration(i)*time.Microsecond)
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, f := range fams {
		series[f.GetName()] = len(f.GetMetric())
	}
	// 6 actions × 4 results × 1 protocol ("other") × 1 method × 1 source.
	if got := series["gatehouse_decisions_total"]; got > 24 {
		t.Errorf("gatehouse_decisions_total has %d series, want at most 24", got)
	}
	if got := series["gatehouse_decision_duration_seconds"]; got > 24 {
		t.Errorf("gatehouse_decision_duration_seconds has %d series, want at most 24", got)
	}
	// The cache of series Decided keeps is keyed by the label values, not the raw ones.
	if got := m.nSeries.Load(); got > 24 {
		t.Errorf("Decided caches %d series, want at most 24", got)
	}
}

// TestDecidedCacheCountsLikeTheVec: the cached series count exactly what the label lookup did,
// for raw values that normalise to the same labels too.
func TestDecidedCacheCountsLikeTheVec(t *testing.T) {
	m := New()
	for i := range 30 {
		proto := []string{"RTMP", "rtmp", " rtmp "}[i%3]
		d := authz.Decision{Outcome: authz.Allow, Backend: "internal"}
		m.Decided(&authz.Request{Action: authz.ActionPublish, Protocol: proto, Source: "srs"}, d, time.Millisecond)
	}
	m.Decided(&authz.Request{Action: authz.ActionRead, Protocol: "hls", Source: "srs"}, authz.Decision{Outcome: authz.Forbidden, Reason: authz.ReasonBanned}, time.Millisecond)
	if got := counterValue(t, m.decisions.WithLabelValues("publish", "rtmp", "internal", "allow", "srs")); got != 30 {
		t.Errorf("publish/rtmp/allow counted %v, want 30", got)
	}
	if got := counterValue(t, m.decisions.WithLabelValues("read", "hls", "none", "banned", "srs")); got != 1 {
		t.Errorf("read/hls/banned counted %v, want 1", got)
	}
	if got := m.nSeries.Load(); got != 2 {
		t.Errorf("cached %d series, want 2", got)
	}
}

// TestDashboard: the Grafana dashboard in docs/ uses only metrics this package exposes.
func TestDashboard(t *testing.T) {
	src, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	m.WatchBans(bans{{Subject: authz.BanSubject{Kind: "ip", Value: "x"}, Reason: "bruteforce"}})
	m.WatchRegistry(sessions{{Source: "sfu"}})
	m.WatchJWKS(func() []KeySet { return []KeySet{{Method: "jwt", Provider: "p", LastFetch: time.Now()}} }, nil)
	m.WatchSFU(func() SFUStats { return SFUStats{} })
	m.Decided(&authz.Request{}, authz.Decision{}, 0)
	m.Failed()
	m.Banned("ip")
	m.Upstream("h").Upstream(0, errors.New("x"))
	out := scrape(t, m)
	names := regexp.MustCompile(`\b(gatehouse|go|process)_[a-z_]+`).FindAllString(string(src), -1)
	if len(names) < 10 {
		t.Fatalf("found %d metric names in the dashboard", len(names))
	}
	for _, n := range names {
		if !strings.Contains(out, "\n"+n) && !strings.HasPrefix(out, n) {
			t.Errorf("the dashboard uses %s, which /metrics does not expose", n)
		}
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
