package nginxrtmp

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
	"gatehouse/authz/logtest"
)

// TestTruncatedCredential: nginx-rtmp keeps only 255 bytes of name?args (NGX_RTMP_MAX_NAME - 1;
// checked with the real nginx-rtmp and ffmpeg), so a JWT in ?token= arrives cut. A denial whose
// name?args is exactly at that limit says so, in the answer and in the log; shorter ones keep
// the engine's reason, and an allowed request is not affected.
func TestTruncatedCredential(t *testing.T) {
	const name = "stream1"
	token := func(total int) string { // name?token=<x...> of total bytes
		return strings.Repeat("x", total-len(name)-len("?token="))
	}
	tests := []struct {
		name, body string
		allow      bool
		status     int
		reply      string
		logged     bool
	}{
		{"publish cut at 255", "&call=publish&name=" + name + "&type=live&token=" + token(255), false, 403, "denied: credential_truncated", true},
		{"play cut at 255", "&call=play&name=" + name + "&start=-2&token=" + token(255), false, 403, "denied: credential_truncated", true},
		{"update cut at 255", "&call=update_publish&time=30&timestamp=1&name=" + name + "&token=" + token(255), false, 403, "denied: credential_truncated", true},
		{"key parameter cut at 255", "&call=publish&name=" + name + "&type=live&key=" + strings.Repeat("k", 255-len(name)-len("?key=")), false, 403, "denied: credential_truncated", true},
		{"shorter: the engine's reason", "&call=publish&name=" + name + "&type=live&token=" + token(254), false, 403, "denied: malformed_token", false},
		{"allowed at the limit", "&call=publish&name=" + name + "&type=live&token=" + token(255), true, 200, "ok", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf logtest.Buffer
			h := New(Config{}, &fakeAuth{decide: func(*authz.Request) authz.Decision {
				if tt.allow {
					return authz.Allowing("a", time.Time{})
				}
				return authz.Denying(authz.Unauthenticated, "malformed_token", "no")
			}}, nil, slog.New(slog.NewTextHandler(&buf, nil)))
			w := hookPost(h, sessionPrefix+tt.body)
			if w.Code != tt.status || strings.TrimSpace(w.Body.String()) != tt.reply {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tt.status, tt.reply)
			}
			if got := strings.Contains(buf.String(), "cuts name?args at 255 bytes"); got != tt.logged {
				t.Errorf("logged the limit: got %v, want %v: %s", got, tt.logged, buf.String())
			}
			if strings.Contains(buf.String(), "xxxxxxxx") {
				t.Errorf("the log contains the credential: %s", buf.String())
			}
		})
	}
}

// TestRefusedCallbackLogsCall: a callback refused while decoding is logged with its call (it was
// logged as call=""), or "(none)" when it has no single call.
func TestRefusedCallbackLogsCall(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{sessionPrefix + "&call=publish&name=cam&type=live&user=a&user=b", "call=publish "},
		{sessionPrefix + "&call=play&name=cam&token=%zz", "call=play "},
		{sessionPrefix + "&name=cam", "call=(none) "},
		{"call=play&call=publish&name=cam&app=live", "call=(none) "},
	} {
		var buf logtest.Buffer
		h := New(Config{}, &fakeAuth{}, nil, slog.New(slog.NewTextHandler(&buf, nil)))
		if w := hookPost(h, tt.body); w.Code != 400 {
			t.Errorf("%s: got %d, want 400", tt.body, w.Code)
		}
		if !strings.Contains(buf.String(), tt.want) || strings.Contains(buf.String(), `call=""`) {
			t.Errorf("%s: logged %q, want %s", tt.body, buf.String(), tt.want)
		}
	}
}
