// Package state is the configuration of the state layer: where the state that outlives a request
// (managed stream keys, failure counters and bans, revocations) lives. The default, backend
// memory, is the single process of today: keys in SQLite in data_dir, bans and counters in
// memory. Backend redis shares them between replicas through one Redis (standalone, Sentinel or
// Cluster); package redisstate builds the client and the shared stores.
//
//	state:
//	  backend: redis               # memory (default) or redis
//	  node_id: gh-a                # this node's name in the fleet (default: generated at start)
//	  node_url: http://10.0.0.2:8089   # how the other nodes reach this node's public listener
//	  redis:
//	    addrs: [127.0.0.1:6379]    # one: standalone; several: Cluster; with sentinel_master: Sentinels
//	    sentinel_master: ""        # the Sentinel master name
//	    username: gatehouse        # ACL user (optional)
//	    password_file: /run/secrets/redis   # first line is the password; never logged
//	    db: 0                      # standalone and Sentinel only
//	    key_prefix: "gatehouse:"   # every key and channel gatehouse writes starts with it
//	    tls: {enabled: true, ca_file: /etc/ssl/redis-ca.pem}
//	    sync_interval: 250ms       # how often counters and bans are pushed and pulled
//	    timeout: 500ms             # dial, read and write timeout: a decision never waits longer
package state

import (
	"crypto/rand"
	"encoding/base32"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gatehouse/authz/conf"
)

// Backend names.
const (
	BackendMemory = "memory" // the default: one process, SQLite keys, bans in memory
	BackendRedis  = "redis"  // shared by every replica through Redis
)

// Defaults of RedisConfig.
const (
	DefaultKeyPrefix    = "gatehouse:"
	DefaultSyncInterval = 250 * time.Millisecond
	DefaultTimeout      = 500 * time.Millisecond
)

// Config is the state section. The zero Config is backend memory.
type Config struct {
	Backend string       `yaml:"backend"` // memory (default) or redis
	Redis   *RedisConfig `yaml:"redis"`   // required with backend redis, refused without it
	// NodeID names this node in the fleet (node records, publish leases); backend redis only.
	// Default: generated at start (NewNodeID), stable for the process.
	NodeID string `yaml:"node_id"`
	// NodeURL is the base URL (http or https, no query) at which the other nodes reach this
	// node's public listener, e.g. http://10.0.0.2:8089; backend redis only. Default: none (the
	// node is listed without a URL and no edge can pull from it).
	NodeURL string `yaml:"node_url"`
}

// Node is one gatehouse node of a fleet as its node record says.
type Node struct {
	ID      string    `json:"id"`
	URL     string    `json:"url,omitempty"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started"`
	// Instance is a random id of the process (a node id reused by two processes shows as two
	// instances).
	Instance string `json:"instance,omitempty"`
}

// Owner is the node that publishes a path: its id and the base URL of its public listener
// ("" when it has none configured).
type Owner struct {
	NodeID, URL string
}

var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// NewNodeID returns a random node id ("node-" and 10 lowercase letters and digits).
func NewNodeID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "node-" + base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// Shared reports whether the state lives in Redis.
func (c Config) Shared() bool { return c.Backend == BackendRedis }

// RedisConfig says how to reach Redis. Mode: sentinel_master set → Sentinel (addrs are the
// Sentinels); several addrs → Cluster; one addr → a standalone server.
type RedisConfig struct {
	Addrs          []string      `yaml:"addrs"`
	SentinelMaster string        `yaml:"sentinel_master"`
	Username       string        `yaml:"username"`
	PasswordFile   string        `yaml:"password_file"`
	DB             int           `yaml:"db"`
	KeyPrefix      string        `yaml:"key_prefix"` // default DefaultKeyPrefix
	TLS            TLSConfig     `yaml:"tls"`
	SyncInterval   conf.Duration `yaml:"sync_interval"` // default DefaultSyncInterval
	Timeout        conf.Duration `yaml:"timeout"`       // default DefaultTimeout
}

