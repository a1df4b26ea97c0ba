package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
}

// NewChain returns a chain over methods, evaluated in the order given.
func NewChain(methods ...Method) *Chain {
	return &Chain{methods: slices.Clone(methods)}
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
