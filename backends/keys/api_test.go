package keys_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/backends/keys"
	"gatehouse/backends/keys/sqlitestore"
)

// adminOnly allows the api action to Basic admin:pw only.
type adminOnly struct{}

func (adminOnly) Authorize(_ context.Context, r *authz.Request) authz.Decision {
	if r.Action == authz.ActionAPI && r.User == "admin" && r.Pass == "pw" {
		return authz.Allowing("admin", time.Time{})
	}
	if r.User != "" {
		return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted")
	}
	return authz.Denying(authz.Unauthenticated, authz.ReasonNoCredentials, "credentials required")
}

func TestAPI(t *testing.T) {
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	yamlKey, _ := keys.NewKey("yaml-key-0123456789abcdef", "live/yaml", "", nil, time.Time{})
	be, _ := keys.New(keys.Config{Keys: []keys.Key{yamlKey}}, nil, keys.WithStore(st))
	srv := httptest.NewServer(keys.APIHandler(st, adminOnly{}, be.ConfigRecords, nil))
	defer srv.Close()
	var secrets []string
	var all strings.Builder // every answer after creation, to grep for secrets
	do := func(method, path, ctype, body string, auth bool) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if auth {
			req.SetBasicAuth("admin", "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, raw)
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if s, ok := m["secret"].(string); ok {
			secrets = append(secrets, s)
		} else {
			all.Write(raw)
		}
		return resp.StatusCode, m
	}
	const j = "application/json"

	code, k := do("POST", "/api/v1/keys", j, `{"path":"live/alice","label":"Alice’s OBS","owner":"alice","ttl":"12h","protocols":["rtmp"]}`, true)
	if code != 201 || !strings.HasPrefix(k["secret"].(string), keys.SecretPrefix) || k["status"] != "active" || k["expires"] == nil {
		t.Fatalf("create: %d %v", code, k)
	}
	id := k["id"].(string)
	code, l := do("GET", "/api/v1/keys", "", "", true)
	if ks := l["keys"].([]any); code != 200 || len(ks) != 2 || ks[1].(map[string]any)["read_only"] != true {
		t.Fatalf("list: %d %v", code, l)
	}
	code, r := do("POST", "/api/v1/keys/"+id+"/rotate", j, `{"grace":"5m"}`, true)
	if code != 201 || r["replaces"] != id || r["label"] != "Alice’s OBS" {
		t.Fatalf("rotate: %d %v", code, r)
	}
	if code, g := do("GET", "/api/v1/keys/"+id, "", "", true); code != 200 || g["status"] != "revoking" {
		t.Fatalf("old key after rotate: %d %v", code, g)
	}
	if code, g := do("DELETE", "/api/v1/keys/"+r["id"].(string), "", "", true); code != 200 || g["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", code, g)
	}

	tests := []struct {
		name, method, path, ctype, body string
		auth                            bool
		want                            int
		reason                          string
	}{
		{"no credentials", "GET", "/api/v1/keys", "", "", false, 401, "no_credentials"},
		{"create without credentials", "POST", "/api/v1/keys", j, `{"path":"live/x"}`, false, 401, "no_credentials"},
		{"form post (CSRF)", "POST", "/api/v1/keys", "application/x-www-form-urlencoded", `path=live/x`, true, 415, "content_type"},
		{"text/plain post (CSRF)", "POST", "/api/v1/keys", "text/plain", `{"path":"live/x"}`, true, 415, "content_type"},
		{"rotate without content type", "POST", "/api/v1/keys/" + id + "/rotate", "", ``, true, 415, "content_type"},
		{"unknown id", "GET", "/api/v1/keys/key_aaaaaaaaaa", "", "", true, 404, "not_found"},
		{"malformed id", "DELETE", "/api/v1/keys/%FF%FE", "", "", true, 404, "not_found"},
		{"revoke a YAML key", "DELETE", "/api/v1/keys/config:1", "", "", true, 409, "read_only"},
		{"rotate a revoked key", "POST", "/api/v1/keys/" + id + "/rotate", j, ``, true, 409, "revoked"},
		{"oversized label", "POST", "/api/v1/keys", j, `{"path":"live/x","label":"` + strings.Repeat("x", keys.MaxLabelLen+1) + `"}`, true, 400, "invalid"},
		{"non-UTF-8", "POST", "/api/v1/keys", j, "{\"path\":\"live/x\",\"label\":\"\xff\xfe\"}", true, 400, "invalid_utf8"},
		{"control character", "POST", "/api/v1/keys", j, `{"path":"live/x","label":"a\u0000b"}`, true, 400, "invalid"},
		{"pattern path", "POST", "/api/v1/keys", j, `{"path":"live/*"}`, true, 400, "invalid"},
		{"traversal path", "POST", "/api/v1/keys", j, `{"path":"live/../etc"}`, true, 400, "invalid"},
		{"api action", "POST", "/api/v1/keys", j, `{"path":"live/x","actions":["api"]}`, true, 400, "invalid"},
		{"unknown action", "POST", "/api/v1/keys", j, `{"path":"live/x","actions":["fly"]}`, true, 400, "invalid"},
		{"bad ttl", "POST", "/api/v1/keys", j, `{"path":"live/x","ttl":"-1h"}`, true, 400, "invalid"},
		{"ttl and expires", "POST", "/api/v1/keys", j, `{"path":"live/x","ttl":"1h","expires":"2099-01-01T00:00:00Z"}`, true, 400, "invalid"},
		{"past expiry", "POST", "/api/v1/keys", j, `{"path":"live/x","expires":"2001-01-01T00:00:00Z"}`, true, 400, "invalid"},
		{"unknown field", "POST", "/api/v1/keys", j, `{"path":"live/x","secret":"mine"}`, true, 400, "invalid_json"},
		{"wrong type", "POST", "/api/v1/keys", j, `{"path":7}`, true, 400, "invalid_json"},
		{"trailing data", "POST", "/api/v1/keys", j, `{"path":"live/x"} {}`, true, 400, "invalid_json"},
		{"oversized body", "POST", "/api/v1/keys", j, `{"label":"` + strings.Repeat("x", keys.MaxBody) + `"}`, true, 413, "body_too_large"},
		{"bad grace", "POST", "/api/v1/keys/" + id + "/rotate", j, `{"grace":"soon"}`, true, 400, "invalid"},
		{"unknown endpoint", "GET", "/api/v1/keys/" + id + "/secret", "", "", true, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, p := do(tt.method, tt.path, tt.ctype, tt.body, tt.auth)
			if code != tt.want || p["reason"] != tt.reason || p["detail"] == "" {
				t.Errorf("got %d %v, want %d reason %s", code, p, tt.want, tt.reason)
			}
		})
	}
	if len(secrets) != 2 {
		t.Fatalf("%d secrets shown, want 2 (create, rotate)", len(secrets))
	}
	for _, s := range secrets {
		if strings.Contains(all.String(), s) || strings.Contains(all.String(), s[len(keys.SecretPrefix):]) {
			t.Errorf("a secret appears in an answer other than its creation")
		}
	}
}

