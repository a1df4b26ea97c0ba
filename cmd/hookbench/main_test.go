package main

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestQuietConfig(t *testing.T) {
	bench, err := os.ReadFile("../../testdata/bench.yml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := quietConfig(bench, "127.0.0.1:4321")
	if err != nil {
		t.Fatalf("bench.yml: %v", err)
	}
	for _, want := range []string{"level: warn", `hooks_listen: "127.0.0.1:4321"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("quiet config lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{
		strings.Replace(string(bench), "level: info", "level: debug", 1),                                   // no info level to turn off
		string(bench) + "\n# level: info\n",                                                                // twice: which one?
		strings.Replace(string(bench), `hooks_listen: "127.0.0.1:0"`, "", 1),                               // no listener to move
		strings.Replace(string(bench), `hooks_listen: "127.0.0.1:0"`, `hooks_listen: "127.0.0.1:9999"`, 1), // a fixed one
	} {
		if _, err := quietConfig([]byte(bad), "127.0.0.1:4321"); err == nil {
			t.Errorf("quietConfig accepted a config it cannot rewrite:\n%s", bad)
		}
	}
}

func TestAwaitListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	running := make(chan struct{})
	if err := awaitListening(ln.Addr().String(), running); err != nil {
		t.Errorf("a listening address of a running process: %v", err)
	}
	exited := make(chan struct{})
	close(exited)
	if err := awaitListening(ln.Addr().String(), exited); err == nil {
		t.Error("an exited process counted as listening (another program's listener answered)")
	}
}

func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	b.Write([]byte(strings.Repeat("a", 5000)))
	b.Write([]byte("listen tcp 127.0.0.1:4321: bind: address already in use\n"))
	got := b.String()
	if len(got) > 4096 || !strings.HasSuffix(got, "address already in use") {
		t.Errorf("tail: %d bytes ending %q", len(got), got[max(0, len(got)-60):])
	}
}
