package main

import (
	"strings"
	"testing"

	"gatehouse/protocols/mediamtx"
	"gatehouse/protocols/nginxrtmp"
	"gatehouse/protocols/ome"
	"gatehouse/protocols/srs"
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
		{"play URL for every remote source, checked at its line", "web:\n  play_urls:\n    nginx-rtmp: http://cdn/hls/{path}.m3u8\n    mediamtx: http://cdn:8889/{path}\n    ome: http://cdn/app/{path}/llhls.m3u8\n    srs: http://cdn:8080/{path}.flv\n    sfu: http://cdn/{path}\n", "t:7: web.play_urls.sfu"},
		{"play URL with the path in the host", "web:\n  play_urls:\n    nginx-rtmp: http://{path}.cdn/x\n", "t:3: web.play_urls.nginx-rtmp: a play URL takes {path}"},
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

// TestWebPlayURLSources: web.play_urls accepts the source of every adapter whose streams the
// grid lists without playing them.
func TestWebPlayURLSources(t *testing.T) {
	src := "web:\n  play_urls:\n"
	for _, s := range []string{nginxrtmp.Source, mediamtx.Source, ome.Source, srs.Source} {
		src += "    " + s + ": http://cdn.example/{path}\n"
	}
	cfg, err := parseConfig("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(cfg.Web.PlayURLs); got != 4 {
		t.Errorf("got %d play URLs, want 4", got)
	}
}
