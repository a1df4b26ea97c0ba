package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// deployEnv sets what an operator exports before `docker compose up` (docs/deploy/compose.yml).
func deployEnv(t *testing.T) {
	t.Helper()
	t.Setenv("GATEHOUSE_HOST", "stream.example.com")
	t.Setenv("GATEHOUSE_PUBLIC_IP", "203.0.113.10")
	t.Setenv("GATEHOUSE_ADMIN_HASH", "sha256:E9JJ8stBJ7QM+nV4ZoUCeHk/gU3tPFh/5YieiJp6n2w=")
}

// TestDeployConfigValidates runs `gatehouse validate` on the container's config, as its header
// tells operators to, and wants no warning either.
func TestDeployConfigValidates(t *testing.T) {
	deployEnv(t)
	var out, errOut bytes.Buffer
	if got := cli(context.Background(), []string{"validate", "-config", "../../docs/deploy/gatehouse.yml"}, nil, &out, &errOut); got != exitOK {
		t.Fatalf("validate: exit %d\n%s", got, errOut.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("validate warned:\n%s", errOut.String())
	}
}

// compose is the part of a compose file the invariants look at.
type compose struct {
	Services map[string]struct {
		NetworkMode string            `yaml:"network_mode"`
		User        string            `yaml:"user"`
		ReadOnly    bool              `yaml:"read_only"`
		CapDrop     []string          `yaml:"cap_drop"`
		Ports       []string          `yaml:"ports"`
		Labels      map[string]string `yaml:"labels"`
		Networks    map[string]*struct {
			IPv4 string `yaml:"ipv4_address"`
		} `yaml:"networks"`
	} `yaml:"services"`
	Networks map[string]*struct {
		Internal bool `yaml:"internal"`
		IPAM     struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

// TestComposeInvariants holds docs/deploy/compose.yml to the rules its header states, against the
// container config it mounts: no host networking anywhere; gatehouse non-root on a read-only root
// filesystem; only the UDP port published, and it is sfu.udp_port; the hooks listener bound to
// gatehouse's address on an internal network that publishes nothing; Traefik pointed at listen's
// port; trusted_proxies covering Traefik.
func TestComposeInvariants(t *testing.T) {
	src, err := os.ReadFile("../../docs/deploy/compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(src, &c); err != nil {
		t.Fatal(err)
	}
	deployEnv(t)
	cfg, err := loadConfig("../../docs/deploy/gatehouse.yml")
	if err != nil {
		t.Fatal(err)
	}

	for name, s := range c.Services {
		if s.NetworkMode != "" {
			t.Errorf("service %s: network_mode %q; want the default bridge networks (no host networking)", name, s.NetworkMode)
		}
	}
	g, ok := c.Services["gatehouse"]
	if !ok {
		t.Fatal("no gatehouse service")
	}
	if uid, _, _ := strings.Cut(g.User, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("gatehouse user %q; want a non-root uid", g.User)
	}
	if !g.ReadOnly {
		t.Error("gatehouse read_only is not true")
	}
	if len(g.CapDrop) != 1 || g.CapDrop[0] != "ALL" {
		t.Errorf("gatehouse cap_drop %v; want [ALL]", g.CapDrop)
	}

	wantUDP := strconv.Itoa(cfg.SFU.UDPPort) + ":" + strconv.Itoa(cfg.SFU.UDPPort) + "/udp"
	if len(g.Ports) != 1 || g.Ports[0] != wantUDP {
		t.Errorf("gatehouse ports %v; want only %q (sfu.udp_port; listeners stay unpublished)", g.Ports, wantUDP)
	}

	hooksHost, hooksPort, err := net.SplitHostPort(cfg.HooksListen)
	if err != nil {
		t.Fatal(err)
	}
	hooksAddr, err := netip.ParseAddr(hooksHost)
	if err != nil {
		t.Fatalf("hooks_listen %q: want an address on the internal network, not all interfaces", cfg.HooksListen)
	}
	var hooksNet string
	for name, n := range g.Networks {
		if n != nil && n.IPv4 == hooksHost {
			hooksNet = name
		}
	}
	if hooksNet == "" {
		t.Fatalf("hooks_listen %s is none of gatehouse's network addresses", hooksHost)
	}
	in := c.Networks[hooksNet]
	if in == nil || !in.Internal {
		t.Errorf("network %s (hooks) is not internal: true", hooksNet)
	} else if len(in.IPAM.Config) != 1 || !netip.MustParsePrefix(in.IPAM.Config[0].Subnet).Contains(hooksAddr) {
		t.Errorf("network %s subnet does not hold hooks_listen %s", hooksNet, hooksAddr)
	}
	for name, s := range c.Services {
		if _, on := s.Networks["edge"]; name == "traefik" && !on {
			t.Error("traefik is not on the edge network")
		}
		if _, on := s.Networks[hooksNet]; on && name == "traefik" {
			t.Errorf("traefik is on %s, the hooks network", hooksNet)
		}
		for _, p := range s.Ports {
			if strings.Contains(p, ":"+hooksPort) {
				t.Errorf("service %s publishes %q: the hooks port must stay unpublished", name, p)
			}
		}
	}

	_, listenPort, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Labels["traefik.http.services.gatehouse.loadbalancer.server.port"]; got != listenPort {
		t.Errorf("traefik service port %q; want listen's %s", got, listenPort)
	}
	if g.Labels["traefik.http.routers.gatehouse.tls.certresolver"] == "" {
		t.Error("the traefik router does not terminate TLS (no certresolver)")
	}
	traefik := netip.MustParseAddr(c.Services["traefik"].Networks["edge"].IPv4)
	trusted := false
	for _, p := range cfg.TrustedProxies {
		if p.Contains(traefik) {
			trusted = true
		}
	}
	if !trusted {
		t.Errorf("trusted_proxies %v do not hold traefik's address %s", cfg.TrustedProxies, traefik)
	}
}

// TestDockerfile checks the Dockerfile against the container config: the volume is data_dir, the
// user is the one compose runs, and the HEALTHCHECK asks the binary itself on listen's port.
func TestDockerfile(t *testing.T) {
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	deployEnv(t)
	cfg, err := loadConfig("../../docs/deploy/gatehouse.yml")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(cfg.Listen)
	d := string(src)
	for _, want := range []string{
		`CGO_ENABLED=0 go build -trimpath -buildvcs=false`,
		`VOLUME ["` + cfg.DataDir + `"]`,
		"USER 65532:65532",
		`"healthcheck", "-url", "http://127.0.0.1:` + port + `/healthz"`,
		"COPY docs/deploy/gatehouse.yml /etc/gatehouse/gatehouse.yml",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile has no %q", want)
		}
	}
	if m := regexp.MustCompile(`(?m)^FROM (\S+)\s*$`).FindAllStringSubmatch(d, -1); len(m) == 0 || !strings.Contains(m[len(m)-1][1], "distroless/static") {
		t.Errorf("final stage %v; want distroless/static", m)
	}
}

// TestDockerImageBuilds builds the image and runs the binary in it with a read-only root
// filesystem. It needs a running container engine; without one it says so and skips.
func TestDockerImageBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a container image")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker client installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no container engine reachable (docker info: %v): the image is not built here\n%s", err, lastLine(out))
	}
	tag := "gatehouse:test-" + strconv.Itoa(os.Getpid())
	build := exec.CommandContext(ctx, "docker", "build", "-t", tag, "--build-arg", "VERSION=test", "../..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	defer exec.Command("docker", "image", "rm", "-f", tag).Run()
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--read-only", tag, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "gatehouse test") {
		t.Errorf("docker run %s version: %v\n%s", tag, err, out)
	}
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
