package ome

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// The reference implementations below are the adapter's code before the hook-speed work (issue
// 12): the differential tests hold the faster code to them byte for byte.

// oldSessionID is SessionID as it was: sha256 over the concatenated string, hex-encoded.
func oldSessionID(a *Admission) string {
	sum := sha256.Sum256([]byte(a.Client.Address + "\x00" + a.Client.Port.String() + "\x00" + a.Request.URL))
	return "ome-" + hex.EncodeToString(sum[:16])
}

func FuzzSessionIDMatchesOld(f *testing.F) {
	f.Add("127.0.0.1", "51234", "rtmp://127.0.0.1:1935/live/cam?user=testuser&pass=testpass")
	f.Add("", "", "")
	f.Add("2001:db8::1", "0", strings.Repeat("x", 300)) // longer than SessionID's stack buffer
	f.Fuzz(func(t *testing.T, addr, port, url string) {
		var a Admission
		a.Client.Address, a.Client.Port, a.Request.URL = addr, json.Number(port), url
		if got, want := a.SessionID(), oldSessionID(&a); got != want {
			t.Fatalf("SessionID = %q, want %q", got, want)
		}
	})
}
