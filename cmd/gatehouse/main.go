// Command gatehouse is an authentication gateway for streaming servers: it answers the auth
// callbacks of MediaMTX (and, as it grows, nginx-rtmp, OvenMediaEngine, SRS and reverse proxies)
// from one policy engine.
//
// Usage (see README.md):
//
//	gatehouse [run] [-config FILE]
//	gatehouse validate -config FILE
//	gatehouse hash [--argon2id|--sha256] < secret
//	gatehouse check -config FILE --action publish --path live/cam --user u --pass p --ip 203.0.113.7 [--protocol rtmp]
//	gatehouse token -config FILE --sub alice --allow publish:live/alice --allow read:live/* --ttl 12h
//	gatehouse rotate-key -config FILE
//	gatehouse healthcheck [-url http://127.0.0.1:8089/healthz]
//	gatehouse version
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/conf"
	"gatehouse/authz/tokens"
	"gatehouse/backends/users"
)

// buildVersion is set with -ldflags "-X main.buildVersion=…" by the Makefile.
var buildVersion = ""

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Exit codes: 0 success (or allow), 1 deny, 2 usage or configuration error.
const (
	exitOK     = 0
	exitDeny   = 1
	exitConfig = 2
)

func main() {
	os.Exit(cli(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func cli(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(ctx, args, stderr)
	case "validate":
		return cmdValidate(args, stdout, stderr)
	case "hash":
		return cmdHash(args, stdin, stdout, stderr)
	case "check":
		return cmdCheck(ctx, args, stdout, stderr)
	case "token":
		return cmdToken(args, stdout, stderr)
	case "rotate-key":
		return cmdRotateKey(args, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, args, stdout, stderr) // keys_cmd.go
	case "bans":
		return cmdBans(ctx, args, stdout, stderr) // bans_cmd.go
	case "healthcheck":
		return cmdHealthcheck(ctx, args, stdout, stderr) // healthcheck.go
	case "version":
		fmt.Fprintln(stdout, "gatehouse", version())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "gatehouse: unknown command %q\n%s", cmd, usage)
	return exitConfig
}

const usage = `usage:
  gatehouse [run] [-config FILE]         serve (built-in defaults without -config)
  gatehouse validate -config FILE        check a config; print every error with its line
  gatehouse hash [--argon2id|--sha256]   hash a secret read from stdin for 'pass:'
  gatehouse check -config FILE --action A --path P [--user U --pass P --token T --ip IP --protocol PR]
                                         dry-run one decision; exit 0 allow, 1 deny
  gatehouse token -config FILE --sub NAME --allow ACTION[:PATH] [--allow …] [--ttl 12h]
                                         mint a signed token (verified by the jwt method, and by
                                         MediaMTX with authJWTJWKS pointed at /.well-known/jwks.json)
  gatehouse rotate-key -config FILE      new signing key; old tokens stay valid (SIGHUP the server)
  gatehouse keys create|list|rotate|revoke|backup -config FILE …
                                         managed stream keys in data_dir (gatehouse keys help)
  gatehouse bans list|lift [-config FILE] …
                                         the running server's bans (gatehouse bans help)
  gatehouse healthcheck [-url URL] [-timeout 5s]
                                         exit 0 when a running gatehouse's /healthz answers 200
                                         (container HEALTHCHECK without curl)
  gatehouse version
`

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	path := fs.String("config", "", "config file (YAML); empty: built-in defaults")
	if fs.Parse(args) != nil {
		return exitConfig
	}
	if err := serve(ctx, *path, stderr, nil); err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	return exitOK
}

func printErr(w io.Writer, err error) {
	var ce *conf.Errors
	if errors.As(err, &ce) {
		fmt.Fprintf(w, "gatehouse: %d configuration error(s):\n", len(ce.Problems))
		for _, p := range ce.Problems {
			fmt.Fprintln(w, "  "+p.String())
		}
		return
	}
	fmt.Fprintln(w, "gatehouse:", err)
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	path := fs.String("config", "", "config file (YAML)")
	if fs.Parse(args) != nil {
		return exitConfig
	}
	if *path == "" {
		fmt.Fprintln(stderr, "gatehouse validate: -config is required")
		return exitConfig
	}
	cfg, err := loadConfig(*path)
	if err == nil {
		err = dryBuild(cfg)
	}
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	for _, w := range cfg.warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok (methods: %s)\n", *path, strings.Join(methodList(cfg), ", "))
	return exitOK
}

func cmdHash(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("hash", stderr)
	useSHA := fs.Bool("sha256", false, "sha256:<base64> (fast; only for high-entropy secrets)")
	_ = fs.Bool("argon2id", true, "argon2:$argon2id$… (default)")
	if fs.Parse(args) != nil {
		return exitConfig
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "gatehouse hash: read stdin:", err)
		return exitConfig
	}
	secret := bytes.TrimRight(line, "\r\n")
	if len(secret) == 0 {
		fmt.Fprintln(stderr, "gatehouse hash: empty secret on stdin (try: echo -n mypass | gatehouse hash)")
		return exitConfig
	}
	if *useSHA {
		fmt.Fprintln(stdout, users.HashSHA256(secret))
		return exitOK
	}
	h, err := users.HashArgon2id(secret)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse hash:", err)
		return exitConfig
	}
	fmt.Fprintln(stdout, h)
	return exitOK
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	path := fs.String("config", "", "config file (YAML); empty: built-in defaults")
	action := fs.String("action", "", "publish, read, playback, api, metrics or pprof")
	var req authz.Request
	fs.StringVar(&req.Path, "path", "", "stream path, e.g. live/cam")
	fs.StringVar(&req.User, "user", "", "user name")
	fs.StringVar(&req.Pass, "pass", "", "password")
	fs.StringVar(&req.Token, "token", "", "token (JWT)")
	fs.StringVar(&req.Protocol, "protocol", "", "rtmp, rtsp, srt, webrtc, hls, …")
	fs.StringVar(&req.Query, "query", "", "raw query string")
	ip := fs.String("ip", "", "client IP")
	if fs.Parse(args) != nil {
		return exitConfig
	}
	a, err := authz.ParseAction(*action)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse check: --action:", err)
		return exitConfig
	}
	req.Action, req.Source = a, "cli"
	req.Protocol = strings.ToLower(req.Protocol)
	if *ip != "" {
		addr, err := netip.ParseAddr(*ip)
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse check: --ip %q is not an IP address\n", *ip)
			return exitConfig
		}
		req.IP = addr
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	log := slog.New(slog.DiscardHandler)
	iss, err := loadIssuer(cfg, nil)
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	g, err := build(ctx, cfg, deps{issuer: iss}, log, true)
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	defer g.stop()
	waitReady(ctx, g)
	d := authz.NewEngine(g.chain, nil).Authorize(ctx, &req)
	printDecision(stdout, d)
	if d.Allowed() {
		return exitOK
	}
	return exitDeny
}

