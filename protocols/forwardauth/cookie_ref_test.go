package forwardauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
)

// macRef is sealer.mac as it was, with crypto/hmac: the reference for the stack-only one.
func macRef(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macLabel))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func checkMAC(t *testing.T, key []byte, payload string) {
	t.Helper()
	got := sealer{key: key}.mac(payload)
	if want := macRef(key, payload); !bytes.Equal(got[:], want) {
		t.Fatalf("mac(key of %d bytes, payload of %d bytes) = %x, want %x", len(key), len(payload), got, want)
	}
}

// TestMACMatchesHMAC: sealer.mac is crypto/hmac's HMAC-SHA256 for keys shorter than, as long as
// and longer than a SHA-256 block, and payloads that fit its stack buffer or not.
func TestMACMatchesHMAC(t *testing.T) {
	for _, kn := range []int{0, 1, 16, 31, 32, 63, 64, 65, 100, 128, 200} {
		key := bytes.Repeat([]byte{byte(kn) | 0x80}, kn)
		for _, pn := range []int{0, 1, 55, 56, 64, 200, 1024 - 64 - len(macLabel), 1024 - 64 - len(macLabel) + 1, 1024, 4096, 5000} {
			checkMAC(t, key, strings.Repeat("p", pn))
		}
	}
}

// TestMACAllocs: a cookie's MAC needs no allocation.
func TestMACAllocs(t *testing.T) {
	s := sealer{key: bytes.Repeat([]byte("k"), 32)}
	payload := strings.Repeat("x", 300)
	if n := testing.AllocsPerRun(100, func() { _ = s.mac(payload) }); n != 0 {
		t.Errorf("mac: %v allocations, want 0", n)
	}
}

// FuzzMACMatchesHMAC: sealer.mac is crypto/hmac's HMAC-SHA256 for any key and payload.
func FuzzMACMatchesHMAC(f *testing.F) {
	f.Add([]byte(strings.Repeat("k", 32)), "eyJwIjoibGl2ZS9jYW0ifQ")
	f.Add([]byte(strings.Repeat("k", 65)), strings.Repeat("p", 1000))
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, key []byte, payload string) { checkMAC(t, key, payload) })
}
