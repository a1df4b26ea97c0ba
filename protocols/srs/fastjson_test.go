package srs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// decodeSlow is Decode's encoding/json reading, the oracle for the fast path.
func decodeSlow(t *testing.T, b []byte) (Hook, error) {
	t.Helper()
	var w struct {
		Hook
		TcURL *string `json:"tcUrl"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Hook{}, err
	}
	if w.TcURL != nil {
		w.Hook.TcURL, w.Hook.tcURLSent = *w.TcURL, true
	}
	return w.Hook, nil
}

func sameHook(a, b Hook) bool {
	if !bytes.Equal(a.ClientID, b.ClientID) || (a.ClientID == nil) != (b.ClientID == nil) {
		return false
	}
	a.ClientID, b.ClientID = nil, nil
	return reflect.DeepEqual(a, b)
}

// TestDecodeFast: the fast path's reading of SRS's body, including the documents it must leave
// to encoding/json, duplicate keys (the last wins) and tcUrl's presence (null counts as absent).
func TestDecodeFast(t *testing.T) {
	tests := []struct {
		name string
		body string
		fast bool
	}{
		{"v5 on_publish", `{"server_id":"vid-0xk989d","service_id":"9ej8d2b6","action":"on_publish","client_id":"341w361a","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1/live","stream":"cam","param":"?user=u&pass=p","stream_url":"/live/cam","stream_id":"vid-6r1z1i3"}`, true},
		{"v3 integer client_id, no tcUrl", `{"action":"on_play","client_id":107,"ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"cam","param":"","pageUrl":""}`, true},
		{"empty tcUrl", `{"action":"on_publish","client_id":"x","app":"live","stream":"cam","tcUrl":""}`, true},
		{"tcUrl then null: absent", `{"action":"on_publish","app":"live","stream":"cam","tcUrl":"rtmp://h/live","tcUrl":null}`, true},
		{"null then tcUrl: present", `{"action":"on_publish","app":"live","stream":"cam","tcUrl":null,"tcUrl":""}`, true},
		{"duplicate stream, last wins", `{"action":"on_publish","app":"live","stream":"a","stream":"b"}`, true},
		{"null keeps the earlier value", `{"action":"on_publish","app":"live","stream":"a","stream":null}`, true},
		{"unknown object ignored", `{"action":"on_publish","x":{"stream":"b"},"stream":"a"}`, true},
		{"case variant", `{"action":"on_publish","stream":"a","Stream":"b"}`, false},
		{"case variant of tcUrl", `{"action":"on_publish","tcurl":""}`, false},
		{"client_id null", `{"action":"on_publish","client_id":null}`, false},
		{"client_id object", `{"action":"on_publish","client_id":{"a":"b"}}`, false},
		{"escaped param", `{"action":"on_publish","param":"?a=\u0062"}`, false},
		{"stream a number", `{"action":"on_publish","stream":1}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fast Hook
			if got := fast.decodeFast([]byte(tt.body)); got != tt.fast {
				t.Fatalf("decodeFast = %v, want %v", got, tt.fast)
			}
			if !tt.fast {
				return
			}
			slow, err := decodeSlow(t, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !sameHook(fast, slow) {
				t.Fatalf("got %+v, want %+v (encoding/json)", fast, slow)
			}
		})
	}
}

// FuzzDecodeFastMatchesJSON: whenever the fast path accepts a body, encoding/json accepts it too
// and yields the same hook, tcUrl's presence included.
func FuzzDecodeFastMatchesJSON(f *testing.F) {
	f.Add([]byte(`{"server_id":"vid-0xk989d","action":"on_publish","client_id":"341w361a","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1/live","stream":"cam","param":"?user=u&pass=p","pageUrl":"","file":"x"}`))
	f.Add([]byte(`{"action":"on_play","client_id":107,"tcUrl":null,"TcUrl":"x"}`))
	f.Add([]byte(` {"x":{"y":0},"tcUrl":"","tcUrl":null} `))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Hook
		if !fast.decodeFast(b) {
			return
		}
		slow, err := decodeSlow(t, b)
		if err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, b)
		}
		if !sameHook(fast, slow) {
			t.Fatalf("fast %+v != slow %+v for %q", fast, slow, b)
		}
	})
}

// sessionIDSlow is SessionID as it was before plainString: json.Unmarshal on every call.
func sessionIDSlow(h *Hook) string {
	id := string(bytes.TrimSpace(h.ClientID))
	var s string
	if json.Unmarshal(h.ClientID, &s) == nil {
		id = s
	}
	if id == "" || id == "null" {
		return ""
	}
	if h.ServerID != "" {
		return h.ServerID + "/" + id
	}
	return id
}

// FuzzSessionIDMatchesJSON: SessionID's shortcut for plain strings gives what json.Unmarshal did.
func FuzzSessionIDMatchesJSON(f *testing.F) {
	for _, s := range []string{`"341w361a"`, `107`, ` "a" `, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `null`, `""`, `"null"`, "\"\x01\""} {
		f.Add([]byte(s), "vid-1")
	}
	f.Fuzz(func(t *testing.T, raw []byte, server string) {
		h := &Hook{ClientID: raw, ServerID: server}
		if got, want := h.SessionID(), sessionIDSlow(h); got != want {
			t.Fatalf("SessionID(%q) = %q, want %q", raw, got, want)
		}
	})
}
