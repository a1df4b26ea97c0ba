package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/tokens"
	"gatehouse/web/login"
)

type exampleMint struct{}

func (exampleMint) Issue(string, []authz.Permission, time.Duration) (string, error) { return "t", nil }
func (exampleMint) MaxTTL() time.Duration                                           { return time.Hour }

// TestExampleAdminLogsIn: config.example.yml with its admin uncommented, as its own comment
// says, logs in to /manage from loopback. The admin used to sit below the anonymous loopback
// `user: any` api grant, which matches first without looking at credentials, so the right
// password got an anonymous grant and the login form refused it.
func TestExampleAdminLogsIn(t *testing.T) {
	src, err := os.ReadFile("../../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	s = strings.Replace(s, "      # - user: admin\n      #   pass: argon2:...\n      #   ips: [\"127.0.0.1\", \"::1\"]      # drop this line to manage from other machines (use HTTPS)\n      #   permissions: [{action: api}]",
		"      - user: admin\n        pass: a-long-passphrase\n        ips: [\"127.0.0.1\", \"::1\"]\n        permissions: [{action: api}]", 1)
	if !strings.Contains(s, "- user: admin\n        pass: a-long") {
		t.Fatal("could not uncomment the admin")
	}
	iss, err := tokens.LoadIssuer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := engineFor(t, s, deps{issuer: iss})
	d := e.Authorize(context.Background(), &authz.Request{Action: authz.ActionAPI, User: "admin", Pass: "a-long-passphrase",
		IP: netip.MustParseAddr("127.0.0.1"), Source: login.LocalSource})
	if !d.Allowed() || d.Identity != "admin" {
		t.Fatalf("engine: allowed=%v identity=%q backend=%s, want admin allowed", d.Allowed(), d.Identity, d.Backend)
	}

	m, err := login.NewLocal(e, exampleMint{})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"username": {"admin"}, "password": {"a-long-passphrase"}, "next": {"/manage"}}
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8089/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://127.0.0.1:8089")
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("the example's admin, right password, from loopback: got %d, want 303 to /manage", rec.Code)
	}
}
