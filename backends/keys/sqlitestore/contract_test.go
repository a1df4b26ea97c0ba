package sqlitestore

import (
	"path/filepath"
	"testing"
	"time"

	"gatehouse/backends/keys/storetest"
)

// TestContract runs the key store contract against SQLite: every instance is another handle on
// one file, as the server and the `gatehouse keys` commands are.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) func() storetest.Store {
		path := filepath.Join(t.TempDir(), FileName)
		return func() storetest.Store { return open(t, path, WithClock(now)) }
	})
}
