package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// releaseARM64 builds the linux/arm64 release binary once per test run, with the release
// script's own flags (.ci/release), so what is tested is what `make release` ships. TestMain
// removes its directory (sharedDirs) after the run.
var releaseARM64 = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-release")
	if err != nil {
		return "", err
	}
	sharedDirs.add(dir)
	return releaseBuild(dir)
})

// sharedDirs are the directories of builds shared by several tests (the race binary, the arm64
// release), removed by TestMain when the package's tests end.
var sharedDirs tempDirs

type tempDirs struct {
	mu   sync.Mutex
	dirs []string
}

func (d *tempDirs) add(dir string) { d.mu.Lock(); d.dirs = append(d.dirs, dir); d.mu.Unlock() }

func (d *tempDirs) removeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dir := range d.dirs {
		os.RemoveAll(dir)
	}
	d.dirs = nil
}

func releaseBuild(dir string) (string, error) {
	out, err := exec.Command("../../.ci/release", dir, "smoke-test", "linux/arm64").CombinedOutput()
	if err != nil {
		return "", &buildError{err, out}
	}
	return filepath.Join(dir, "gatehouse-linux-arm64"), nil
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return ".ci/release: " + e.err.Error() + "\n" + string(e.out) }

// TestARM64Smoke runs the arm64 release binary under user-mode emulation (qemu-aarch64-static,
// called directly, so binfmt_misc is not needed): it validates config.example.yml, starts on
// loopback ports with that config, answers a MediaMTX hook (one allowed, one denied) and serves
// /healthz. make test installs qemu-user-static (.ci/install-deps).
func TestARM64Smoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a release binary and runs it under qemu")
	}
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Skip("qemu-aarch64-static not installed (Debian: apt-get install qemu-user-static; make test installs it)")
	}
	bin, err := releaseARM64()
	if err != nil {
		t.Fatal(err)
	}
	// Everything under emulation shares one bound: qemu is slow, but not this slow.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	out, err := exec.CommandContext(ctx, qemu, bin, "validate", "-config", "../../config.example.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config.example.yml: ok") {
		t.Fatalf("validate under qemu: %v\n%s", err, out)
	}

	// The example config on loopback ephemeral ports and a temporary data_dir.
	src, err := os.ReadFile("../../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := string(src)
	for _, r := range [][2]string{
		{`listen: ":8089"`, `listen: "127.0.0.1:0"`},
		{`hooks_listen: "127.0.0.1:8090"`, `hooks_listen: "127.0.0.1:0"`},
		{"data_dir: ./data", "data_dir: " + filepath.Join(dir, "data")},
		{"udp_port: 8189", "udp_port: 0"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("config.example.yml has no %q to replace", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	path := filepath.Join(dir, "gatehouse.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, qemu, bin, "run", "-config", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs bytes.Buffer
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := startedRe.FindStringSubmatch(sc.Text()); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
		}
		done <- cmd.Wait()
	}()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			mu.Lock()
			t.Logf("gatehouse (arm64, qemu) log:\n%s", logs.String())
			mu.Unlock()
		}
	}()
	var public, hooks string
	select {
	case a := <-ready:
		public, hooks = "http://"+a[0], "http://"+a[1]
	case err := <-done:
		done <- err
		t.Fatalf("gatehouse exited early: %v", err)
	case <-ctx.Done():
		t.Fatal("gatehouse (arm64, qemu) did not start within the bound")
	}

	for _, tt := range []struct {
		name       string
		body       string
		wantStatus int
	}{
		{"anyone reads", mtx("127.0.0.1", "", "", "read", "live/cam", "hls"), 200},
		{"a wrong password cannot publish", mtx("127.0.0.1", "streamer", "wrong", "publish", "live/cam", "rtmp"), 401},
	} {
		if status, r := postMediaMTX(t, hooks, tt.body); status != tt.wantStatus {
			t.Errorf("%s: got %d %q, want %d", tt.name, status, r.Reason, tt.wantStatus)
		}
	}
	var hout, herr bytes.Buffer
	if got := cli(ctx, []string{"healthcheck", "-url", public + "/healthz", "-timeout", "20s"}, nil, &hout, &herr); got != exitOK {
		t.Errorf("GET /healthz: exit %d: %s", got, herr.String())
	}
}

// TestReleaseReproducible builds the arm64 release binary a second time into another directory
// and compares the bytes: the release flags leave no path, time, VCS state or build id in it.
// (Package compilation is shared through the build cache; the link, where build ids and paths
// would differ, runs each time.)
func TestReleaseReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a release binary twice")
	}
	first, err := releaseARM64()
	if err != nil {
		t.Fatal(err)
	}
	second, err := releaseBuild(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two release builds of one tree differ (%d and %d bytes)", len(a), len(b))
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(a, []byte(root+"/")) {
		t.Error("the release binary contains a build machine path (-trimpath missing?)")
	}
}
