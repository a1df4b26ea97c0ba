// Package metrics is gatehouse's Prometheus instrumentation: one registry, built in cmd, that
// the engine reports decisions and brute-force events to (authz.Metrics), the http method
// reports upstream calls to (httpauth.Observer), and that reads the ban list, the live registry,
// JWKS key sets and the SFU when scraped. There are no package-level metrics: several Metrics
// can coexist (tests). Label values come from bounded sets only — actions, outcomes, a fixed
// list of protocols, the configured method ids and adapter names — never a path, an identity or
// an address.
package metrics

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse/authz"
)

// Protocol returns the bounded label value of a request's protocol: one of a fixed list of
// names, "other" for any other name and "none" for an empty one. Case and surrounding space are
// ignored.
func Protocol(p string) string {
	if q, ok := knownProtocol(p); ok { // as adapters write it: no case or space to fold
		return q
	}
	p = strings.ToLower(strings.TrimSpace(p))
	if p == "" {
		return "none"
	}
	if q, ok := knownProtocol(p); ok {
		return q
	}
	return "other"
}

// knownProtocol returns the label value of p if p is, exactly, one of the protocol names.
func knownProtocol(p string) (string, bool) {
	switch p {
	case "rtmp", "rtmps", "rtsp", "rtsps", "srt", "hls", "llhls", "webrtc", "dash", "moq", "http", "https", "flv":
		return p, true
	}
	return "", false
}

// maxLabel bounds any other label value taken from configuration (method ids, adapter names).
const maxLabel = 64

func bounded(s string) string {
	if s == "" {
		return "none"
	}
	if len(s) > maxLabel {
		return s[:maxLabel]
	}
	return s
}

// Metrics holds gatehouse's collectors in its own registry. It is safe for concurrent use and
// starts no goroutines; collectors that read state (bans, sessions, key sets, the SFU) do so
// when scraped.
type Metrics struct {
	reg *prometheus.Registry

	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	failures  prometheus.Counter
	bans      *prometheus.CounterVec
	upstream  *prometheus.HistogramVec
	upErrors  *prometheus.CounterVec

	// series caches the counter and histogram of each label combination Decided has seen, so a
	// decision costs one map read instead of two label hashings with UTF-8 checks. Bounded by
	// maxSeries (the label values are bounded: config ids and fixed names).
	series  sync.Map // seriesKey → *decisionSeries
	nSeries atomic.Int32
}

// schedMetrics adds the runtime's scheduling latency and stop-the-world pause histograms
// (go_sched_latencies_seconds, go_sched_pauses_total_gc_seconds, go_sched_pauses_total_other_seconds):
// the time a runnable goroutine waited for a thread, and how long the world stood still, which
// tell a stalled process from a slow decision.
var schedMetrics = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/(latencies|pauses/total/(gc|other)):seconds$`)}

// maxSeries bounds the Decided cache; combinations beyond it are looked up each time.
const maxSeries = 4096

type seriesKey struct{ action, protocol, method, result, source string }

type decisionSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// New returns a Metrics with the decision, brute-force and upstream metrics and the Go runtime
// and process collectors registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_decisions_total",
			Help: "Decisions by action, protocol, deciding method, result (allow, unauthenticated, forbidden) and whether it was a ban.",
		}, []string{"action", "protocol", "method", "result", "source"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_decision_duration_seconds",
			Help:    "Time to decide, by action and result.",
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"action", "result"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_bruteforce_failures_total",
			Help: "Failed attempts seen by brute-force protection (a repeat of the same credentials counts here each time, towards a ban once per window).",
		}),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_bruteforce_bans_total",
			Help: "Bans made by brute-force protection, by kind (ip, user).",
		}, []string{"kind"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_upstream_request_duration_seconds",
			Help:    "Calls to external auth services (http methods), by method id.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method"}),
		upErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_upstream_errors_total",
			Help: "Calls to external auth services that could not decide (unreachable, timeout, bad reply), by method id.",
		}, []string{"method"}),
	}
	m.reg.MustRegister(m.decisions, m.latency, m.failures, m.bans, m.upstream, m.upErrors,
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(schedMetrics)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, to add collectors or gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. Guard it (action metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Decided implements authz.Metrics.
func (m *Metrics) Decided(req *authz.Request, d authz.Decision, took time.Duration) {
	result := d.Outcome.String()
	if d.Reason == authz.ReasonBanned {
		result = "banned"
	}
	// Keyed by the label values themselves (each from a fixed set or bounded config ids), so an
	// attacker's protocol strings cannot grow the cache.
	k := seriesKey{bounded(string(req.Action)), Protocol(req.Protocol), bounded(d.Backend), result, bounded(req.Source)}
	if v, ok := m.series.Load(k); ok {
		s := v.(*decisionSeries)
		s.count.Inc()
		s.latency.Observe(took.Seconds())
		return
	}
	// Kept for the process's life (here and as label values): copies, so that a label taken from
	// a request (the protocol a hook decoded) never keeps that request's body, credentials
	// included, in memory.
	k = seriesKey{strings.Clone(k.action), strings.Clone(k.protocol), strings.Clone(k.method), k.result, strings.Clone(k.source)}
	s := &decisionSeries{
		count:   m.decisions.WithLabelValues(k.action, k.protocol, k.method, k.result, k.source),
		latency: m.latency.WithLabelValues(k.action, result),
	}
	if m.nSeries.Load() < maxSeries {
		if _, loaded := m.series.LoadOrStore(k, s); !loaded {
			m.nSeries.Add(1)
		}
	}
	s.count.Inc()
	s.latency.Observe(took.Seconds())
}

// Failed implements authz.Metrics.
func (m *Metrics) Failed() { m.failures.Inc() }

// Banned implements authz.Metrics.
func (m *Metrics) Banned(kind string) { m.bans.WithLabelValues(bounded(kind)).Inc() }

// Upstream returns the observer of the http method with id method (httpauth.Observer).
func (m *Metrics) Upstream(method string) *UpstreamObserver {
	method = bounded(method)
	return &UpstreamObserver{h: m.upstream.WithLabelValues(method), errs: m.upErrors.WithLabelValues(method)}
}

// UpstreamObserver records one http method's upstream calls.
type UpstreamObserver struct {
	h    prometheus.Observer
	errs prometheus.Counter
}

// Upstream records one call that took took and failed with err (nil: it answered).
func (u *UpstreamObserver) Upstream(took time.Duration, err error) {
	u.h.Observe(took.Seconds())
	if err != nil {
		u.errs.Inc()
	}
}
