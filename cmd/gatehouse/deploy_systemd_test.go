package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnit checks that docs/deploy/gatehouse.service keeps its sandbox and its notify and
// reload wiring, and, where systemd-analyze is installed, that systemd accepts every line of it
// (verify exits 0 on unknown keys and bad values, so any message fails the test).
func TestSystemdUnit(t *testing.T) {
	src, err := os.ReadFile("../../docs/deploy/gatehouse.service")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(src), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"Type=notify",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"Restart=always",
		"DynamicUser=yes",
		"StateDirectory=gatehouse",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"NoNewPrivileges=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"SystemCallFilter=@system-service",
		"CapabilityBoundingSet=",
	} {
		if !lines[want] {
			t.Errorf("unit has no line %q", want)
		}
	}
	if lines["AmbientCapabilities=CAP_NET_BIND_SERVICE"] {
		t.Error("AmbientCapabilities is set: only for ports below 1024, and the defaults are above")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: the unit's syntax is not verified here")
	}
	self, err := os.Executable() // verify wants the ExecStart binary to exist
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "gatehouse.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(src), "/usr/local/bin/gatehouse", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
