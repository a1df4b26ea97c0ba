package authz

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// Engine is the single entry point every adapter and the SFU call. It evaluates the current
// Chain, writes one log line per decision and never returns Abstain. The chain is swapped
// atomically on reload; a request in flight finishes on the chain it started with. Engine starts
// no goroutines and is safe for concurrent use.
type Engine struct {
	chain atomic.Pointer[Chain]
	gen   atomic.Uint64
	log   *slog.Logger
	now   func() time.Time
}

// NewEngine returns an engine evaluating chain, logging to log (nil: discard).
func NewEngine(chain *Chain, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{log: log, now: time.Now}
	e.chain.Store(chain)
	return e
}

// Swap replaces the chain used by new requests and returns the previous one. Every Swap
// advances Generation.
func (e *Engine) Swap(c *Chain) *Chain {
	old := e.chain.Swap(c)
	e.gen.Add(1)
	return old
}

// Generation counts the chains this engine has used: 0 for the one it was built with, +1 per
// Swap. Anything that caches a grant outside the engine (a signed cookie, a session) binds it to
// the generation it was decided in, so a reload that revoked it is noticed.
func (e *Engine) Generation() uint64 { return e.gen.Load() }

// Chain returns the chain currently in force.
func (e *Engine) Chain() *Chain { return e.chain.Load() }

// Authorize decides req with the current chain and logs the decision (never a secret).
func (e *Engine) Authorize(ctx context.Context, req *Request) Decision {
	start := e.now()
	var d Decision
	if req.Action.HasPath() {
		if err := CheckPath(req.Path); err != nil {
			d = Denying(Forbidden, ReasonInvalidPath, "stream path refused: "+strings.TrimPrefix(err.Error(), ErrBadStreamPath.Error()+": "))
			e.logDecision(ctx, req, d, false, e.now().Sub(start))
			return d
		}
	}
	chain := e.chain.Load()
	d, _ = chain.Authorize(ctx, req) // a Chain never returns an error
	if d.Outcome == Abstain {
		d = Denying(Unauthenticated, ReasonNoCredentials, "credentials required")
	}
	hidden := false
	if req.Action.HasPath() && d.Rename == "" {
		// The method that decided may not know the path holds a secret (a rule allowing read
		// on live/* decides live/<stream key> without the keys method): ask every method.
		if public, secret := chain.PublicPath(req.Path); secret {
			if public != "" && public != req.Path {
				d.Rename = public
			} else {
				hidden = true
			}
		}
	}
	e.logDecision(ctx, req, d, hidden, e.now().Sub(start))
	return d
}

// logDecision writes the decision's log line. hidden keeps the request path out of it: it holds
// a secret with no public path to show instead.
func (e *Engine) logDecision(ctx context.Context, req *Request, d Decision, hidden bool, took time.Duration) {
	level := slog.LevelInfo
	if !d.Allowed() && req.HasCredentials() {
		level = slog.LevelWarn // a failed attempt that carried credentials: what fail2ban watches
	}
	if !e.log.Enabled(ctx, level) {
		return
	}
	path := req.Path
	switch {
	case d.Rename != "":
		path = d.Rename // the presented path was a secret: a stream key used as the stream name
	case d.Reason == ReasonInvalidPath, hidden:
		path = "" // nothing resolved it, and it may embed a stream key
	}
	attrs := []slog.Attr{
		slog.String("action", string(req.Action)),
		slog.String("path", path),
		slog.String("protocol", req.Protocol),
		slog.String("source", req.Source),
		slog.String("result", d.Outcome.String()),
		slog.String("backend", d.Backend),
		slog.String("reason", d.Reason),
		slog.Duration("took", took),
	}
	if req.IP.IsValid() {
		attrs = append(attrs, slog.String("ip", req.IP.String()))
	}
	if d.Identity != "" {
		attrs = append(attrs, slog.String("identity", d.Identity))
	}
	if d.KeyID != "" {
		attrs = append(attrs, slog.String("key_id", d.KeyID))
	}
	if !d.Expires.IsZero() {
		attrs = append(attrs, slog.Time("expires", d.Expires))
	}
	if d.Undecided {
		attrs = append(attrs, slog.Bool("undecided", true))
	}
	e.log.LogAttrs(ctx, level, "decision", attrs...)
}
