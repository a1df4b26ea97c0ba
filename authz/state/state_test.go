package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/authz/conf"
)

type file struct {
	State Config `yaml:"state"`
}

func TestConfig(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret-pass\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		yaml    string
		want    []string // substrings of the error, each with its line; nil: valid
		backend string
	}{
		{name: "absent is memory", yaml: "{}", backend: ""},
		{name: "memory", yaml: "state: {backend: memory}", backend: BackendMemory},
		{name: "redis", yaml: "state:\n  backend: redis\n  redis: {addrs: [127.0.0.1:6379], password_file: " + pw + "}", backend: BackendRedis},
		{name: "unknown backend", yaml: "state:\n  backend: etcd", want: []string{":2: state.backend: backend \"etcd\" is not memory or redis"}},
		{name: "redis without section", yaml: "state:\n  backend: redis", want: []string{":2:", "needs a redis section"}},
		{name: "section without redis", yaml: "state:\n  redis: {addrs: [a:1]}", want: []string{":2:", "needs backend: redis"}},
		{name: "unknown key", yaml: "state:\n  backend: redis\n  redis:\n    addrs: [a:1]\n    pasword: x", want: []string{":5:", "pasword"}},
		{name: "bad addr", yaml: "state:\n  backend: redis\n  redis:\n    addrs:\n      - a:1\n      - nope", want: []string{":6:", `"nope" is not host:port`}},
		{name: "no addrs", yaml: "state:\n  backend: redis\n  redis: {db: 1}", want: []string{":3:", "at least one host:port"}},
		{name: "cluster db", yaml: "state:\n  backend: redis\n  redis:\n    addrs: [a:1, b:2]\n    db: 3", want: []string{":5:", "db must be 0 with a Redis Cluster"}},
		{name: "sentinel db ok", yaml: "state:\n  backend: redis\n  redis:\n    addrs: [a:1, b:2]\n    sentinel_master: mymaster\n    db: 3", backend: BackendRedis},
		{name: "missing password file", yaml: "state:\n  backend: redis\n  redis:\n    addrs: [a:1]\n    password_file: /nonexistent/pw", want: []string{":5:", "not a readable file"}},
		{name: "tls without enabled", yaml: "state:\n  backend: redis\n  redis:\n    addrs: [a:1]\n    tls: {server_name: x}", want: []string{":5:", "need enabled: true"}},
		{name: "cert without key", yaml: "state:\n  backend: redis\n  redis:\n    addrs: [a:1]\n    tls: {enabled: true, cert_file: " + pw + "}", want: []string{"go together"}},
		{name: "negative interval", yaml: "state:\n  backend: redis\n  redis:\n    addrs: [a:1]\n    sync_interval: -1s", want: []string{":5:", "must not be negative"}},
		{name: "node id and url", yaml: "state:\n  backend: redis\n  node_id: gh-a\n  node_url: http://10.0.0.2:8089\n  redis: {addrs: [a:1]}", backend: BackendRedis},
		{name: "node id without redis", yaml: "state:\n  node_id: gh-a", want: []string{":2:", "node_id needs backend: redis"}},
		{name: "bad node id", yaml: "state:\n  backend: redis\n  node_id: \"a b\"\n  redis: {addrs: [a:1]}", want: []string{":3:", "node_id"}},
		{name: "bad node url", yaml: "state:\n  backend: redis\n  node_url: 10.0.0.2:8089\n  redis: {addrs: [a:1]}", want: []string{":3:", "not a base URL"}},
		{name: "node url with query", yaml: "state:\n  backend: redis\n  node_url: http://h/?token=x\n  redis: {addrs: [a:1]}", want: []string{":3:", "not a base URL"}},
		{name: "braces in prefix", yaml: "state:\n  backend: redis\n  redis:\n    addrs: [a:1]\n    key_prefix: \"a{b}\"", want: []string{":5:", "braces"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			err := conf.Decode("g.yml", []byte(tt.yaml), nil, &f)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if f.State.Backend != tt.backend {
					t.Errorf("backend: got %q, want %q", f.State.Backend, tt.backend)
				}
				return
			}
			if !errors.Is(err, conf.ErrInvalid) {
				t.Fatalf("got %v, want conf.ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestPassword(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret-pass\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := RedisConfig{PasswordFile: pw}
	got, err := c.Password()
	if err != nil || got != "s3cret-pass" {
		t.Fatalf("got %q, %v; want the first line", got, err)
	}
	if p := (&RedisConfig{}).Prefix(); p != DefaultKeyPrefix {
		t.Errorf("prefix: got %q, want %q", p, DefaultKeyPrefix)
	}
}
