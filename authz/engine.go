package authz

import (
	"context"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"gatehouse/authz/logline"
)

// Engine is the single entry point every adapter and the SFU call. It evaluates the current
// Chain, writes one log line per decision and never returns Abstain. The chain is swapped
// atomically on reload; a request in flight finishes on the chain it started with. Engine starts
// no goroutines and is safe for concurrent use.
type Engine struct {
	chain atomic.Pointer[Chain]
	gen   atomic.Uint64
	log   *slog.Logger
	line  *logline.Logger // the decision line's own writer; nil: through log
	now   func() time.Time
	obs   Observer // told of every decision (observe.go); nil: none

	banStore BanStore // operators' and brute-force bans; outlives every chain
	counter  Counter  // brute-force failures
	// digestKey keys the fingerprints of failed credentials (credentialDigest): random per
	// engine, never persisted, so a fingerprint says nothing outside this process.
	digestKey maphash.Seed
	metrics   Metrics    // nil: none
	leases    PathLeases // the fleet's one publisher per path; nil: none (one process)
}

// EngineOption configures an Engine.
type EngineOption func(*Engine)

// WithClock sets the clock the engine refuses expired grants by (default time.Now).
func WithClock(now func() time.Time) EngineOption {
	return func(e *Engine) {
		if now != nil {
			e.now = now
		}
	}
}

// WithDecisionLog writes the decision line through l instead of the engine's slog logger: the
// same bytes (l renders slog's text or JSON format), at a fraction of the cost, for the one line
// every request writes. l should carry the engine logger's attributes and level, and share its
// writer. Other engine lines still go to the logger.
func WithDecisionLog(l *logline.Logger) EngineOption {
	return func(e *Engine) { e.line = l }
}

// NewEngine returns an engine evaluating chain, logging to log (nil: discard).
func NewEngine(chain *Chain, log *slog.Logger, opts ...EngineOption) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{log: log, now: time.Now, digestKey: maphash.MakeSeed()}
	for _, o := range opts {
		o(e)
	}
	if e.banStore == nil {
		e.banStore = NewMemoryBans(MaxBans)
	}
	if e.counter == nil {
		e.counter = NewMemoryCounter(DefaultMaxCounters)
	}
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
//
// With a BanStore shared by replicas, an operator ban made on another replica advances it too
// (once it reaches this one), as Ban does.
func (e *Engine) Generation() uint64 {
	g := e.gen.Load()
	if bg, ok := e.banStore.(banGenerations); ok {
		g += bg.Generation()
	}
	return g
}

// Chain returns the chain currently in force.
func (e *Engine) Chain() *Chain { return e.chain.Load() }

// Authorize decides req with the current chain under its Policy and logs the decision (never a
// secret). Whatever the chain's methods answer, the engine itself refuses a path that fails
// CheckPath, a token from a query parameter over HTTP (unless Policy.QueryTokenOnHTTP), an Allow
// whose grant has already expired, and an Allow that needs a rename the adapter cannot honour
// (Request.CanRename), and an Allow for a key or identity under a Ban; and it bounds the decision
// by Policy.DecisionTimeout. Before any method runs, it refuses a client whose address or user
// name is under a brute-force ban (not for a KindRecheck: the failures may have been someone
// else's), and afterwards counts a failed guess (Policy.BruteForce).
func (e *Engine) Authorize(ctx context.Context, req *Request) Decision {
	start := e.now()
	c := e.chain.Load()
	bf := c.Policy().BruteForce
	var (
		d      Decision
		banned bool
	)
	// A brute-force ban (an address, a user name) is earned by failures that need not be the
	// session's own (a neighbour behind the same NAT, guesses at the name from anywhere): it
	// refuses new attempts, but a re-check of a running session ignores it. An operator's ban of
	// the key or identity still ends the session (decide).
	if req.Kind != KindRecheck {
		d, banned = e.refuseBanned(req, bf, start)
	}
	end := start
	if banned {
		if req.Action.HasPath() { // no method ran: keep a stream key in the path out of the log
			if public, secret := c.PublicPath(req.Path); secret && public != "" && public != req.Path {
				d.Rename = public
			} else if secret {
				d.hidePath = true
			}
		}
	} else {
		d = e.decide(ctx, c, req)
		end = e.now()
		if req.Kind == KindAccess { // a re-check or a probe is not a guess
			e.account(ctx, req, d, bf, end)
		}
	}
	took := end.Sub(start)
	if req.Kind == KindProbe {
		// A probe (the grid asking which streams a visitor may see) is not an access attempt:
		// it is logged at debug and neither recorded as a recent decision nor counted.
		if e.logEnabled(ctx, slog.LevelDebug) {
			e.logDecisionAt(ctx, slog.LevelDebug, req, d, took)
		}
		return d
	}
	e.logDecision(ctx, req, d, took)
	e.observe(req, d, start, took)
	if e.metrics != nil {
		e.metrics.Decided(req, d, took)
	}
	return d
}

