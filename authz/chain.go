package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Method is one named backend in a Chain, optionally limited to some actions.
type Method struct {
	Name    string
	Backend Backend
	Actions []Action // nil or empty: every action
}

func (m Method) handles(a Action) bool {
	return len(m.Actions) == 0 || slices.Contains(m.Actions, a)
}

// Chain evaluates methods in order; the first Allow wins. When nothing allows, the overall
// denial is Forbidden if any method established the identity (or could not decide), else
// Unauthenticated, and it carries the first Rename any method set, so a secret path never
// reaches the log whichever method's denial wins. A Chain is itself a Backend, so chains
// compose. A Chain is immutable; a nil *Chain, like an empty one, denies with no_method. A
// denial is marked Undecided when any consulted method returned an error (it might have allowed).
type Chain struct {
	methods []Method
	policy  Policy
	inline  bool // every method is ContextBound: the engine runs the chain on the caller's goroutine
}

// Policy is what the engine applies to every request, whichever adapter asked, before and after
// consulting the chain's methods. It travels with the Chain, so a reload swaps both at once. The
// zero Policy is the safe one.
type Policy struct {
	// QueryTokenOnHTTP accepts a token that came from a query parameter (any name: token, jwt,
	// access_key, ...) on an HTTP protocol (Request.HTTPBorne). Default false, as MediaMTX since
	// v1.18: query strings end up in access logs and browser history. RTSP, RTMP and SRT always
	// accept query tokens, because their clients have no other way.
	QueryTokenOnHTTP bool
	// DecisionTimeout bounds one decision (0: DefaultDecisionTimeout). A chain that has not
	// decided by then is an undecided denial with reason decision_timeout.
	DecisionTimeout time.Duration
	// BruteForce configures failure counting and bans (the zero value counts nothing; see
	// BruteForce and DefaultBruteForce). The bans themselves live in the Engine.
	BruteForce BruteForce
}

// DefaultDecisionTimeout is Policy.DecisionTimeout's default: under nginx-rtmp's netcall_timeout
// (10 s) and MediaMTX's HTTP auth timeout.
const DefaultDecisionTimeout = 5 * time.Second

// WithPolicy returns a copy of c (nil: an empty chain) that the engine evaluates under p.
func (c *Chain) WithPolicy(p Policy) *Chain {
	n := &Chain{policy: p}
	if c != nil {
		n.methods, n.inline = c.methods, c.inline // immutable: sharing is safe
	}
	return n
}

// Policy returns the policy the engine applies with this chain (the zero Policy for nil).
func (c *Chain) Policy() Policy {
	if c == nil {
		return Policy{}
	}
	return c.policy
}

// NewChain returns a chain over methods, evaluated in the order given.
func NewChain(methods ...Method) *Chain {
	return &Chain{methods: slices.Clone(methods), inline: boundByContext(methods)}
}

// Methods returns a copy of the chain's methods (nil for a nil Chain).
func (c *Chain) Methods() []Method {
	if c == nil {
		return nil
	}
	return slices.Clone(c.methods)
}

// Authorize implements Backend. It never returns an error: a method's error is recorded as a
// failed-closed step (reason backend_error, or the error's Reason if it has one) and the chain
// moves on, because another method may still independently allow.
func (c *Chain) Authorize(ctx context.Context, req *Request) (Decision, error) {
	var methods []Method
	if c != nil {
		methods = c.methods
	}
	var (
		steps    = make([]Step, 0, len(methods))
		best     Decision // strongest denial seen so far
		bestRank = -1
		consult  int
		rename   string // the first Rename of a denial: the request path is a secret
		errored  bool   // some method could not decide
	)
	for _, m := range methods {
		if !m.handles(req.Action) {
			continue
		}
		if err := ctx.Err(); err != nil {
			d := Denying(Forbidden, ReasonCanceled, "request canceled before a decision")
			d.Rename, d.Steps, d.Undecided = rename, steps, true
			return d, nil
		}
		consult++
		var (
			d   Decision
			err = errNoBackend
		)
		if m.Backend != nil {
			d, err = m.Backend.Authorize(ctx, req)
		}
		if err != nil {
			rename := d.Rename // a method that could not decide may still know the path is a secret
			d = denialFromError(err)
			d.Rename = rename
			errored = true
		}
		d.Backend = m.Name
		steps = append(steps, Step{Method: m.Name, Outcome: d.Outcome, Reason: d.Reason})
		if d.Outcome == Allow {
			d.Steps = steps
			if d.Rename == "" {
				d.imposed = rename // an earlier method recognised the path as a key
			}
			return d, nil
		}
		if rename == "" {
			rename = d.Rename
		}
		if r := denialRank(d.Outcome); r > bestRank {
			best, bestRank = d, r
		}
	}
	switch {
	case consult == 0:
		best = Denying(Forbidden, ReasonNoMethod, fmt.Sprintf("no auth method handles action %q", req.Action))
	case bestRank <= 0: // every method abstained
		if req.HasCredentials() {
			best = Denying(Unauthenticated, ReasonBadCredentials, "credentials not accepted")
		} else {
			best = Denying(Unauthenticated, ReasonNoCredentials, "credentials required")
		}
	}
	if best.Rename == "" {
		best.Rename = rename
	}
	best.Steps = steps
	best.Undecided = errored
	return best, nil
}

// denialRank orders denials: a Forbidden (identity known) says more than an Unauthenticated.
func denialRank(o Outcome) int {
	switch o {
	case Forbidden:
		return 2
	case Unauthenticated:
		return 1
	}
	return 0
}

// ReasonError is an error that carries a machine-readable reason and a safe human message.
// Backends return it (wrapped or not) to say why they could not decide.
type ReasonError struct {
	Reason  string
	Message string
	Err     error
}

func (e *ReasonError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *ReasonError) Unwrap() error { return e.Err }

func denialFromError(err error) Decision {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		var re *ReasonError
		if errors.As(err, &re) {
			return Denying(Forbidden, re.Reason, re.Message)
		}
		return Denying(Forbidden, ReasonBackendError, "could not decide in time")
	}
	var re *ReasonError
	if errors.As(err, &re) {
		return Denying(Forbidden, re.Reason, re.Message)
	}
	return Denying(Forbidden, ReasonBackendError, "could not decide")
}
