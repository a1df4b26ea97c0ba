package conf

import (
	"strings"
	"testing"
)

// TestNonZero: a key tagged conf:"nonzero" refuses a written 0 (which would silently mean the
// default) with its line; an absent key, a positive value and untagged keys decode as written.
func TestNonZero(t *testing.T) {
	type section struct {
		Timeout Duration `yaml:"timeout" conf:"nonzero"`
		Size    int      `yaml:"size" conf:"nonzero"`
		Leeway  Duration `yaml:"leeway"`
	}
	type file struct {
		S section `yaml:"s"`
	}
	for _, tt := range []struct{ name, src, want string }{
		{"absent", "s: {leeway: 0s}\n", ""},
		{"positive", "s: {timeout: 2s, size: 3}\n", ""},
		{"zero duration", "s:\n  size: 1\n  timeout: 0s\n", "f.yml:3: s.timeout: timeout must not be 0"},
		{"bare zero duration", "s:\n  timeout: 0\n", "f.yml:2: s.timeout: timeout must not be 0"},
		{"zero number", "s:\n  size: 0\n", "f.yml:2: s.size: size must not be 0"},
		{"zero from the environment", "s:\n  size: ${ZERO}\n", "f.yml:2: s.size: size must not be 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := Decode("f.yml", []byte(tt.src), func(string) (string, bool) { return "0", true }, &f)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
