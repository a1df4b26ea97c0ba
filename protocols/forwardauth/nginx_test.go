package forwardauth

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"gatehouse/authz"
	"gatehouse/protocols/nginxtest"
)

// startNginx runs nginx as a child process (single process, foreground) with testdata's location
// template in front of testdata/hls, asking gatehouse at authURL. It returns nginx's base URL.
func startNginx(t *testing.T, authURL string) string {
	t.Helper()
	bin := nginxtest.Binary(t)
	root, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	n := nginxtest.Start(t, bin, func(dir string, port int) string {
		render(t, "testdata/nginx/gatehouse-location.conf", filepath.Join(dir, "gatehouse-location.conf"),
			map[string]any{"Gatehouse": authURL, "Root": root})
		return renderString(t, "testdata/nginx/nginx.conf.tmpl", map[string]any{"Dir": dir, "Port": port})
	})
	return "http://" + n.Addr
}

func render(t *testing.T, src, dst string, data any) {
	t.Helper()
	if err := os.WriteFile(dst, []byte(renderString(t, src, data)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func renderString(t *testing.T, src string, data any) string {
	t.Helper()
	tpl, err := template.ParseFiles(src)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestNginxAuthRequest puts a real nginx with the README's location block in front of a file-based
// HLS directory and gatehouse's handler.
func TestNginxAuthRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx")
	}
	be := &backend{}
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: be}).WithPolicy(queryTokens), nil)
	rec := &recorder{}
	h := New(Config{Rules: []Rule{{Prefix: "/hls/", StripSuffix: true}}}, eng, rec, nil)
	mux := http.NewServeMux()
	mux.Handle("/hooks/forward-auth", h)
	gh := httptest.NewServer(mux)
	defer gh.Close()
	base := startNginx(t, gh.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(t *testing.T, method, uri string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	camPlaylist, err := os.ReadFile("testdata/hls/live/cam/index.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	camSegment, err := os.ReadFile("testdata/hls/live/cam/seg0.ts")
	if err != nil {
		t.Fatal(err)
	}

	// The playlist with its token: 200, the file, and the cookie copied by add_header.
	resp, body := get(t, "GET", "/hls/live/cam/index.m3u8?token=viewer")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, camPlaylist) {
		t.Fatalf("playlist with token: got %d %q, want 200 and the playlist", resp.StatusCode, body)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != DefaultCookieName || cookies[0].Path != "/hls/live/cam/" || !cookies[0].HttpOnly || !cookies[0].Secure {
		t.Fatalf("got cookies %v, want %s with Path=/hls/live/cam/ HttpOnly Secure (add_header Set-Cookie)", cookies, DefaultCookieName)
	}
	cookie := DefaultCookieName + "=" + cookies[0].Value
	otherCookie := ""
	{
		// A legitimately issued cookie for live/other (carol may read anything).
		r, _ := get(t, "GET", "/hls/live/other/index.m3u8?user=carol&pass=secret")
		if r.StatusCode != http.StatusOK || len(r.Cookies()) != 1 {
			t.Fatalf("carol on live/other: got %d with %d cookies", r.StatusCode, len(r.Cookies()))
		}
		otherCookie = DefaultCookieName + "=" + r.Cookies()[0].Value
	}

	tests := []struct {
		name   string
		method string
		uri    string
		header []string
		want   int
		body   []byte
	}{
		{"playlist without token", "GET", "/hls/live/cam/index.m3u8", nil, 401, nil},
		{"playlist with a token for another path", "GET", "/hls/live/other/index.m3u8?token=viewer", nil, 403, nil},
		{"segment with cookie", "GET", "/hls/live/cam/seg0.ts", []string{"Cookie", cookie}, 200, camSegment},
		{"segment head with cookie", "HEAD", "/hls/live/cam/seg0.ts", []string{"Cookie", cookie}, 200, nil},
		{"segment without cookie", "GET", "/hls/live/cam/seg0.ts", nil, 401, nil},
		{"variant playlist with cookie only", "GET", "/hls/live/cam/index.m3u8", []string{"Cookie", cookie}, 200, camPlaylist},
		{"cam cookie on another path", "GET", "/hls/live/other/index.m3u8", []string{"Cookie", cookie}, 401, nil},
		{"other cookie on cam", "GET", "/hls/live/cam/seg0.ts", []string{"Cookie", otherCookie}, 401, nil},
		{"tampered cookie", "GET", "/hls/live/cam/seg0.ts", []string{"Cookie", cookie[:len(cookie)-2] + "xx"}, 401, nil},
		{"dot-dot into cam with cam cookie", "GET", "/hls/live/other/../cam/seg0.ts", []string{"Cookie", cookie}, 200, camSegment},
		{"dot-dot out of cam with cam cookie", "GET", "/hls/live/cam/../other/index.m3u8", []string{"Cookie", cookie}, 401, nil},
		{"client-sent X-Forwarded-Uri is not believed", "GET", "/hls/live/other/index.m3u8", []string{"Cookie", cookie, "X-Forwarded-Uri", "/hls/live/cam/index.m3u8"}, 403, nil},
		{"client-sent X-Original-URI is overwritten", "GET", "/hls/live/other/index.m3u8", []string{"X-Original-URI", "/hls/live/cam/index.m3u8?token=viewer"}, 401, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, tt.method, tt.uri, tt.header...)
			if resp.StatusCode != tt.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.body != nil && !bytes.Equal(body, tt.body) {
				t.Errorf("got body %q, want %q", body, tt.body)
			}
			if tt.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("got WWW-Authenticate %q, want gatehouse's Bearer challenge passed through", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	got, _ := be.lastRequest()
	if got.IP.String() != "127.0.0.1" || got.Source != Source {
		t.Errorf("got ip %s source %s from nginx's X-Forwarded-For, want 127.0.0.1 %s", got.IP, got.Source, Source)
	}
}