// TLSConfig turns on TLS to Redis. Without ca_file the system roots verify the server.
type TLSConfig struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`     // PEM roots for the server's certificate
	CertFile   string `yaml:"cert_file"`   // client certificate (mutual TLS), with key_file
	KeyFile    string `yaml:"key_file"`    // the client certificate's key
	ServerName string `yaml:"server_name"` // default: the host of each address
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Cluster reports whether c addresses a Redis Cluster.
func (c *RedisConfig) Cluster() bool { return c.SentinelMaster == "" && len(c.Addrs) > 1 }

// Prefix returns the key prefix, DefaultKeyPrefix when unset.
func (c *RedisConfig) Prefix() string {
	if c.KeyPrefix == "" {
		return DefaultKeyPrefix
	}
	return c.KeyPrefix
}

// Password reads the first line of PasswordFile ("" without one). The error names the file, never
// its content.
func (c *RedisConfig) Password() (string, error) {
	if c.PasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// UnmarshalYAML decodes strictly and reports every problem with its line.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	var raw plain
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	*c = Config(raw)
	switch c.Backend {
	case "":
		c.Backend = BackendMemory
	case BackendMemory, BackendRedis:
	default:
		return conf.Errorf(conf.Value(n, "backend"), "backend %q is not memory or redis", c.Backend)
	}
	var errs []error
	switch {
	case c.Backend == BackendRedis && c.Redis == nil:
		errs = append(errs, conf.Errorf(conf.Value(n, "backend"), "backend redis needs a redis section with addrs"))
	case c.Backend == BackendMemory && c.Redis != nil:
		errs = append(errs, conf.Errorf(conf.Value(n, "redis"), "a redis section needs backend: redis (the default backend is memory)"))
	}
	if c.NodeID != "" {
		switch {
		case c.Backend != BackendRedis:
			errs = append(errs, conf.Errorf(conf.Value(n, "node_id"), "node_id needs backend: redis (a single process is no fleet)"))
		case !nodeIDRe.MatchString(c.NodeID):
			errs = append(errs, conf.Errorf(conf.Value(n, "node_id"), "node_id %q: use 1 to 64 letters, digits, dots, dashes and underscores", c.NodeID))
		}
	}
	if c.NodeURL != "" {
		u, err := url.Parse(c.NodeURL)
		switch {
		case c.Backend != BackendRedis:
			errs = append(errs, conf.Errorf(conf.Value(n, "node_url"), "node_url needs backend: redis (a single process is no fleet)"))
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, conf.Errorf(conf.Value(n, "node_url"), "node_url is not a base URL such as http://10.0.0.2:8089 (http or https, a host, no user, query or fragment)"))
		}
	}
	return conf.Join(errs...)
}

// UnmarshalYAML decodes strictly and reports every problem with its line.
func (c *RedisConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain RedisConfig
	var raw plain
	if err := conf.Strict(n, &raw); err != nil {
		return err
	}
	*c = RedisConfig(raw)
	var errs []error
	if len(c.Addrs) == 0 {
		errs = append(errs, conf.Errorf(n, "addrs: give at least one host:port"))
	}
	for i, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p <= 0 || p > 65535 {
			errs = append(errs, conf.Errorf(conf.Item(n, "addrs", i), "addrs: %q is not host:port", a))
		}
	}
	if c.DB < 0 {
		errs = append(errs, conf.Errorf(conf.Value(n, "db"), "db must not be negative"))
	}
	if c.DB != 0 && c.Cluster() {
		errs = append(errs, conf.Errorf(conf.Value(n, "db"), "db must be 0 with a Redis Cluster (several addrs and no sentinel_master)"))
	}
	if c.PasswordFile != "" {
		if fi, err := os.Stat(c.PasswordFile); err != nil || !fi.Mode().IsRegular() {
			errs = append(errs, conf.Errorf(conf.Value(n, "password_file"), "password_file %s is not a readable file", c.PasswordFile))
		}
	}
	if strings.ContainsAny(c.KeyPrefix, " {}\n\r\t") {
		errs = append(errs, conf.Errorf(conf.Value(n, "key_prefix"), "key_prefix must not contain spaces or braces (gatehouse adds its own hash tags)"))
	}
	for _, f := range []struct {
		key string
		v   conf.Duration
	}{{"sync_interval", c.SyncInterval}, {"timeout", c.Timeout}} {
		if f.v < 0 {
			errs = append(errs, conf.Errorf(conf.Value(n, f.key), "%s must not be negative", f.key))
		}
	}
	t := c.TLS
	tn := conf.Value(n, "tls")
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		errs = append(errs, conf.Errorf(tn, "tls settings need enabled: true"))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, conf.Errorf(tn, "cert_file and key_file go together"))
	}
	for _, f := range []struct{ key, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, conf.Errorf(conf.Value(tn, f.key), "%s %s is not readable", f.key, f.path))
		}
	}
	return conf.Join(errs...)
}

// Sync returns the sync interval, DefaultSyncInterval when unset.
func (c *RedisConfig) Sync() time.Duration { return c.SyncInterval.Or(DefaultSyncInterval) }

// DialTimeout returns the timeout, DefaultTimeout when unset.
func (c *RedisConfig) DialTimeout() time.Duration { return c.Timeout.Or(DefaultTimeout) }
