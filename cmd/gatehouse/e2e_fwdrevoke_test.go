package main

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// fwdRevokeConfig lets managed keys decide; admin may manage them.
const fwdRevokeConfig = `auth:
  methods: [keys, internal]
  keys: []
  internal:
    users:
      - user: admin
        pass: adminpass
        permissions: [{action: api}]
`

// TestEndToEndKeyRevocationEndsForwardAuthCookies: an HLS viewer admitted through forward auth
// by a managed read key (?key=) gets a segment cookie; revoking the key through the API refuses
// the cookie alone (it used to stay good for cookie.max_age: a revocation is neither a reload nor
// a ban, and forward auth has no kicker).
func TestEndToEndKeyRevocationEndsForwardAuthCookies(t *testing.T) {
	public, hooks, _ := startServe(t, fwdRevokeConfig)
	base := "http://" + public
	var k struct{ ID, Secret string }
	if code := api(t, "POST", base+"/api/v1/keys", `{"path":"live/cam","label":"viewer","actions":["read"]}`, &k); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	subrequest := func(uri string, c *http.Cookie) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+hooks+"/hooks/forward-auth", nil)
		req.Header.Set("X-Original-URI", uri)
		req.Header.Set("X-Original-Method", "GET")
		if c != nil {
			req.AddCookie(c)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	r := subrequest("/live/cam/index.m3u8?key="+k.Secret, nil)
	if r.StatusCode != 204 || len(r.Cookies()) != 1 {
		t.Fatalf("playlist with the key: %d and %d cookies, want 204 and a cookie", r.StatusCode, len(r.Cookies()))
	}
	cookie := r.Cookies()[0]
	if r := subrequest("/live/cam/seg0.ts", cookie); r.StatusCode != 204 {
		t.Fatalf("segment with the cookie: %d, want 204", r.StatusCode)
	}
	if code := api(t, "DELETE", base+"/api/v1/keys/"+k.ID, "", nil); code != 200 && code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	deadline := time.Now().Add(20 * time.Second) // the store's feed is polled every second
	for {
		got := subrequest("/live/cam/seg1.ts", cookie).StatusCode
		if got == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment with the revoked key's cookie: still %d, want 401", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
