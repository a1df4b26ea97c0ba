package conf_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

type sample struct {
	Listen  string        `yaml:"listen"`
	Port    int           `yaml:"port"`
	Timeout conf.Duration `yaml:"timeout"`
	Auth    struct {
		Users []struct {
			User        string             `yaml:"user"`
			Permissions []authz.Permission `yaml:"permissions"`
		} `yaml:"users"`
	} `yaml:"auth"`
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDecodeOK(t *testing.T) {
	src := `
listen: "${HOST:-127.0.0.1}:${PORT}"
port: ${PORT}
timeout: 1500ms
auth:
  users:
    - user: ${SECRET_USER}
      permissions: [{action: read, path: "live/*"}, {action: api}]
`
	var s sample
	err := conf.Decode("c.yml", []byte(src), env(map[string]string{"PORT": "9000", "SECRET_USER": "a #b: c"}), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Listen != "127.0.0.1:9000" || s.Port != 9000 || s.Timeout.Std() != 1500*time.Millisecond {
		t.Errorf("got %+v", s)
	}
	if got := s.Auth.Users[0].User; got != "a #b: c" {
		t.Errorf("got user %q, want the env value verbatim (no YAML injection)", got)
	}
	if len(s.Auth.Users[0].Permissions) != 2 || s.Auth.Users[0].Permissions[0].Path.String() != "live/*" {
		t.Errorf("got permissions %v", s.Auth.Users[0].Permissions)
	}
}

func TestDecodeErrors(t *testing.T) {
	src := `listen: ":8089"
lisen: oops
port: abc
timeout: soon
auth:
  users:
    - user: a
      permissions:
        - action: publish
          path: "~("
        - path: cam
        - action: fly
        - {action: read, paths: x}
      extra: 1
secret: ${MISSING}
`
	var s sample
	err := conf.Decode("c.yml", []byte(src), env(nil), &s)
	var ce *conf.Errors
	if !errors.As(err, &ce) || !errors.Is(err, conf.ErrInvalid) {
		t.Fatalf("got %v, want *conf.Errors", err)
	}
	want := []string{
		"c.yml:2: lisen: unknown key",
		"c.yml:3: port: cannot unmarshal",
		"c.yml:4: timeout: invalid duration",
		"c.yml:9: auth.users[0].permissions[0]",
		"regular expression",
		"c.yml:11: auth.users[0].permissions[1]",
		"permission has no action",
		"c.yml:12: auth.users[0].permissions[2]",
		`unknown action "fly"`,
		`c.yml:13: auth.users[0].permissions[3]`,
		`unknown key "paths"`,
		"c.yml:14: auth.users[0].extra: unknown key",
		"c.yml:15: secret",
		"MISSING is not set",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("errors lack %q; got:\n%s", w, msg)
		}
	}
	if n := len(ce.Problems); n < 8 {
		t.Errorf("got %d problems, want every problem reported at once:\n%s", n, msg)
	}
}

func TestDecodeSyntaxError(t *testing.T) {
	var s sample
	err := conf.Decode("c.yml", []byte("listen: [\n"), nil, &s)
	var ce *conf.Errors
	if !errors.As(err, &ce) || ce.Problems[0].Line == 0 {
		t.Fatalf("got %v, want a located syntax error", err)
	}
}

func TestDecodeEmpty(t *testing.T) {
	var s sample
	if err := conf.Decode("c.yml", nil, nil, &s); err != nil {
		t.Errorf("empty file: got %v, want nil", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("listen: x\nauth:\n  users:\n    - user: a\n      permissions: [{action: read}]\n"))
	f.Add([]byte("port: ${X:-1}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sample
		err := conf.Decode("f.yml", b, env(map[string]string{"X": "2"}), &s)
		if err != nil && !errors.Is(err, conf.ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}
