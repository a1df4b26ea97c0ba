package authz

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"time"

	"gatehouse/authz/clientip"
)

// BruteForce configures the engine's brute-force protection, for every adapter and the SFU at
// once. Failures that carried credentials (a missing credential is not a guess; see
// countsAsFailure) are counted per client address — IPv4 per address, IPv6 per /64 — and per
// presented user name (hashed: BanUser); the same credentials on the same path failing again
// within Window are one failure, not one per attempt (Counter.Fail). A subject with MaxFailures (UserMaxFailures for user
// names) within Window is banned for Ban, doubling with each ban in a row up to MaxBan; while
// banned, every request of the address or user is refused at once with reason banned and
// Decision.RetryAfter, before any method runs (no password hash, no upstream call, nothing held
// open). A success resets the counters of its address and user but not their strikes. Clients
// whose address is unknown (UnknownIP) are counted together, as one subject with its own higher
// threshold (UnknownMaxFailures). Bans live in the engine's BanStore and so survive reloads; the
// policy itself reloads with the chain.
//
// The zero BruteForce counts nothing (unit tests and embedders that want no bans);
// DefaultBruteForce is what gatehouse runs with unless auth.bruteforce says otherwise.
type BruteForce struct {
	MaxFailures     int // per address within Window before a ban; 0: addresses are not counted
	UserMaxFailures int // per user name within Window; 0: user names are not counted
	// UnknownMaxFailures is the threshold of the clients whose address is unknown (forwarding
	// headers that contradict each other, an untrusted local proxy: see clientip.From), counted
	// and banned together as the subject {ip, UnknownIP}; 0: they are not counted.
	//
	// The trade-off: without it, a client that makes its address unknown (say, by sending an
	// X-Real-IP that disagrees with X-Forwarded-For through a trusted proxy) could guess keys and
	// passwords at any rate, limited only by the user-name counter, and not at all for stream
	// keys. Counting such clients under one shared subject bounds them as a group without ever
	// banning a real address, but a ban of the group refuses every client in it: if a proxy is
	// misconfigured so that every client is unknown, one guesser locks everyone out for the
	// ban's length. So the threshold is higher than MaxFailures (honest clients behind a broken
	// proxy fail now and then, and share it), a success does not reset the group's count (one
	// client's success says nothing about another's guesses), and the operator sees the ban as
	// ip:unknown in the ban list and can lift it.
	UnknownMaxFailures int
	Window             time.Duration // 0: 1m
	Ban                time.Duration // the first ban; 0: 1m
	MaxBan             time.Duration // the cap of the doubling; 0: 1h
	// Allow lists the operator's own networks: never counted, never banned by address (a user
	// name they present is still counted).
	Allow []netip.Prefix
}

// DefaultBruteForce returns gatehouse's defaults: 10 failures from one address (or 50 for one
// user name, from anywhere, or 100 from all clients whose address is unknown together) within 1
// minute ban it for 1 minute, doubling with each ban in a row up to 1 hour. The user and unknown
// thresholds are higher because their bans lock out others too.
func DefaultBruteForce() BruteForce {
	return BruteForce{MaxFailures: 10, UserMaxFailures: 50, UnknownMaxFailures: 100,
		Window: time.Minute, Ban: time.Minute, MaxBan: time.Hour}
}

// Enabled reports whether anything is counted.
func (b BruteForce) Enabled() bool {
	return b.MaxFailures > 0 || b.UserMaxFailures > 0 || b.UnknownMaxFailures > 0
}

func (b BruteForce) window() time.Duration { return orDuration(b.Window, time.Minute) }
func (b BruteForce) maxBan() time.Duration { return orDuration(b.MaxBan, time.Hour) }

