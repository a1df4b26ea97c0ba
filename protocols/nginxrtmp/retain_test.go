package nginxrtmp

import (
	"strings"
	"testing"
	"unsafe"
)

// within reports whether s's bytes lie inside body's: s is a slice of body and keeps all of it
// alive.
func within(s, body string) bool {
	if s == "" {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(body)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= lo && p < lo+uintptr(len(body))
}

// TestRemoteAndClientIDDoNotKeepTheBody: what outlives the request — the client address (kept
// in the live registry for the session's life) and the client id (the key of the session
// table) — is copied out of the callback body, which holds the password or stream key and may
// be 64 KiB. (A speed-up once returned the address as a slice of the body: 200 admitted plays
// with 50 KB bodies then held 11 MB.)
func TestRemoteAndClientIDDoNotKeepTheBody(t *testing.T) {
	body := "call=play&app=live&name=cam&addr=192.0.2.7&clientid=17&pass=SECRET&pageurl=" + strings.Repeat("x", 4096)
	var hk hook
	if err := hk.decode(body); err != nil {
		t.Fatal(err)
	}
	if r := hk.remote(); r != "192.0.2.7" || within(r, body) {
		t.Errorf("remote %q (a slice of the body: %v), want 192.0.2.7 in its own bytes", r, within(r, body))
	}
	if !within(hk.clientID, body) {
		t.Fatal("clientID is no longer a slice of the body: this test no longer tests track's copy")
	}
	h := New(Config{}, nil, nil, nil)
	h.track(sessionKey{server: "s", clientID: hk.clientID}, session{path: "live/cam"})
	for k := range h.sessions {
		if within(k.clientID, body) {
			t.Errorf("the session table's key %q is a slice of the body", k.clientID)
		}
	}
}
