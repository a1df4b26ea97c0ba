package notify

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
)

// Defaults of Config and Webhook.
const (
	DefaultQueueSize      = 64
	DefaultTimeout        = 10 * time.Second
	DefaultMaxAttempts    = 5
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultLiveMessage    = "{identity} is live on {path}"
	DefaultOfflineMessage = "{identity} is no longer live on {path}"
)

// Format is how a webhook's body is written.
type Format string

// Formats.
const (
	// FormatDiscord posts {"content", "username", "avatar_url", "allowed_mentions"} to a Discord
	// webhook URL (or any receiver that accepts Discord's execute-webhook body).
	FormatDiscord Format = "discord"
	// FormatJSON posts the generic event object, signed with HMAC-SHA256 (see Sign).
	FormatJSON Format = "json"
)

// Event names a transition a webhook can subscribe to.
type Event string

// Events.
const (
	EventLive    Event = "live"    // a path went from offline to live
	EventOffline Event = "offline" // a path went from live to offline (ended or expired)
)

// Config is the notifications section. The zero Config has no webhooks and delivers nothing.
type Config struct {
	// QueueSize bounds each webhook's queue of pending notifications (default 64); when it is
	// full, new notifications for that webhook are dropped, counted and logged.
	QueueSize int `yaml:"queue_size" conf:"nonzero"`
	// Webhooks are delivered independently: a slow one never delays another.
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one receiver. Secret, URL (which for Discord contains its token) and Headers are
// never logged.
type Webhook struct {
	Name   string // unique; default "webhook-<index>"
	URL    string // http or https, required
	Format Format // required
	// Secret is the HMAC-SHA256 key of FormatJSON (required there, refused for Discord).
	Secret string
	// Events are the transitions delivered (default both).
	Events []Event
	// Username and AvatarURL set Discord's displayed author. Both are templates (see Message);
	// values substituted into AvatarURL are path-escaped.
	Username, AvatarURL string
	// LiveMessage and OfflineMessage are the Discord content templates. Placeholders:
	// {identity} (or the last path element when unknown), {path}, {name} (the last path
	// element), {source}, {protocol}, {event}, {reason}, {key_id}, {key_label}. Defaults DefaultLiveMessage and
	// DefaultOfflineMessage.
	LiveMessage, OfflineMessage string
	// Headers are added to every request (e.g. an Authorization for a generic receiver).
	Headers map[string]string
	// Timeout bounds each attempt (default 10s).
	Timeout time.Duration
	// MaxAttempts is how many times one notification is tried (default 5).
	MaxAttempts int
	// Backoff is the first retry delay, doubled per attempt up to MaxBackoff, with jitter
	// (defaults 1s and 1m). A 429's retry_after or Retry-After replaces it; one longer than
	// MaxBackoff gives up.
	Backoff, MaxBackoff time.Duration
}

// UnmarshalYAML implements yaml.Unmarshaler with the keys name, url, format, secret, events,
// username, avatar_url, live_message, offline_message, headers, timeout, max_attempts, backoff,
// max_backoff. Every problem is reported with its line.
func (w *Webhook) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		Name           string            `yaml:"name"`
		URL            string            `yaml:"url"`
		Format         string            `yaml:"format"`
		Secret         string            `yaml:"secret"`
		Events         []string          `yaml:"events"`
		Username       string            `yaml:"username"`
		AvatarURL      string            `yaml:"avatar_url"`
		LiveMessage    string            `yaml:"live_message"`
		OfflineMessage string            `yaml:"offline_message"`
		Headers        map[string]string `yaml:"headers"`
		Timeout        conf.Duration     `yaml:"timeout" conf:"nonzero"`
		MaxAttempts    int               `yaml:"max_attempts" conf:"nonzero"`
		Backoff        conf.Duration     `yaml:"backoff" conf:"nonzero"`
		MaxBackoff     conf.Duration     `yaml:"max_backoff" conf:"nonzero"`
	}
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	v := Webhook{
		Name: raw.Name, URL: raw.URL, Format: Format(raw.Format), Secret: raw.Secret,
		Username: raw.Username, AvatarURL: raw.AvatarURL, LiveMessage: raw.LiveMessage,
		OfflineMessage: raw.OfflineMessage, Headers: raw.Headers, Timeout: raw.Timeout.Std(),
		MaxAttempts: raw.MaxAttempts, Backoff: raw.Backoff.Std(), MaxBackoff: raw.MaxBackoff.Std(),
	}
	for _, e := range raw.Events {
		v.Events = append(v.Events, Event(e))
	}
	var errs []error
	for _, p := range v.problems() {
		errs = append(errs, conf.Errorf(conf.Value(n, p.key), "%s", p.msg))
	}
	*w = v
	return conf.Join(errs...)
}

