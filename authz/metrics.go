package authz

import "time"

// Metrics is told about every decision and brute-force event, for Prometheus. Implementations
// must be fast and safe for concurrent use; they must not keep req (it may hold secrets) or use
// unbounded values from it (paths, identities) as labels.
type Metrics interface {
	// Decided is called once per Authorize with the request, its decision and how long it took.
	Decided(req *Request, d Decision, took time.Duration)
	// Failed is called for each failed guess brute-force protection counted.
	Failed()
	// Banned is called when brute-force protection bans a subject of kind (BanIP or BanUser).
	Banned(kind string)
}

// WithMetrics reports decisions and bans to m (default none).
func WithMetrics(m Metrics) EngineOption {
	return func(e *Engine) { e.metrics = m }
}
