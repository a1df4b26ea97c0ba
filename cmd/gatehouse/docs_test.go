package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
)

// productionValues fill the test templates the way the README shows them.
var productionValues = map[string]string{
	"Hook":          "http://127.0.0.1:8090/hooks/nginx-rtmp",
	"UpdateTimeout": "30s",
	"Gatehouse":     "http://127.0.0.1:8090",
	"Root":          "/var/www",
	// docs/scaling.md: one replica (gh-b) and the hooks load balancer on the streaming server.
	"Public":            ":8089",
	"HooksListen":       "10.0.0.3:8090",
	"DataDir":           "/var/lib/gatehouse",
	"NodeID":            "gh-b",
	"NodeURL":           "http://10.0.0.3:8089",
	"Redis":             "10.0.0.10:6379",
	"RedisPasswordFile": "/run/secrets/redis-password",
	"ReplicaA":          "10.0.0.2:8090",
	"ReplicaB":          "10.0.0.3:8090",
	"ReplicaC":          "10.0.0.4:8090",
	"LB":                "127.0.0.1:8090",
}

var testedBlockRe = regexp.MustCompile("(?s)<!-- tested: (\\S+) -->\\s*```\\w*\\n(.*?)```")

// TestReadmeSnippetsAreTheTestedOnes: every block marked "tested" in the README and in
// docs/scaling.md must be the template that a real-server test runs, rendered with production
// values, so the copy-paste config is the exercised one.
func TestReadmeSnippetsAreTheTestedOnes(t *testing.T) {
	for _, doc := range []struct {
		path string
		min  int
	}{{"README.md", 2}, {"docs/scaling.md", 3}} {
		text, err := os.ReadFile(filepath.Join("../..", doc.path))
		if err != nil {
			t.Fatal(err)
		}
		blocks := testedBlockRe.FindAllSubmatch(text, -1)
		if len(blocks) < doc.min {
			t.Fatalf("found %d tested blocks in %s, want at least %d", len(blocks), doc.path, doc.min)
		}
		for _, b := range blocks {
			path, got := string(b[1]), strings.TrimSpace(string(b[2]))
			t.Run(doc.path+"/"+path, func(t *testing.T) {
				src, err := os.ReadFile(filepath.Join("../..", path))
				if err != nil {
					t.Fatal(err)
				}
				tmpl, err := template.New(path).Option("missingkey=error").Parse(string(src))
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := tmpl.Execute(&buf, productionValues); err != nil {
					t.Fatal(err)
				}
				want := strings.TrimSpace(stripLeadingComments(buf.String()))
				if got != want {
					t.Errorf("%s block differs from %s rendered with production values.\ngot:\n%s\nwant:\n%s", doc.path, path, got, want)
				}
			})
		}
	}
}

func stripLeadingComments(s string) string {
	lines := strings.Split(s, "\n")
	for len(lines) > 0 && (strings.HasPrefix(strings.TrimSpace(lines[0]), "#") || strings.TrimSpace(lines[0]) == "") {
		lines = lines[1:]
	}
	return strings.Join(lines, "\n")
}

var yamlBlockRe = regexp.MustCompile("(?s)```yaml\\n(# gatehouse\\.yml\\n.*?)```")

// TestReadmeConfigsLoad: every README YAML block headed "# gatehouse.yml" loads through the real
// loader and builds every backend.
func TestReadmeConfigsLoad(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ALICE_STREAM_KEY", "k3y-for-readme-test-0123")
	t.Setenv("ADMIN_PASS", "readme-admin-pass")
	t.Setenv("MTX_API_PASS", "readme-mtx-api-pass")
	t.Setenv("OIDC_CLIENT_SECRET", "readme-oidc-client-secret")
	blocks := yamlBlockRe.FindAllSubmatch(readme, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d gatehouse.yml blocks, want at least 2", len(blocks))
	}
	for i, b := range blocks {
		cfg, err := parseConfig("README block", b[1])
		if err == nil {
			err = dryBuild(cfg)
		}
		if err != nil {
			t.Errorf("README gatehouse.yml block %d: %v\n%s", i, err, b[1])
		}
	}
}

// TestDocsNameRealTests: every test, benchmark and fuzz target the docs cite as evidence exists,
// so a renamed or deleted test cannot leave a claim standing on nothing.
func TestDocsNameRealTests(t *testing.T) {
	defined := map[string]bool{}
	funcRe := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz|Example)\w*)\(`)
	err := filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "bench-out") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range funcRe.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) < 100 {
		t.Fatalf("found only %d test functions: the walk is broken", len(defined))
	}
	citeRe := regexp.MustCompile("`((?:Test|Benchmark|Fuzz)[A-Z]\\w*)")
	docs, _ := filepath.Glob("../../docs/*.md")
	docs = append(docs, "../../README.md")
	cited := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range citeRe.FindAllSubmatch(b, -1) {
			cited++
			if name := string(m[1]); !defined[name] {
				t.Errorf("%s cites %s, which no _test.go file defines", filepath.Base(doc), name)
			}
		}
	}
	if cited == 0 {
		t.Fatal("no cited tests found: the pattern is broken")
	}
}
