package sfu

import (
	"net/http"
	"net/netip"
	"sync"
	"time"

	"gatehouse/authz/clientip"
	"gatehouse/authz/guard"
)

// limiter counts WHIP/WHEP sessions, including those still being negotiated, globally, per
// client network and per path (viewers), so a flood of offers is refused before any pion
// PeerConnection exists. All methods are safe for concurrent use.
type limiter struct {
	maxTotal, maxClient, maxPath int

	mu       sync.Mutex
	total    int
	byClient map[netip.Prefix]int
	byPath   map[string]int
}

func newLimiter(maxTotal, maxClient, maxPath int) *limiter {
	return &limiter{
		maxTotal: maxTotal, maxClient: maxClient, maxPath: maxPath,
		byClient: map[netip.Prefix]int{}, byPath: map[string]int{},
	}
}

// lease is one session's slot. release is idempotent.
type lease struct {
	l      *limiter
	client netip.Prefix
	path   string // "" until addPath
	done   bool   // guarded by l.mu
}

// clientKey groups addresses that one client controls (see clientip.Key).
func clientKey(a netip.Addr) netip.Prefix { return clientip.Key(a) }

// capError is a refusal by a cap: the HTTP status (503 for the global and per-path caps, 429
// for the per-client cap) and a message safe to show.
type capError struct {
	status int
	msg    string
}

// acquire takes a global and a per-client slot for a client at a, or reports which cap is hit.
func (l *limiter) acquire(a netip.Addr) (*lease, *capError) {
	k := clientKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.maxTotal {
		return nil, &capError{http.StatusServiceUnavailable, "the server has too many sessions"}
	}
	if l.byClient[k] >= l.maxClient {
		return nil, &capError{http.StatusTooManyRequests, "too many sessions from this client"}
	}
	l.total++
	l.byClient[k]++
	return &lease{l: l, client: k}, nil
}

// addPath takes a viewer slot on path for le, or reports that the path is full.
func (le *lease) addPath(path string) *capError {
	l := le.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byPath[path] >= l.maxPath {
		return &capError{http.StatusServiceUnavailable, "the stream has too many viewers"}
	}
	l.byPath[path]++
	le.path = path
	return nil
}

// release frees le's slots; later calls do nothing. A nil lease is allowed.
func (le *lease) release() {
	if le == nil {
		return
	}
	l := le.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if le.done {
		return
	}
	le.done = true
	l.total--
	if l.byClient[le.client]--; l.byClient[le.client] <= 0 {
		delete(l.byClient, le.client)
	}
	if le.path != "" {
		if l.byPath[le.path]--; l.byPath[le.path] <= 0 {
			delete(l.byPath, le.path)
		}
	}
}

// counts returns the sessions held globally, by the client at a, and on path (tests).
func (l *limiter) counts(a netip.Addr, path string) (total, client, onPath int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.byClient[clientKey(a)], l.byPath[path]
}

// refuse writes a cap refusal: its status, Retry-After (seconds) and a problem body.
func refuse(w http.ResponseWriter, e *capError, retryAfter time.Duration) {
	guard.SetRetryAfter(w.Header(), retryAfter)
	problem(w, e.status, e.msg)
}
