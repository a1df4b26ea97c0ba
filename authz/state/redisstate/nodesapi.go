package redisstate

import (
	"context"
	"net/http"

	"gatehouse/authz"
	"gatehouse/authz/guard"
	"gatehouse/authz/live"
	"gatehouse/authz/state"
)

// SessionsFunc adapts a function to LocalSessions (a lister wired after the Fleet is built).
type SessionsFunc func() []live.Session

// Sessions calls f.
func (f SessionsFunc) Sessions() []live.Session { return f() }

// Authorizer decides API requests; *authz.Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *authz.Request) authz.Decision
}

// NodesJSON is GET /api/v1/nodes's answer.
type NodesJSON struct {
	Self  string       `json:"self"` // this node's id
	Nodes []state.Node `json:"nodes"`
}

// NodesHandler serves GET /api/v1/nodes, the live nodes of the fleet (those whose record has not
// expired), to callers allowed the api action under a named identity (guard.CheckNamed; Source
// "api"). 503 while Redis is unreachable. It starts no goroutines.
func NodesHandler(f *Fleet, auth Authorizer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		if d, ok := guard.CheckNamed(w, r, auth, authz.ActionAPI, "api"); !ok {
			guard.JSON(w, d.HTTPStatus(), struct {
				Error  string `json:"error"`
				Reason string `json:"reason,omitempty"`
			}{d.Message, d.Reason})
			return
		}
		nodes, err := f.Nodes(r.Context())
		if err != nil {
			guard.JSON(w, http.StatusServiceUnavailable, struct {
				Error  string `json:"error"`
				Reason string `json:"reason"`
			}{"the fleet's state (Redis) cannot be reached", authz.ReasonStateUnavailable})
			return
		}
		guard.JSON(w, http.StatusOK, NodesJSON{Self: f.Self().ID, Nodes: nodes})
	})
	return mux
}