func (e *Engine) decide(ctx context.Context, c *Chain, req *Request) Decision {
	if req.Action.HasPath() {
		if err := CheckPath(req.Path); err != nil {
			return Denying(Forbidden, ReasonInvalidPath, "stream path refused: "+strings.TrimPrefix(err.Error(), ErrBadStreamPath.Error()+": "))
		}
	}
	p := c.Policy()
	asked, queryToken := req, false
	if req.Token != "" && req.TokenFrom == OriginQuery && !p.QueryTokenOnHTTP && req.HTTPBorne() {
		// The token is not offered to any method; another credential (or an anonymous grant)
		// may still allow.
		r := *req
		r.Token, r.TokenFrom, r.TokenParam = "", OriginUnknown, ""
		asked, queryToken = &r, true
	}
	d := e.run(ctx, c, p, asked)
	if req.Action.HasPath() && d.Rename == "" {
		d = e.secretPath(ctx, c, p, asked, d)
	}
	switch {
	case d.Outcome == Abstain:
		d = Denying(Unauthenticated, ReasonNoCredentials, "credentials required")
	case queryToken && d.Outcome == Unauthenticated:
		d.Reason, d.Message = ReasonQueryToken, "a token in the query string is not accepted over "+req.Protocol+"; send it in the Authorization header"
		if req.Protocol == "" {
			d.Message = "a token in the query string is not accepted over HTTP; send it in the Authorization header"
		}
	case !d.Allowed():
	case !d.Expires.IsZero() && !e.now().Before(d.Expires):
		d = refuse(d, Unauthenticated, ReasonGrantExpired, "the grant has already expired")
	case d.Rename != "" && strings.Trim(d.Rename, "/") != req.Path && !req.CanRename:
		// Allowing would publish (and list, and record) the stream under the presented name: a
		// stream key. Rename stays set so that the log shows the public path only.
		d = refuse(d, Forbidden, ReasonRenameUnsupported, "this stream key needs a rename, which "+sourceName(req)+" cannot do; use the public path with ?key=")
	default:
		now := e.now()
		if until, ok := e.banned(d, now); ok {
			d = refuse(d, Forbidden, ReasonBanned, "temporarily banned by an operator")
			d.RetryAfter = retryAfter(until, now)
		} else {
			d = e.claim(ctx, req, d)
		}
	}
	return d
}

// secretPath handles a decision, without a Rename, on a path that holds a secret the deciding
// method did not resolve: a rule allowing read on live/* decided live/<stream key>, while the
// keys method (consulted earlier, or asked now through SecretPaths) knows the key's public path.
// An allow is decided again for the public path — the client asked for that stream, and must be
// allowed it, not the literal secret name — and carries it as Rename (refused later where the
// adapter cannot rename). An allow on a secret nothing resolves (a managed key on a path it does
// not cover) is refused. A denial only keeps the secret out of the log.
func (e *Engine) secretPath(ctx context.Context, c *Chain, p Policy, req *Request, d Decision) Decision {
	public, secret := d.imposed, d.imposed != ""
	if !secret {
		public, secret = c.PublicPath(req.Path)
	}
	switch {
	case !secret:
		return d
	case public == "" || public == req.Path:
		if d.Allowed() {
			d = refuse(d, Forbidden, ReasonPathIsKey, "the stream path holds a stream key; use the key where it belongs (stream name, ?key= or the password)")
		}
		d.hidePath = true
		return d
	case !d.Allowed():
		d.Rename = public
		return d
	}
	r := *req
	r.Path = public
	again := e.run(ctx, c, p, &r)
	again.Rename, again.imposed = public, ""
	if !again.Allowed() && again.Outcome == Abstain {
		again = Denying(Unauthenticated, ReasonNoCredentials, "credentials required")
		again.Rename = public
	}
	return again
}

// refuse turns an Allow into a denial that keeps its Rename, method and steps.
func refuse(d Decision, o Outcome, reason, msg string) Decision {
	n := Denying(o, reason, msg)
	n.Rename, n.Backend, n.Identity, n.Steps = d.Rename, d.Backend, d.Identity, d.Steps
	n.KeyID, n.KeyLabel = d.KeyID, d.KeyLabel
	return n
}

func sourceName(req *Request) string {
	if req.Source == "" {
		return "this server"
	}
	return req.Source
}

