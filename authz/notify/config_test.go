package notify

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gatehouse/authz/conf"
)

const exampleYAML = `notify:
  queue_size: 32
  webhooks:
    - name: discord
      url: ${DISCORD_WEBHOOK_URL}
      format: discord
      username: Gatehouse
      avatar_url: https://cdn.example.com/avatars/{identity}.png
      live_message: "{identity} is live on {path}"
      offline_message: "{identity} went offline"
      max_attempts: 8
    - name: ops
      url: https://ops.example.com/hooks/gatehouse
      format: json
      secret: ${GATEHOUSE_WEBHOOK_SECRET}
      events: [live]
      timeout: 5s
      backoff: 2s
      max_backoff: 5m
      headers:
        Authorization: Bearer ops-token
`

func TestConfigDecode(t *testing.T) {
	env := map[string]string{"DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/tok", "GATEHOUSE_WEBHOOK_SECRET": "hmac-key"}
	var v struct {
		Notify Config `yaml:"notify"`
	}
	if err := conf.Decode("x.yml", []byte(exampleYAML), func(k string) (string, bool) { s, ok := env[k]; return s, ok }, &v); err != nil {
		t.Fatal(err)
	}
	want := Config{QueueSize: 32, Webhooks: []Webhook{
		{Name: "discord", URL: "https://discord.com/api/webhooks/1/tok", Format: FormatDiscord, Username: "Gatehouse",
			AvatarURL: "https://cdn.example.com/avatars/{identity}.png", LiveMessage: "{identity} is live on {path}",
			OfflineMessage: "{identity} went offline", MaxAttempts: 8},
		{Name: "ops", URL: "https://ops.example.com/hooks/gatehouse", Format: FormatJSON, Secret: "hmac-key",
			Events: []Event{EventLive}, Timeout: 5 * time.Second, Backoff: 2 * time.Second, MaxBackoff: 5 * time.Minute,
			Headers: map[string]string{"Authorization": "Bearer ops-token"}},
	}}
	if !reflect.DeepEqual(v.Notify, want) {
		t.Errorf("got  %+v\nwant %+v", v.Notify, want)
	}
	n, err := New(v.Notify, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := n.hooks[0].cfg
	if got.Timeout != DefaultTimeout || got.Backoff != DefaultBackoff || got.MaxBackoff != DefaultMaxBackoff ||
		len(got.Events) != 2 || n.queueSize != 32 {
		t.Errorf("defaults not applied: %+v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear in the error
	}{
		{name: "unknown key", src: "webhooks:\n  - url: https://x\n    format: json\n    secret: k\n    retries: 3\n",
			want: []string{`x.yml:5: webhooks[0].retries: unknown key "retries"`}},
		{name: "missing url and format", src: "webhooks:\n  - name: a\n",
			want: []string{"x.yml:2:", "url is required", "format is required"}},
		{name: "bad url", src: "webhooks:\n  - url: ftp://secret-host/tok\n    format: discord\n",
			want: []string{"x.yml:2: webhooks[0].url: url must be an absolute http or https URL"}},
		{name: "unknown format", src: "webhooks:\n  - url: https://x\n    format: slack\n",
			want: []string{`unknown format "slack"`}},
		{name: "json needs a secret", src: "webhooks:\n  - url: https://x\n    format: json\n",
			want: []string{"format json needs a secret"}},
		{name: "discord refuses a secret", src: "webhooks:\n  - url: https://x\n    format: discord\n    secret: hunter2\n",
			want: []string{"secret is only used by format json"}},
		{name: "discord fields on json", src: "webhooks:\n  - url: https://x\n    format: json\n    secret: k\n    username: u\n",
			want: []string{"only used by format discord"}},
		{name: "events", src: "webhooks:\n  - url: https://x\n    format: discord\n    events: [live, live, started]\n",
			want: []string{`event "live" listed twice`, `unknown event "started"`}},
		{name: "headers", src: "webhooks:\n  - url: https://x\n    format: discord\n    headers: {X-Gatehouse-Signature: a, \"bad name\": b, Content-type: c}\n",
			want: []string{`header "X-Gatehouse-Signature" is set by gatehouse`, `header "Content-Type" is set by gatehouse`,
				`header "bad name" is not a valid header name`}},
		{name: "numbers", src: "queue_size: -1\nwebhooks:\n  - url: https://x\n    format: discord\n    max_attempts: -2\n    backoff: 2m\n    max_backoff: 1m\n",
			want: []string{"queue_size must not be negative", "max_attempts must not be negative", "backoff must not exceed max_backoff"}},
		{name: "bad duration", src: "webhooks:\n  - url: https://x\n    format: discord\n    timeout: soon\n",
			want: []string{"x.yml:4:", `invalid duration "soon"`}},
		{name: "duplicate names", src: "webhooks:\n  - {name: a, url: https://x, format: discord}\n  - {name: a, url: https://y, format: discord}\n",
			want: []string{`webhook name "a" is used twice`}},
		{name: "several problems at once", src: "webhooks:\n  - url: https://x\n    format: json\n  - url: \"\"\n    format: discord\n",
			want: []string{"x.yml:3: webhooks[0].format: format json needs a secret", "x.yml:4: webhooks[1].url: url is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			err := conf.Decode("x.yml", []byte(tt.src), nil, &c)
			if !errors.Is(err, conf.ErrInvalid) {
				t.Fatalf("got %v, want conf.ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, secret := range []string{"hunter2", "secret-host"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks %q:\n%v", secret, err)
				}
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "problems of Go-built config", cfg: Config{Webhooks: []Webhook{{URL: "https://discord.com/api/webhooks/1/tok"}}},
			want: `webhook "webhook-0": format is required`},
		{name: "duplicate default names", cfg: Config{Webhooks: []Webhook{
			{URL: "https://x", Format: FormatDiscord}, {Name: "webhook-0", URL: "https://y", Format: FormatDiscord}}},
			want: `webhook name "webhook-0" is used twice`},
		{name: "negative queue", cfg: Config{QueueSize: -1}, want: "queue_size must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrInvalidConfig containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "tok") {
				t.Errorf("error leaks the URL: %v", err)
			}
		})
	}
}
