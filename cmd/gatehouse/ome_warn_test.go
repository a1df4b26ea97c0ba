package main

import (
	"strings"
	"testing"
)

// TestOMEWithoutSecretWarned: a hooks.ome section without a secret makes /hooks/ome accept
// unsigned callbacks; gatehouse says so at start with a WARN line. Without the section, or with
// a secret, it says nothing.
func TestOMEWithoutSecretWarned(t *testing.T) {
	for _, tt := range []struct {
		name, hooks string
		warn        bool
	}{
		{"ome configured without a secret", "hooks:\n  ome:\n    token_params: [access_key]\n", true},
		{"ome with a secret", "hooks:\n  ome:\n    secret: ome-secret-key\n", false},
		{"no ome section", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, logs := startServe(t, tt.hooks)
			line := `level=WARN msg=config warning="hooks.ome: no secret`
			if got := strings.Contains(logs.String(), line); got != tt.warn {
				t.Errorf("warned: got %v, want %v\n%s", got, tt.warn, logs.String())
			}
		})
	}
}