// Without a store (it could not be opened), the list shows the YAML keys and changes answer 503.
func TestAPIWithoutStore(t *testing.T) {
	yamlKey, _ := keys.NewKey("yaml-key-0123456789abcdef", "live/yaml", "", nil, time.Time{})
	be, _ := keys.New(keys.Config{Keys: []keys.Key{yamlKey}}, nil)
	srv := httptest.NewServer(keys.APIHandler(nil, adminOnly{}, be.ConfigRecords, nil))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/keys", nil)
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"config:1"`) {
		t.Fatalf("list: %d %s", resp.StatusCode, raw)
	}
	req, _ = http.NewRequest("POST", srv.URL+"/api/v1/keys", strings.NewReader(`{"path":"live/x"}`))
	req.SetBasicAuth("admin", "pw")
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("create without a store: %d, want 503", resp.StatusCode)
	}
}

// anyAPI is the built-in defaults' grant: action api for any (anonymous) client.
type anyAPI struct{}

func (anyAPI) Authorize(_ context.Context, r *authz.Request) authz.Decision {
	if r.Action == authz.ActionAPI {
		return authz.Allowing("", time.Time{})
	}
	return authz.Denying(authz.Unauthenticated, authz.ReasonNoCredentials, "credentials required")
}

// TestAPIAnonymousGrantRefused: an anonymous api grant (user: any from loopback, as in the
// built-in defaults) must not list, mint, rotate or revoke keys: any local process, container or
// DNS-rebound page shares the loopback address. It used to create a publish key (201).
func TestAPIAnonymousGrantRefused(t *testing.T) {
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(keys.APIHandler(st, anyAPI{}, nil, nil))
	defer srv.Close()
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/keys", ""},
		{http.MethodPost, "/api/v1/keys", `{"path":"live/ceo"}`},
		{http.MethodDelete, "/api/v1/keys/key_aaaaaaaaaa", ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(raw), "identity_required") || strings.Contains(string(raw), "ghk_") {
			t.Errorf("%s %s with an anonymous grant: got %d %s, want 401 identity_required", c.method, c.path, resp.StatusCode, raw)
		}
	}
	if recs, err := st.List(context.Background()); err != nil || len(recs) != 0 {
		t.Errorf("store holds %d keys (%v), want none", len(recs), err)
	}
}

// TestAPIRotateExpiredKey: rotating an expired key is refused (409, reason expired) instead of
// answering 201 with a new key that is already expired; the old key stays as it was.
func TestAPIRotateExpiredKey(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), sqlitestore.FileName),
		sqlitestore.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, _, err := st.Create(context.Background(), keys.Spec{Path: "live/alice", Expires: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	now = t0.Add(2 * time.Hour)
	srv := httptest.NewServer(keys.APIHandler(st, adminOnly{}, nil, func() time.Time { return now }))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/keys/"+rec.ID+"/rotate", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(raw), `"expired"`) || strings.Contains(string(raw), "ghk_") {
		t.Fatalf("rotate an expired key: got %d %s, want 409 expired", resp.StatusCode, raw)
	}
	if recs, err := st.List(context.Background()); err != nil || len(recs) != 1 || !recs[0].Revoked.IsZero() {
		t.Fatalf("store after the refused rotation: %+v (%v), want the one key, not revoked", recs, err)
	}
}
