package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const localWebConfig = `listen: "127.0.0.1:0"
hooks_listen: "127.0.0.1:0"
data_dir: %DATA%
watch_config: false
auth:
  methods: [internal, jwt]
  internal:
    users:
      - user: admin
        pass: ${E2E_ADMIN_PASS}
        permissions: [{action: api}]
      - user: any
        permissions: [{action: read, path: "public/*"}]
  jwt: {}
web:
  title: Local streams
`

const localAdminPass = "e2e-admin-passphrase-42"

// TestWebLocalAdmin: without an identity provider, the operator logs in to /manage with the
// form (a wrong password first is refused), and sees the recent decisions with the denials
// first, their reasons, and the per-minute chart.
func TestWebLocalAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chrome := chromium(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(localWebConfig, "%DATA%", filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	gh := startBinary(t, cfgPath, "E2E_ADMIN_PASS="+localAdminPass)
	base := gh.public
	t.Cleanup(func() {
		if logs := gh.logs(); strings.Contains(logs, localAdminPass) || strings.Contains(logs, "wrong-guess-pw") {
			t.Errorf("the gatehouse log holds a password")
		}
	})
	// A denial to find on /manage: a script guessing the API's password.
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/keys", nil)
	req.SetBasicAuth("admin", "wrong-guess-pw")
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if res.Body.Close(); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong API password: got %d, want 401", res.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("hide-scrollbars", true))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	p := newPage(t, bctx, "operator")
	p.open(base + "/")
	var loginButton bool
	p.eval(`!!document.querySelector('a[href^="/login"]')`, &loginButton)
	if loginButton {
		t.Errorf("the grid offers viewers a login only operators can use")
	}
	p.open(base + "/manage")
	p.await("the login form", `location.pathname === "/login" && document.querySelector('input[name="password"]')`, 10*time.Second)
	p.shot("login-local")
	submit := func(pass string) {
		p.eval(fmt.Sprintf(`(() => { const f = document.querySelector("form"); f.username.value = "admin"; f.password.value = %q; f.submit(); return true })()`, pass), nil)
	}
	submit("wrong-guess-pw")
	p.await("the refusal", `document.querySelector(".notice.error") && document.querySelector(".notice.error").innerText.includes("Wrong user name or password")`, 10*time.Second)
	submit(localAdminPass)
	p.await("/manage as admin", `location.pathname === "/manage" && document.body.dataset.user === "admin"`, 10*time.Second)
	p.await("the decisions", `document.querySelector("#decisions-table tr[data-result]")`, 10*time.Second)

	var first struct {
		Result, Text string
	}
	p.eval(`(() => { const r = document.querySelector("#decisions-table tr[data-result]"); return {result: r.dataset.result, text: r.innerText} })()`, &first)
	if first.Result != "denied" || !strings.Contains(first.Text, "wrong user or password") {
		t.Errorf("first decision: got %+v, want a denial with its reason", first)
	}
	var allowed int
	p.eval(`document.querySelectorAll('#decisions-table tr[data-result="allow"]').length`, &allowed)
	if allowed == 0 {
		t.Errorf("no allowed decision listed after the denials")
	}
	p.await("the chart drawn", `(() => { const i = document.getElementById("chart"); return i.complete && i.naturalWidth > 0 && i.alt.includes("denied") })()`, 10*time.Second)
	p.eval(`document.getElementById("h-decisions").scrollIntoView(); true`, nil)
	p.shot("manage-decisions")
	if ctx.Err() != nil {
		t.Fatalf("browser budget exceeded")
	}
}
