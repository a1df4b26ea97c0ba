package login_test

import (
	"strings"
	"testing"

	"gatehouse/authz/conf"
	"gatehouse/web/login"
)

func TestConfigDecode(t *testing.T) {
	good := `issuer: https://kc.example.com/realms/stream
client_id: gatehouse
client_secret: s3cret-value
redirect_url: https://stream.example.com/login/callback
roles:
  viewer: [{action: read, path: "members/*"}]
`
	var c login.Config
	if err := conf.Decode("t", []byte(good), nil, &c); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if len(c.Roles["viewer"]) != 1 || c.ClientSecret.String() != "[redacted]" {
		t.Errorf("decoded: %+v", c)
	}
	tests := []struct{ name, src, want string }{
		{"unknown key", good + "colour: red\n", "colour"},
		{"no issuer", strings.Replace(good, "issuer: https://kc.example.com/realms/stream\n", "", 1), "login: issuer must be"},
		{"issuer not a URL", strings.Replace(good, "https://kc.example.com/realms/stream", "kc.example.com", 1), "t:1: issuer: login: issuer"},
		{"redirect elsewhere", strings.Replace(good, "/login/callback", "/cb", 1), "t:4: redirect_url: login: redirect_url"},
		{"no client id", strings.Replace(good, "client_id: gatehouse\n", "", 1), "login: client_id is required"},
		{"bad permission", good + "  admin: [{action: fly}]\n", "t:7"},
		{"zero session ttl", good + "session_ttl: 0s\n", "session_ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c login.Config
			err := conf.Decode("t", []byte(tt.src), nil, &c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("the error shows the client secret: %v", err)
			}
		})
	}
}
