package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/authz/conf"
	"gatehouse/authz/live"
	"gatehouse/web"
)

func TestParsePlayURL(t *testing.T) {
	tests := []struct {
		name, tmpl, path, want, err string
	}{
		{"hls in the path", "http://cdn.example:8080/hls/{path}.m3u8", "live/alice", "http://cdn.example:8080/hls/live/alice.m3u8", ""},
		{"https in the query", "https://play.example/?stream={path}&autoplay=1", "live/alice", "https://play.example/?stream=live%2Falice&autoplay=1", ""},
		{"hostile path stays in its segment", "http://cdn.example/hls/{path}.m3u8", `live/<script>"x'?a=1#f`, "http://cdn.example/hls/live/%3Cscript%3E%22x%27%3Fa%3D1%23f.m3u8", ""},
		{"hostile path stays in its parameter", "http://cdn.example/p?s={path}", "a&b=c d", "http://cdn.example/p?s=a%26b%3Dc%20d", ""},
		{"no placeholder", "http://cdn.example/hls/live.m3u8", "", "", "needs {path}"},
		{"twice", "http://cdn.example/{path}/{path}.m3u8", "", "", "once"},
		{"other placeholder", "http://cdn.example/{app}/{path}.m3u8", "", "", "only the placeholder"},
		{"not http", "rtmp://cdn.example/live/{path}", "", "", "http or https"},
		{"javascript", "javascript:alert(1)//{path}", "", "", "http or https"},
		{"relative", "/hls/{path}.m3u8", "", "", "http or https"},
		{"in the host", "http://{path}.cdn.example/x", "", "", "after the host"},
		{"right after the host", "http://cdn.example{path}", "", "", "after the host"},
		{"in the port", "http://cdn.example:{path}/x", "", "", ""},
		{"in the fragment", "http://cdn.example/#{path}", "", "", "fragment"},
		{"credentials", "http://user:pw@cdn.example/{path}", "", "", "user name or password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := web.ParsePlayURL(tt.tmpl)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v (%q), want an error containing %q", err, p, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Expand(tt.path); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestConfigPlayURLs(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"bad template at its line", "title: x\nplay_urls:\n  nginx-rtmp: ftp://x/{path}\n", "t:4: web.play_urls.nginx-rtmp: a play URL must be an http or https URL"},
		{"unknown source at its line", "play_urls:\n  nginx-rtmp: http://cdn/hls/{path}.m3u8\n  nginxrtmp: http://cdn/{path}\n", `t:4: web.play_urls.nginxrtmp: unknown source "nginxrtmp"`},
		{"sfu plays itself", "play_urls:\n  sfu: http://cdn/{path}\n", "play in the grid itself"},
		{"rtmp server with a path", "rtmp_server: rtmp://live.example.com/live\n", "t:2: web.rtmp_server: the server only"},
		{"rtmp server not rtmp", "rtmp_server: http://live.example.com\n", "web.rtmp_server: an rtmp://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c struct {
				Web web.Config `yaml:"web"`
			}
			src := "web:\n" + indent(tt.src)
			err := conf.Decode("t", []byte(src), nil, &c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	var c struct {
		Web web.Config `yaml:"web"`
	}
	err := conf.Decode("t", []byte("web:\n  play_urls:\n    nginx-rtmp: http://cdn.example/hls/{path}.m3u8\n    srs: https://srs.example/players/?app={path}\n  rtmp_server: rtmp://live.example.com:1935\n"), nil, &c)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Web.PlayURLs["nginx-rtmp"].Expand("live/a b"); got != "http://cdn.example/hls/live/a%20b.m3u8" {
		t.Errorf("got %s", got)
	}
}

// indent shifts every line of s right by one level (the lines of a test's web section).
func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

// TestPagesCarryPlayURLs: the grid's script reads the templates and the RTMP server from the
// page intact (html/template must not treat them as URLs and replace them).
func TestPagesCarryPlayURLs(t *testing.T) {
	p, err := web.ParsePlayURL("http://cdn.example/hls/{path}.m3u8?a=1&b=2")
	if err != nil {
		t.Fatal(err)
	}
	reg := live.NewRegistry()
	app := web.New(web.Options{Registry: reg, Auth: publicOnly{}, PlayURLs: map[string]web.PlayURL{"nginx-rtmp": p},
		RTMPServer: "rtmp://live.example.com:1935"})
	defer app.Close()
	rec := httptest.NewRecorder()
	app.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`data-play-templates="{&#34;nginx-rtmp&#34;:&#34;http://cdn.example/hls/{path}.m3u8?a=1\u0026b=2&#34;}"`,
		`data-rtmp-server="rtmp://live.example.com:1935"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s:\n%s", want, body)
		}
	}
}
