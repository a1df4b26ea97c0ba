package main

import (
	"strings"
	"testing"
)

func TestWebConfig(t *testing.T) {
	login := `web:
  login:
    issuer: https://kc.example.com/realms/stream
    client_id: gatehouse
    redirect_url: https://stream.example.com/login/callback
`
	tests := []struct{ name, src, want string }{
		{"login needs a jwt method", "auth:\n  methods: [internal]\n  internal: {users: [{user: any, permissions: [{action: read}]}]}\n" + login, "web.login: the viewer tokens"},
		{"unknown key", "web:\n  tittle: x\n", "tittle"},
		{"login error has its line", "web:\n  login:\n    client_id: x\n", "web.login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("t", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	cfg, err := parseConfig("t", []byte("auth:\n  methods: [jwt]\n  jwt: {}\n"+login))
	if err != nil || cfg.Web == nil || cfg.Web.Login == nil || cfg.Web.Login.ClientID != "gatehouse" {
		t.Fatalf("good web section: %v %+v", err, cfg)
	}
}

// TestWebLocalLoginWarnsWithoutJWT: /manage's local login calls the API with gatehouse tokens,
// which only a jwt method verifies; without one the config loads with a warning.
func TestWebLocalLoginWarnsWithoutJWT(t *testing.T) {
	for _, tc := range []struct {
		name, methods string
		warn          bool
	}{
		{"no jwt", "[internal]", true},
		{"jwt", "[internal, jwt]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig("t", []byte("auth:\n  methods: "+tc.methods+"\n  jwt: {}\n  internal: {users: [{user: any, permissions: [{action: read}]}]}\nweb: {title: x}\n"))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Contains(strings.Join(cfg.warnings(), "\n"), "local login")
			if got != tc.warn {
				t.Errorf("warning: got %v, want %v (%v)", got, tc.warn, cfg.warnings())
			}
		})
	}
}
