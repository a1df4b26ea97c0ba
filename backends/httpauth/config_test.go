package httpauth

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
)

// file is how gatehouse's config embeds this backend.
type file struct {
	HTTP Config `yaml:"http"`
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestConfigDecode(t *testing.T) {
	src := `http:
  address: https://auth.example.com/mediamtx?site=a
  headers:
    X-Gatehouse-Secret: ${AUTH_SECRET}
  fingerprint: 33949E05:fffb5ff3e8aa16f8213a6251b4d9363804ba53233c4da9a46d6f2739
  timeout: 1500ms
  cache:
    deny_ttl: 0s
  exclude:
    - action: metrics
`
	var got file
	if err := conf.Decode("gatehouse.yml", []byte(src), env(map[string]string{"AUTH_SECRET": "from-env"}), &got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	metrics, _ := authz.NewPermission("metrics", "", nil)
	want := Config{
		Address:     "https://auth.example.com/mediamtx?site=a",
		Headers:     map[string]string{"X-Gatehouse-Secret": "from-env"},
		Fingerprint: "33949E05:fffb5ff3e8aa16f8213a6251b4d9363804ba53233c4da9a46d6f2739",
		Timeout:     conf.Duration(1500 * time.Millisecond),
		Cache:       CacheConfig{AllowTTL: conf.Duration(DefaultAllowTTL), DenyTTL: 0, Size: DefaultCacheSize},
		Exclude:     authz.Permissions{metrics},
	}
	if !reflect.DeepEqual(got.HTTP, want) {
		t.Errorf("got %+v\nwant %+v", got.HTTP, want)
	}
	b, err := New(got.HTTP)
	if err != nil {
		t.Fatalf("New on a decoded config: %v", err)
	}
	_ = b.Close()
}

func TestConfigDefaults(t *testing.T) {
	var got file
	if err := conf.Decode("gatehouse.yml", []byte("http:\n  address: http://127.0.0.1:9000/auth\n"), nil, &got); err != nil {
		t.Fatal(err)
	}
	want := Config{Address: "http://127.0.0.1:9000/auth", Timeout: conf.Duration(DefaultTimeout), Cache: DefaultCache()}
	if !reflect.DeepEqual(got.HTTP, want) {
		t.Errorf("got %+v, want %+v", got.HTTP, want)
	}
}

func TestConfigErrors(t *testing.T) {
	type problem struct {
		line int
		path string // "" : not checked (a mapping's own errors share its first key's position)
		msg  string // substring
	}
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{
			name: "address missing",
			src:  "http:\n  timeout: 1s\n",
			want: []problem{{2, "", "address is required"}},
		},
		{
			name: "address not http",
			src:  "http:\n  address: ftp://auth.example.com/\n",
			want: []problem{{2, "http.address", "must start with http:// or https://"}},
		},
		{
			name: "address without host",
			src:  "http:\n  address: http:///auth\n",
			want: []problem{{2, "http.address", "no host"}},
		},
		{
			name: "address unparsable, not echoed",
			src:  "http:\n  address: \"http://u:pw-secret@[::1\"\n",
			want: []problem{{2, "http.address", "not a valid URL"}},
		},
		{
			name: "fingerprint not hex",
			src:  "http:\n  address: https://a.example/\n  fingerprint: abc\n",
			want: []problem{{3, "http.fingerprint", "64 hex digits"}},
		},
		{
			name: "fingerprint with http",
			src:  "http:\n  address: http://a.example/\n  fingerprint: " + strings.Repeat("ab", 32) + "\n",
			want: []problem{{3, "http.fingerprint", "needs an https:// address"}},
		},
		{
			name: "header reserved",
			src:  "http:\n  address: http://a.example/\n  headers:\n    content-type: text/plain\n",
			want: []problem{{4, "http.headers.content-type", "set by gatehouse"}},
		},
		{
			name: "header name invalid",
			src:  "http:\n  address: http://a.example/\n  headers:\n    \"Bad Name\": x\n",
			want: []problem{{4, "http.headers.Bad Name", "not a valid HTTP field name"}},
		},
		{
			name: "header value empty",
			src:  "http:\n  address: http://a.example/\n  headers:\n    X-Secret: \"${EMPTY:-}\"\n",
			want: []problem{{4, "http.headers.X-Secret", "empty value"}},
		},
		{
			name: "header value with newline, value not echoed",
			src:  "http:\n  address: http://a.example/\n  headers:\n    X-Secret: \"hdr-secret\\r\\nX-Evil: 1\"\n",
			want: []problem{{4, "http.headers.X-Secret", "control characters"}},
		},
		{
			name: "header twice",
			src:  "http:\n  address: http://a.example/\n  headers:\n    X-A: a\n    x-a: b\n",
			want: []problem{{5, "http.headers.x-a", "given twice"}},
		},
		{
			name: "header env var unset",
			src:  "http:\n  address: http://a.example/\n  headers:\n    X-Secret: ${NOT_SET}\n",
			want: []problem{{4, "http.headers.X-Secret", "NOT_SET is not set"}, {4, "http.headers.X-Secret", "empty value"}},
		},
		{
			name: "timeout zero",
			src:  "http:\n  address: http://a.example/\n  timeout: 0s\n",
			want: []problem{{3, "http.timeout", "must be positive"}},
		},
		{
			name: "timeout garbage",
			src:  "http:\n  address: http://a.example/\n  timeout: soon\n",
			want: []problem{{3, "http.timeout", "invalid duration"}},
		},
		{
			name: "cache size negative",
			src:  "http:\n  address: http://a.example/\n  cache:\n    size: -1\n",
			want: []problem{{4, "http.cache.size", "between 0"}},
		},
		{
			name: "cache unknown key",
			src:  "http:\n  address: http://a.example/\n  cache:\n    ttl: 5s\n",
			want: []problem{{4, "http.cache.ttl", "unknown key"}},
		},
		{
			name: "unknown key",
			src:  "http:\n  adress: http://a.example/\n",
			want: []problem{{2, "http.adress", "unknown key"}, {2, "", "address is required"}},
		},
		{
			name: "exclude bad action",
			src:  "http:\n  address: http://a.example/\n  exclude:\n    - action: watch\n",
			want: []problem{{4, "http.exclude[0].action", "unknown action"}},
		},
		{
			name: "every problem at once",
			src:  "http:\n  address: gopher://a.example/\n  timeout: 0s\n  cache:\n    size: -3\n",
			want: []problem{{2, "http.address", "http://"}, {3, "http.timeout", "positive"}, {5, "http.cache.size", "between 0"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got file
			err := conf.Decode("gatehouse.yml", []byte(tc.src), env(map[string]string{"EMPTY": ""}), &got)
			var ce *conf.Errors
			if !errors.As(err, &ce) || !errors.Is(err, conf.ErrInvalid) {
				t.Fatalf("got %v, want *conf.Errors", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q repeats a secret value", err)
			}
			for _, w := range tc.want {
				found := false
				for _, p := range ce.Problems {
					if p.Line == w.line && (w.path == "" || p.Path == w.path) && strings.Contains(p.Msg, w.msg) {
						found = true
					}
				}
				if !found {
					t.Errorf("got problems\n%v\nwant one at line %d path %q containing %q", err, w.line, w.path, w.msg)
				}
			}
			if len(ce.Problems) != len(tc.want) {
				t.Errorf("got %d problems\n%v\nwant %d", len(ce.Problems), err, len(tc.want))
			}
		})
	}
}

// TestNewErrors: a Config built in Go gets the same checks from New.
func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no address", Config{}, "address is required"},
		{"bad scheme", Config{Address: "ws://a.example/"}, "http:// or https://"},
		{"bad fingerprint", Config{Address: "https://a.example/", Fingerprint: "zz"}, "64 hex digits"},
		{"fingerprint on http", Config{Address: "http://a.example/", Fingerprint: strings.Repeat("0", 64)}, "https://"},
		{"reserved header", Config{Address: "http://a.example/", Headers: map[string]string{"Host": "x"}}, "set by gatehouse"},
		{"duplicate header", Config{Address: "http://a.example/", Headers: map[string]string{"x-a": "1", "X-A": "2"}}, "given twice"},
		{"negative timeout", Config{Address: "http://a.example/", Timeout: -1}, "timeout"},
		{"negative ttl", Config{Address: "http://a.example/", Cache: CacheConfig{AllowTTL: -1}}, "negative"},
		{"huge cache", Config{Address: "http://a.example/", Cache: CacheConfig{Size: MaxCacheSize + 1}}, "cache size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.cfg)
			if err == nil {
				_ = b.Close()
				t.Fatalf("got nil error, want one containing %q", tc.want)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want errors.Is ErrConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestNewZeroTimeoutIsDefault(t *testing.T) {
	b := newBackend(t, Config{Address: "http://127.0.0.1:1/"})
	if b.timeout != DefaultTimeout {
		t.Errorf("got timeout %v, want %v", b.timeout, DefaultTimeout)
	}
	if b.cache != nil {
		t.Errorf("got a cache, want none for a zero CacheConfig built in Go")
	}
}
