package statetest

import (
	"testing"
	"time"

	"gatehouse/authz"
)

// TestContractInProcess runs the contract against the engine's in-process defaults: bans and
// counters in memory, one instance, no leases.
func TestContractInProcess(t *testing.T) {
	Run(t, Target{Open: func(t *testing.T, now func() time.Time) func(NodeOptions) Node {
		n := Node{Bans: authz.NewMemoryBans(0), Counter: authz.NewMemoryCounter(0)}
		return func(NodeOptions) Node { return n }
	}})
}