// banFor returns the length of the strike-th ban in a row.
func (b BruteForce) banFor(strike int) time.Duration {
	d, max := orDuration(b.Ban, time.Minute), b.maxBan()
	for i := 1; i < strike && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// allowed reports whether ip is in the operator's allow-list.
func (b BruteForce) allowed(ip netip.Addr) bool {
	for _, p := range b.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// UnknownIP is the BanIP value under which the clients whose address is unknown are counted
// and banned together (BruteForce.UnknownMaxFailures).
const UnknownIP = "unknown"

// unknownSubject is the subject of every client whose address is unknown.
var unknownSubject = BanSubject{BanIP, UnknownIP}

// IPSubject returns the ban subject of a client address: the address itself for IPv4, its /64
// for IPv6 (one host usually holds a whole /64); ok is false for the zero Addr (unknown: see
// UnknownIP).
func IPSubject(ip netip.Addr) (BanSubject, bool) {
	p := clientip.Key(ip)
	if !p.IsValid() {
		return BanSubject{}, false
	}
	return BanSubject{BanIP, p.String()}, true
}

// UserSubject returns the ban subject of a presented user name: a short hash, so that a
// password typed into the user field never reaches a ban list or a log line.
func UserSubject(user string) BanSubject {
	h := sha256.Sum256([]byte("gatehouse ban subject\x00" + user))
	return BanSubject{BanUser, hex.EncodeToString(h[:8])}
}

// WithBanStore replaces the engine's ban store (default NewMemoryBans(MaxBans)).
func WithBanStore(s BanStore) EngineOption {
	return func(e *Engine) {
		if s != nil {
			e.banStore = s
		}
	}
}

// WithCounter replaces the engine's failure counter (default NewMemoryCounter(DefaultMaxCounters)).
func WithCounter(c Counter) EngineOption {
	return func(e *Engine) {
		if c != nil {
			e.counter = c
		}
	}
}

// subjects returns the address and user subjects req is counted under with policy b, each with
// its threshold (0: not counted). An unknown address is counted under the shared unknownSubject.
func (b BruteForce) subjects(req *Request) (ip BanSubject, ipMax int, user BanSubject, userMax int) {
	if s, ok := IPSubject(req.IP); ok {
		if b.MaxFailures > 0 && !b.allowed(req.IP.Unmap()) {
			ip, ipMax = s, b.MaxFailures
		}
	} else if b.UnknownMaxFailures > 0 {
		ip, ipMax = unknownSubject, b.UnknownMaxFailures
	}
	if b.UserMaxFailures > 0 && req.User != "" {
		user, userMax = UserSubject(req.User), b.UserMaxFailures
	}
	return
}

// refuseBanned returns a banned denial when req's address or user name is under a ban at now.
func (e *Engine) refuseBanned(req *Request, b BruteForce, now time.Time) (Decision, bool) {
	if m, ok := e.banStore.(interface{ empty() bool }); ok && m.empty() {
		return Decision{}, false
	}
	ips, hasIP := IPSubject(req.IP)
	allowListed := hasIP && b.allowed(req.IP.Unmap())
	if !hasIP {
		ips = unknownSubject // the unknown addresses' shared ban
	}
	if !allowListed {
		if until, ok := e.banStore.Until(ips, now); ok {
			return bannedDecision(until, now, "too many failed attempts from this address; try again later"), true
		}
	}
	// The operator's own networks are exempt from user-name bans too: anyone could otherwise
	// lock the admin out from a few addresses.
	if req.User != "" && !allowListed {
		if until, ok := e.banStore.Until(UserSubject(req.User), now); ok {
			return bannedDecision(until, now, "too many failed attempts for this user; try again later"), true
		}
	}
	return Decision{}, false
}

func bannedDecision(until, now time.Time, msg string) Decision {
	d := Denying(Forbidden, ReasonBanned, msg)
	d.RetryAfter = retryAfter(until, now)
	return d
}

// retryAfter rounds the rest of a ban up to whole seconds (what Retry-After carries).
func retryAfter(until, now time.Time) time.Duration {
	d := until.Sub(now)
	if d <= 0 {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// notAGuess lists the Unauthenticated reasons of credentials that were once good (expired,
// revoked) or refused by policy: a client retrying them is not guessing.
var notAGuess = map[string]bool{
	ReasonNoCredentials: true, ReasonQueryToken: true, ReasonGrantExpired: true,
	"token_expired": true, "token_not_yet_valid": true, "key_expired": true, "key_revoked": true,
}

// countsAsFailure reports whether d, the answer to req, is a failed guess: a definite
// Unauthenticated denial (never Undecided: an IdP or upstream that could not decide is not the
// client's fault) of a request that presented credentials.
func countsAsFailure(req *Request, d Decision) bool {
	return d.Outcome == Unauthenticated && !d.Undecided && req.HasCredentials() && !notAGuess[d.Reason]
}

// account counts d's failure (or resets the counters on a success) and bans a subject that
// reached its threshold. The ban line is the one fail2ban matches (see README).
func (e *Engine) account(ctx context.Context, req *Request, d Decision, b BruteForce, now time.Time) {
	if !b.Enabled() || d.Reason == ReasonBanned {
		return
	}
	if d.Allowed() {
		if !req.HasCredentials() { // an anonymous grant resets nothing
			return
		}
		if c, ok := e.counter.(interface{ empty() bool }); ok && c.empty() {
			return // nothing to reset: no hashing of the user name on the common path
		}
		ip, ipMax, user, userMax := b.subjects(req)
		if ipMax > 0 && ip != unknownSubject { // the unknown group is shared: see UnknownMaxFailures
			e.counter.Reset(ip)
		}
		if userMax > 0 {
			e.counter.Reset(user)
		}
		return
	}
	if !countsAsFailure(req, d) {
		return
	}
	ip, ipMax, user, userMax := b.subjects(req)
	if e.metrics != nil && (ipMax > 0 || userMax > 0) {
		e.metrics.Failed()
	}
	fp := e.credentialDigest(req)
	if ipMax > 0 && e.counter.Fail(ip, fp, now, b.window()) >= ipMax {
		e.banFailing(ctx, req, ip, b, ipMax, now)
	}
	if userMax > 0 && e.counter.Fail(user, fp, now, b.window()) >= userMax {
		e.banFailing(ctx, req, user, b, userMax, now)
	}
}

// credentialDigest returns a keyed hash of what req presented — action, path (it may carry a
// stream key), credentials and the raw query (an http method receives it, so a guess may differ
// only there; a repeat differing in a query parameter then counts again, which never undercounts
// distinct guesses) — for Counter.Fail to tell a repeated failure from a new guess.
// The key is random per engine (maphash.Seed) and the digest never leaves memory, so it reveals
// nothing of the credential; a collision (1 in 2^64) only leaves one guess uncounted. Each field
// is length-prefixed so that no two different requests write the same bytes.
func (e *Engine) credentialDigest(req *Request) uint64 {
	var h maphash.Hash
	h.SetSeed(e.digestKey)
	var n [8]byte
	for _, f := range [...]string{string(req.Action), req.Path, req.User, req.Pass, req.Token, req.Key, req.Query} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.WriteString(f)
	}
	if fp := h.Sum64(); fp != 0 {
		return fp
	}
	return 1 // 0 means "no fingerprint"
}

func (e *Engine) banFailing(ctx context.Context, req *Request, s BanSubject, b BruteForce, failures int, now time.Time) {
	// Requests admitted just before the ban (waiting for a password check when it came) fail
	// after it: they are no new strike. Counting them banned a source again and again within
	// seconds, doubling its ban each time (1 m to 1 h in four seconds under load).
	if _, banned := e.banStore.Until(s, now); banned {
		return
	}
	strike := e.counter.Strike(s, now, 2*b.maxBan())
	length := b.banFor(strike)
	err := e.banStore.Put(Ban{Subject: s, Until: now.Add(length), Reason: "bruteforce", Strike: strike}, now)
	attrs := []slog.Attr{
		slog.String("ip", ipString(req.IP)), // first: what fail2ban's <HOST> matches
		slog.String("kind", s.Kind),
		slog.String("subject", s.Value),
		slog.Int("failures", failures),
		slog.Duration("ban", length),
		slog.Int("strike", strike),
		slog.String("source", req.Source),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		e.log.LogAttrs(ctx, slog.LevelError, "bruteforce ban failed", attrs...)
		return
	}
	e.log.LogAttrs(ctx, slog.LevelWarn, "bruteforce ban", attrs...)
	if e.metrics != nil {
		e.metrics.Banned(s.Kind)
	}
}

func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	return ip.String()
}

// String formats a subject as kind:value (as `gatehouse bans list` shows it).
func (s BanSubject) String() string { return s.Kind + ":" + s.Value }
