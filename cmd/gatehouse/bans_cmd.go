package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"gatehouse/authz/banapi"
)

const bansUsage = `usage:
  gatehouse bans list [-config FILE | -url URL] [-user NAME] [--json]
  gatehouse bans lift [-config FILE | -url URL] [-user NAME] KIND SUBJECT
                      KIND: ip (an address; IPv6 lifts its /64), user (a user name), key (a key id),
                      identity
They ask the running server's /api/v1/bans (the public listener; -url defaults to the config's
listen address on loopback). -user NAME sends Basic credentials with the password from
GATEHOUSE_API_PASSWORD; GATEHOUSE_API_TOKEN sends a Bearer token instead.
`

// cmdBans runs `gatehouse bans SUBCOMMAND`: a client of the running server's ban API.
func cmdBans(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, bansUsage)
		return exitOK
	}
	sub, args := args[0], args[1:]
	fs := newFlags("bans "+sub, stderr)
	path := fs.String("config", "", "config file (for the listen address)")
	base := fs.String("url", "", "the server's public URL, e.g. http://127.0.0.1:8089")
	user := fs.String("user", "", "user name for Basic credentials (password from GATEHOUSE_API_PASSWORD)")
	asJSON := fs.Bool("json", false, "JSON instead of a table")
	if fs.Parse(args) != nil {
		return exitConfig
	}
	want := map[string]int{"list": 0, "lift": 2}
	n, ok := want[sub]
	if !ok || fs.NArg() != n {
		fmt.Fprint(stderr, bansUsage)
		return exitConfig
	}
	if *base == "" {
		cfg, err := loadConfig(*path)
		if err != nil {
			printErr(stderr, err)
			return exitConfig
		}
		*base = localURL(cfg.Listen)
	}
	var req *http.Request
	var err error
	if sub == "list" {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*base, "/")+"/api/v1/bans", nil)
	} else {
		q := url.Values{"kind": {fs.Arg(0)}, "subject": {fs.Arg(1)}}
		req, err = http.NewRequestWithContext(ctx, http.MethodDelete, strings.TrimRight(*base, "/")+"/api/v1/bans?"+q.Encode(), nil)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse bans:", err)
		return exitConfig
	}
	if tok := os.Getenv("GATEHOUSE_API_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if *user != "" {
		req.SetBasicAuth(*user, os.Getenv("GATEHOUSE_API_PASSWORD"))
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse bans: is the server running?", err)
		return exitDeny
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	switch {
	case sub == "lift" && resp.StatusCode == http.StatusNoContent:
		fmt.Fprintf(stdout, "lifted %s %s\n", fs.Arg(0), fs.Arg(1))
		return exitOK
	case resp.StatusCode != http.StatusOK:
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		fmt.Fprintf(stderr, "gatehouse bans %s: %s: %s\n", sub, resp.Status, e.Error)
		return exitDeny
	case *asJSON:
		_, _ = stdout.Write(body)
		return exitOK
	}
	var list banapi.ListJSON
	if err := json.Unmarshal(body, &list); err != nil {
		fmt.Fprintln(stderr, "gatehouse bans list: unreadable answer:", err)
		return exitDeny
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSUBJECT\tUNTIL\tLEFT\tREASON\tSTRIKE")
	for _, b := range list.Bans {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", b.Kind, b.Subject, b.Until.Local().Format(time.DateTime),
			time.Duration(b.RetryAfter)*time.Second, b.Reason, b.Strike)
	}
	_ = tw.Flush()
	return exitOK
}

// localURL returns the URL of a listen address on this host: a wildcard host becomes loopback.
func localURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