func printDecision(w io.Writer, d authz.Decision) {
	verdict := "DENY"
	if d.Allowed() {
		verdict = "ALLOW"
	}
	fmt.Fprintf(w, "%s (%d) reason=%s", verdict, d.HTTPStatus(), d.Reason)
	if d.Backend != "" {
		fmt.Fprintf(w, " method=%s", d.Backend)
	}
	if d.Identity != "" {
		fmt.Fprintf(w, " identity=%s", d.Identity)
	}
	if !d.Expires.IsZero() {
		fmt.Fprintf(w, " expires=%s", d.Expires.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if d.Allowed() && d.Rename != "" { // on a denial Rename only keeps a key out of logs
		fmt.Fprintf(w, " rename=%s", d.Rename)
	}
	fmt.Fprintf(w, "\n  %s\n", d.Message)
	for _, s := range d.Steps {
		fmt.Fprintf(w, "  step: %-10s %-16s %s\n", s.Method, s.Outcome, s.Reason)
	}
}

// waitReady gives background key fetches a moment so a dry run with a JWT reflects what the server
// would answer once ready (bounded: a JWKS that is down is reported by the decision itself).
func waitReady(ctx context.Context, g *generation) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for g.ready() != nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdToken(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("token", stderr)
	path := fs.String("config", "", "config file (for data_dir and tokens)")
	sub := fs.String("sub", "", "subject (the identity gatehouse logs and registers)")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime (at most tokens.max_ttl, default 24h)")
	var allows multiFlag
	fs.Var(&allows, "allow", "permission ACTION[:PATH], repeatable: publish:live/alice, read:live/*, api")
	if fs.Parse(args) != nil {
		return exitConfig
	}
	if *sub == "" || len(allows) == 0 || *ttl <= 0 {
		fmt.Fprintln(stderr, "gatehouse token: --sub, at least one --allow and a positive --ttl are required")
		return exitConfig
	}
	perms := make([]authz.Permission, 0, len(allows))
	for _, a := range allows {
		p, err := tokens.ParseAllow(a)
		if err != nil {
			fmt.Fprintf(stderr, "gatehouse token: --allow %q: %v\n", a, err)
			return exitConfig
		}
		perms = append(perms, p)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	iss, err := loadIssuer(cfg, nil)
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	tok, err := iss.Issue(*sub, perms, *ttl)
	if errors.Is(err, tokens.ErrTTL) {
		fmt.Fprintf(stderr, "gatehouse token: --ttl %s is longer than tokens.max_ttl (%s): a token cannot be revoked before it expires; mint a shorter one, or raise tokens.max_ttl in the config\n", *ttl, iss.MaxTTL())
		return exitConfig
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse token:", err)
		return exitConfig
	}
	fmt.Fprintln(stdout, tok)
	return exitOK
}

func cmdRotateKey(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rotate-key", stderr)
	path := fs.String("config", "", "config file (for data_dir)")
	if fs.Parse(args) != nil {
		return exitConfig
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	iss, err := loadIssuer(cfg, nil)
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	old := iss.KeyID()
	if err := iss.Rotate(); err != nil {
		fmt.Fprintln(stderr, "gatehouse rotate-key:", err)
		return exitConfig
	}
	fmt.Fprintf(stdout, "signing key rotated: %s -> %s (tokens signed by the old key stay valid; send SIGHUP to a running gatehouse)\n", old, iss.KeyID())
	return exitOK
}

// dryBuild constructs every backend without starting background work, with a throwaway token
// issuer, so validate writes nothing to data_dir.
func dryBuild(cfg *Config) error {
	tmp, err := os.MkdirTemp("", "gatehouse-validate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	iss, err := tokens.LoadIssuer(filepath.Join(tmp, "keys"), issuerOptions(cfg)...)
	if err != nil {
		return err
	}
	g, err := build(context.Background(), cfg, deps{issuer: iss}, slog.New(slog.DiscardHandler), false)
	if err != nil {
		return err
	}
	g.stop()
	return nil
}
