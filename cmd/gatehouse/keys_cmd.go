package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"gatehouse/authz"
	"gatehouse/backends/keys"
	"gatehouse/backends/keys/sqlitestore"
)

const keysUsage = `usage:
  gatehouse keys create -config FILE --path live/alice [--label TEXT] [--owner ID]
                        [--action publish --action read] [--protocol rtmp] [--ttl 12h | --expires RFC3339]
                        prints the new key on stdout (shown once) and its id on stderr
  gatehouse keys list   -config FILE [--json]     stored keys, then the config file's (read-only)
  gatehouse keys rotate -config FILE [--grace 10m] ID   new key on stdout; the old one stops after grace
  gatehouse keys revoke -config FILE ID            the running server refuses the key at once
  gatehouse keys backup -config FILE OUT.db        consistent copy, safe while the server runs
The store is data_dir/` + sqlitestore.FileName + `, or Redis with state.backend: redis (backup: Redis's own);
these commands work while gatehouse runs.
`

// cmdKeys runs `gatehouse keys SUBCOMMAND`.
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, keysUsage)
		return exitOK
	}
	sub, args := args[0], args[1:]
	fs := newFlags("keys "+sub, stderr)
	path := fs.String("config", "", "config file (for data_dir and the YAML keys)")
	var (
		spec            keys.Spec
		actions, protos multiFlag
		ttl, expires    string
		grace           time.Duration
		asJSON          bool
		wantArgs        int
	)
	switch sub {
	case "create":
		fs.StringVar(&spec.Path, "path", "", "public stream path, e.g. live/alice")
		fs.StringVar(&spec.Label, "label", "", "free text shown in lists")
		fs.StringVar(&spec.Owner, "owner", "", "identity reported when the key is used (default: the path)")
		fs.Var(&actions, "action", "publish (default), read or playback; repeatable")
		fs.Var(&protos, "protocol", "restrict to a protocol (rtmp, srt, rtsp, webrtc, …); repeatable")
		fs.StringVar(&ttl, "ttl", "", "lifetime such as 12h (a per-session credential)")
		fs.StringVar(&expires, "expires", "", "expiry as RFC 3339, e.g. 2026-12-31T23:59:59Z")
	case "list":
		fs.BoolVar(&asJSON, "json", false, "JSON instead of a table")
	case "rotate":
		fs.DurationVar(&grace, "grace", 0, "how long the old key keeps working (0: stops at once)")
		wantArgs = 1
	case "revoke", "backup":
		wantArgs = 1
	default:
		fmt.Fprintf(stderr, "gatehouse keys: unknown subcommand %q\n%s", sub, keysUsage)
		return exitConfig
	}
	if fs.Parse(args) != nil {
		return exitConfig
	}
	if fs.NArg() != wantArgs {
		fmt.Fprintf(stderr, "gatehouse keys %s: want %d argument(s) after the flags, got %d\n%s", sub, wantArgs, fs.NArg(), keysUsage)
		return exitConfig
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printErr(stderr, err)
		return exitConfig
	}
	layer, err := openState(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse keys:", err)
		return exitConfig
	}
	defer layer.Close()
	st := layer.keys
	fail := func(err error) int {
		fmt.Fprintf(stderr, "gatehouse keys %s: %v\n", sub, err)
		return exitConfig
	}
	switch sub {
	case "create":
		for _, a := range actions {
			act, err := authz.ParseAction(a)
			if err != nil {
				return fail(err)
			}
			spec.Actions = append(spec.Actions, act)
		}
		spec.Protocols = protos
		if spec.Expires, err = keys.ParseExpiry(ttl, expires, time.Now()); err != nil {
			return fail(err)
		}
		rec, secret, err := st.Create(ctx, spec)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "created %s for %s (%s); the key above is shown only once\n", rec.ID, rec.Path, describe(rec))
	case "list":
		recs, err := st.List(ctx)
		if err != nil {
			return fail(err)
		}
		recs = append(recs, configRecords(cfg)...)
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(recs)
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tPATH\tACTIONS\tPROTOCOLS\tOWNER\tLABEL\tEXPIRES\tLAST USED\tFROM")
		now := time.Now()
		for _, r := range recs {
			status := r.Status(now)
			if r.ReadOnly {
				status += " (config, read-only)"
			}
			acts := make([]string, len(r.Actions))
			for i, a := range r.Actions {
				acts[i] = string(a)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%q\t%s\t%s\t%s\n", r.ID, status, r.Path, strings.Join(acts, ","),
				orDash(strings.Join(r.Protocols, ",")), orDash(r.Owner), r.Label, when(r.Expires), when(r.LastUsed), orDash(r.LastAddr))
		}
		_ = tw.Flush()
	case "rotate":
		rec, secret, old, err := st.Rotate(ctx, fs.Arg(0), grace)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "created %s replacing %s (which stops %s); the key above is shown only once\n", rec.ID, old.ID, when(old.Revoked))
	case "revoke":
		if strings.HasPrefix(fs.Arg(0), "config:") {
			return fail(errors.New("this key is configured in YAML; remove it from the file and reload"))
		}
		rec, err := st.Revoke(ctx, fs.Arg(0))
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "revoked %s (%s); a running gatehouse refuses it from now on\n", rec.ID, rec.Path)
	case "backup":
		if layer.sqlite == nil {
			return fail(errors.New("keys live in Redis (state.backend: redis): back up Redis itself (its append-only file or BGSAVE)"))
		}
		if err := layer.sqlite.Backup(ctx, fs.Arg(0)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "backed up %s to %s\n", layer.sqlite.Path(), fs.Arg(0))
	}
	return exitOK
}

// configRecords lists the config file's keys (read-only) of every keys method instance.
func configRecords(cfg *Config) []keys.Record {
	var out []keys.Record
	for _, m := range cfg.Auth.Methods {
		c, ok := m.settings.(*keys.Config)
		if m.Type != "keys" || !ok || c == nil {
			continue
		}
		if b, err := keys.New(*c, nil, keys.WithInstance(keysInstance(m.ID))); err == nil {
			out = append(out, b.ConfigRecords()...)
		}
	}
	return out
}

func describe(r keys.Record) string {
	acts := make([]string, len(r.Actions))
	for i, a := range r.Actions {
		acts[i] = string(a)
	}
	s := strings.Join(acts, ",")
	if len(r.Protocols) > 0 {
		s += " over " + strings.Join(r.Protocols, ",")
	}
	if !r.Expires.IsZero() {
		s += ", expires " + when(r.Expires)
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
