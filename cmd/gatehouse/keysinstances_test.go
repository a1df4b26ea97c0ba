package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestKeysAPIListsEveryInstance: /api/v1/keys lists the YAML keys of every keys method instance,
// not only of the one with id "keys", under ids that cannot collide.
func TestKeysAPIListsEveryInstance(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yml")
	src := `listen: 127.0.0.1:0
hooks_listen: 127.0.0.1:0
watch_config: false
data_dir: ` + filepath.Join(dir, "data") + `
auth:
  methods:
    - {type: keys}
    - {type: keys, id: guests, config: {keys: [{key: guest-key-0123456789abcdef, path: live/guest}]}}
    - {type: internal}
  keys:
    - {key: studio-key-0123456789abcdef, path: live/studio}
  internal:
    users:
      - {user: admin, pass: adminpass, permissions: [{action: api}]}
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := serveFile(t, cfg)
	base := "http://" + pub
	req, _ := http.NewRequest("GET", base+"/api/v1/keys", nil)
	req.SetBasicAuth("admin", "adminpass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Keys []struct{ ID, Path string } }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %v", resp.StatusCode, err)
	}
	var got []string
	for _, k := range list.Keys {
		got = append(got, k.ID+" "+k.Path)
	}
	slices.Sort(got)
	if want := []string{"config:1 live/studio", "config:guests:1 live/guest"}; !slices.Equal(got, want) {
		t.Errorf("YAML keys listed: got %v, want %v", got, want)
	}
}

// TestSameSecretInTwoKeysInstances: a secret configured in two keys instances is a config error
// naming the second instance's line.
func TestSameSecretInTwoKeysInstances(t *testing.T) {
	_, err := parseConfig("t.yml", []byte(`auth:
  methods:
    - {type: keys}
    - {type: keys, id: guests, config: {keys: [{key: other-key-0123456789abcdef, path: live/o}, {key: studio-key-0123456789abcdef, path: live/guest}]}}
  keys:
    - {key: studio-key-0123456789abcdef, path: live/studio}
`))
	want := `t.yml:4: auth.methods[1]: method "guests": its keys[1] has the same secret as keys[0] of method "keys"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
	if strings.Contains(err.Error(), "studio-key") {
		t.Error("the error names the secret")
	}
}
