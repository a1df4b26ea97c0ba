package main

import (
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/state/redisstate"
)

// TestRedisReadyzNamesNoAddress: the public /readyz says degraded while Redis is away, without
// the Redis address or its reply (those are logged).
func TestRedisReadyzNamesNoAddress(t *testing.T) {
	h := redisstate.NewHealth(time.Hour, nil)
	h.Report(&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 6379}, Err: errors.New("connection refused")})
	s := &server{gen: &generation{chain: authz.NewChain()}, state: &stateLayer{health: h}}
	w := httptest.NewRecorder()
	s.readyz(w, httptest.NewRequest("GET", "/readyz", nil))
	body := w.Body.String()
	if w.Code != 503 || !strings.Contains(body, "degraded") || !strings.Contains(body, "state store unavailable") {
		t.Errorf("got %d %s, want 503 degraded: state store unavailable", w.Code, body)
	}
	if strings.Contains(body, "10.9.8.7") || strings.Contains(body, "refused") {
		t.Errorf("readyz names the address or the error: %s", body)
	}
}
