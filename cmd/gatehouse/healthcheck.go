package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// cmdHealthcheck asks a running gatehouse for its health, so a container's HEALTHCHECK needs no
// shell, curl or wget in the image: exit 0 when the URL answers 200, 1 otherwise (unreachable,
// another status, past -timeout). It reads at most 4 KB of the answer and prints one line.
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("healthcheck", stderr)
	url := fs.String("url", "http://127.0.0.1:8089/healthz", "the health endpoint of the running gatehouse")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if fs.Parse(args) != nil {
		return exitConfig
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "gatehouse healthcheck: -timeout must be positive")
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse healthcheck: -url:", err)
		return exitConfig
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse healthcheck: unhealthy:", err)
		return exitDeny
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gatehouse healthcheck: unhealthy: %s answered %d\n", *url, resp.StatusCode)
		return exitDeny
	}
	fmt.Fprintf(stdout, "gatehouse healthcheck: %s ok\n", *url)
	return exitOK
}
