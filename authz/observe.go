package authz

import (
	"net/netip"
	"time"
)

// Observer is told of every decision the engine makes, after its log line (the management page's
// recent decisions and per-minute chart). Observe is called synchronously on the deciding
// goroutine, so it must be quick and must not block; it must not keep req or d.
type Observer interface {
	Observe(Observation)
}

// Observation is one decision as the engine logs it: the same fields, the same path (the public
// path when the presented one was a stream key, "" when nothing resolved a path that may hold
// one), and never a credential.
type Observation struct {
	Time      time.Time     // when the decision started
	Action    Action        // what was asked
	Path      string        // as logged: never a stream key
	Protocol  string        // as the request said (rtmp, webrtc, ...)
	Source    string        // which adapter asked (nginx-rtmp, sfu, api, web, ...)
	Outcome   Outcome       // the result
	Reason    string        // machine-readable
	Method    string        // the method (backend id) that decided
	Identity  string        // who the client is, "" when anonymous or unknown
	KeyID     string        // the stream key's id (never its secret)
	IP        netip.Addr    // the client address, if known
	Took      time.Duration // how long the decision took
	Undecided bool          // a method could not decide (see Decision.Undecided)
}

// WithObserver sets an Observer told of every decision (default none).
func WithObserver(o Observer) EngineOption {
	return func(e *Engine) { e.obs = o }
}

// observe tells the observer, if any, of d.
func (e *Engine) observe(req *Request, d Decision, start time.Time, took time.Duration) {
	if e.obs == nil {
		return
	}
	e.obs.Observe(Observation{
		Time: start, Action: req.Action, Path: loggedPath(req, d), Protocol: req.Protocol, Source: req.Source,
		Outcome: d.Outcome, Reason: d.Reason, Method: d.Backend, Identity: d.Identity, KeyID: d.KeyID,
		IP: req.IP, Took: took, Undecided: d.Undecided,
	})
}

// loggedPath is the one rule for the path a decision is shown under, in its log line and to
// observers: the public path when the presented path was a secret, nothing when nothing
// resolved a path that may embed one.
func loggedPath(req *Request, d Decision) string {
	switch {
	case d.Rename != "":
		return d.Rename
	case d.Reason == ReasonInvalidPath || d.hidePath:
		return ""
	}
	return req.Path
}