// UnmarshalYAML implements yaml.Unmarshaler: keys queue_size and webhooks; webhook names must be
// unique.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		QueueSize int       `yaml:"queue_size" conf:"nonzero"`
		Webhooks  []Webhook `yaml:"webhooks"`
	}
	err := conf.Strict(n, &raw)
	var errs []error
	if raw.QueueSize < 0 {
		errs = append(errs, conf.Errorf(conf.Value(n, "queue_size"), "queue_size must not be negative"))
	}
	seen := map[string]bool{}
	for i, w := range raw.Webhooks {
		name := w.Name
		if name == "" {
			name = defaultName(i)
		}
		if seen[name] {
			errs = append(errs, conf.Errorf(conf.Value(n, "webhooks"), "webhook name %q is used twice", name))
		}
		seen[name] = true
	}
	*c = Config{QueueSize: raw.QueueSize, Webhooks: raw.Webhooks}
	return conf.Join(append([]error{err}, errs...)...)
}

func defaultName(i int) string { return fmt.Sprintf("webhook-%d", i) }

// reserved headers are set by the notifier itself.
var reservedHeaders = []string{"Content-Type", "Content-Length", "Host", "X-Gatehouse-Signature",
	"X-Gatehouse-Timestamp", "X-Gatehouse-Event", "X-Gatehouse-Delivery"}

// problem is one thing wrong with a webhook, and the YAML key it concerns.
type problem struct{ key, msg string }

// problems lists what is wrong with w, in words that never contain the URL, secret or header
// values, sorted so that map order never changes the message.
func (w *Webhook) problems() []problem {
	var out []problem
	add := func(key, format string, args ...any) {
		out = append(out, problem{key, fmt.Sprintf(format, args...)})
	}
	switch u, err := url.Parse(w.URL); {
	case w.URL == "":
		add("url", "url is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		add("url", "url must be an absolute http or https URL")
	}
	switch w.Format {
	case FormatDiscord:
		if w.Secret != "" {
			add("secret", "secret is only used by format json (a Discord URL carries its own token)")
		}
	case FormatJSON:
		if w.Secret == "" {
			add("format", "format json needs a secret to sign deliveries")
		}
		if w.Username != "" || w.AvatarURL != "" || w.LiveMessage != "" || w.OfflineMessage != "" {
			add("format", "username, avatar_url, live_message and offline_message are only used by format discord")
		}
	case "":
		add("format", "format is required (discord or json)")
	default:
		add("format", "unknown format %q (want discord or json)", w.Format)
	}
	for i, e := range w.Events {
		if e != EventLive && e != EventOffline {
			add("events", "unknown event %q (want live or offline)", e)
		} else if slices.Contains(w.Events[:i], e) {
			add("events", "event %q listed twice", e)
		}
	}
	for k, v := range w.Headers {
		switch {
		case !validHeaderName(k):
			add("headers", "header %q is not a valid header name", k)
		case slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, k) }):
			add("headers", "header %q is set by gatehouse", http.CanonicalHeaderKey(k))
		case strings.ContainsAny(v, "\r\n\x00"):
			add("headers", "header %q has a control character in its value", k)
		}
	}
	if w.MaxAttempts < 0 {
		add("max_attempts", "max_attempts must not be negative")
	}
	if w.Timeout < 0 || w.Backoff < 0 || w.MaxBackoff < 0 {
		add("timeout", "durations must not be negative")
	}
	if w.Backoff > 0 && w.MaxBackoff > 0 && w.Backoff > w.MaxBackoff {
		add("backoff", "backoff must not exceed max_backoff")
	}
	slices.SortFunc(out, func(a, b problem) int { return strings.Compare(a.msg, b.msg) })
	return out
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// resolved returns w with defaults filled in, or an error listing its problems.
func (w Webhook) resolved(i int) (Webhook, error) {
	if w.Name == "" {
		w.Name = defaultName(i)
	}
	if ps := w.problems(); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = p.msg
		}
		return w, fmt.Errorf("%w: webhook %q: %s", ErrInvalidConfig, w.Name, strings.Join(msgs, "; "))
	}
	if len(w.Events) == 0 {
		w.Events = []Event{EventLive, EventOffline}
	}
	if w.LiveMessage == "" {
		w.LiveMessage = DefaultLiveMessage
	}
	if w.OfflineMessage == "" {
		w.OfflineMessage = DefaultOfflineMessage
	}
	if w.Timeout == 0 {
		w.Timeout = DefaultTimeout
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = DefaultMaxAttempts
	}
	if w.Backoff == 0 {
		w.Backoff = DefaultBackoff
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = max(DefaultMaxBackoff, w.Backoff)
	}
	return w, nil
}

func resolveAll(c Config) ([]Webhook, error) {
	var (
		out  []Webhook
		errs []error
		seen = map[string]bool{}
	)
	for i, w := range c.Webhooks {
		r, err := w.resolved(i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("%w: webhook name %q is used twice", ErrInvalidConfig, r.Name))
		}
		seen[r.Name] = true
		out = append(out, r)
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("%w: queue_size must not be negative", ErrInvalidConfig))
	}
	return out, errors.Join(errs...)
}