// run evaluates c within the policy's decision timeout. A chain of ContextBound methods runs on
// the caller's goroutine (it returns once tctx ends). Any other chain runs in a goroutine owned
// by this call: it ends when the chain returns, which every method does once ctx ends; a method
// that ignores its context keeps only that goroutine, never the caller.
func (e *Engine) run(ctx context.Context, c *Chain, p Policy, req *Request) Decision {
	limit := p.DecisionTimeout
	if limit <= 0 {
		limit = DefaultDecisionTimeout
	}
	if c.BoundByContext() {
		// The timer is armed only if a method waits (deadlineCtx): most inline decisions do not.
		tctx, cancel := withLazyDeadline(ctx, limit)
		defer cancel()
		d, _ := c.Authorize(tctx, req) // a Chain never returns an error
		if d.Outcome != Allow && d.Undecided && tctx.Err() != nil {
			d.hidePath = d.Rename == "" // as below: nothing resolved the path in time
		}
		return deadline(ctx, tctx, d, false)
	}
	tctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan Decision, 1)
	go func() {
		d, _ := c.Authorize(tctx, req) // a Chain never returns an error
		done <- d
	}()
	var (
		d        Decision
		timedOut bool
	)
	select {
	case d = <-done:
	case <-tctx.Done():
		select {
		case d = <-done:
		default:
			// Nothing answered: the path may be a stream key no method has resolved yet.
			d, timedOut = Decision{Outcome: Forbidden, hidePath: true}, true
		}
	}
	return deadline(ctx, tctx, d, timedOut)
}

// deadline marks d, decided under tctx (derived from the caller's ctx), as Undecided when the
// chain was silent (timedOut) or could not decide by the deadline, with the reason that says
// whose deadline it was.
func deadline(ctx, tctx context.Context, d Decision, timedOut bool) Decision {
	// A definite answer that came at the deadline stays definite (a revoked key must not count
	// as "could not decide"); only silence, or a chain that itself could not decide, is Undecided.
	if timedOut || (d.Outcome != Allow && d.Undecided && tctx.Err() != nil) {
		d.Undecided = true
		if ctx.Err() == nil { // our deadline, not the caller's cancellation
			d.Reason, d.Message = ReasonTimeout, "could not decide in time"
		} else if d.Reason == "" {
			d.Reason, d.Message = ReasonCanceled, "request canceled before a decision"
		}
	}
	return d
}

// logDecision writes the decision's log line. hidden keeps the request path out of it: it holds
// a secret with no public path to show instead.
func (e *Engine) logDecision(ctx context.Context, req *Request, d Decision, took time.Duration) {
	level := slog.LevelInfo
	if !d.Allowed() && req.HasCredentials() && req.Kind == KindAccess {
		level = slog.LevelWarn // a failed attempt that carried credentials: what fail2ban watches
	}
	if !e.logEnabled(ctx, level) {
		return
	}
	e.logDecisionAt(ctx, level, req, d, took)
}

func (e *Engine) logEnabled(ctx context.Context, level slog.Level) bool {
	if e.line != nil {
		return e.line.Enabled(level)
	}
	return e.log.Enabled(ctx, level)
}

func (e *Engine) logDecisionAt(ctx context.Context, level slog.Level, req *Request, d Decision, took time.Duration) {
	path := loggedPath(req, d) // never a stream key
	if e.line != nil {         // the same fields, in the same order, as the slog attributes below
		ln := e.line.Begin(time.Now(), level, "decision")
		ln.String("action", string(req.Action))
		ln.String("path", path)
		ln.String("protocol", req.Protocol)
		ln.String("source", req.Source)
		ln.String("result", d.Outcome.String())
		ln.String("backend", d.Backend)
		ln.String("reason", d.Reason)
		ln.Duration("took", took)
		if req.IP.IsValid() {
			var ip [64]byte
			ln.Bytes("ip", req.IP.AppendTo(ip[:0]))
		}
		if d.Identity != "" {
			ln.String("identity", d.Identity)
		}
		if d.KeyID != "" {
			ln.String("key_id", d.KeyID)
		}
		if !d.Expires.IsZero() {
			ln.Time("expires", d.Expires)
			if !req.CanEndAt {
				ln.Bool("expiry_enforced", false)
			}
		}
		if d.Undecided {
			ln.Bool("undecided", true)
		}
		ln.End()
		return
	}
	var buf [14]slog.Attr // every attribute below: no slice on the heap
	attrs := append(buf[:0],
		slog.String("action", string(req.Action)),
		slog.String("path", path),
		slog.String("protocol", req.Protocol),
		slog.String("source", req.Source),
		slog.String("result", d.Outcome.String()),
		slog.String("backend", d.Backend),
		slog.String("reason", d.Reason),
		slog.Duration("took", took),
	)
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
		if !req.CanEndAt {
			attrs = append(attrs, slog.Bool("expiry_enforced", false)) // the server cannot end it
		}
	}
	if d.Undecided {
		attrs = append(attrs, slog.Bool("undecided", true))
	}
	e.log.LogAttrs(ctx, level, "decision", attrs...)
}
