package ome

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"gatehouse/authz/hookio/hookiotest"
)

// The reference implementations below are the adapter's code before the second round of
// hook-speed work: the differential tests hold the faster code to them.

// oldVerify is Verify as it was: a strings.Replacer, DecodeString and a fresh HMAC per call.
func oldVerify(secret, body []byte, sig string) error {
	sig = strings.TrimRight(strings.TrimSpace(sig), "=")
	sig = strings.NewReplacer("+", "-", "/", "_").Replace(sig)
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(got) != sha1.Size {
		return ErrBadSignature
	}
	mac := hmac.New(sha1.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// FuzzVerifyMatchesOld holds Verify, and the handler's pooled signer reused across calls, to the
// old Verify, for signatures made from the right sum in every accepted spelling and arbitrary ones.
func FuzzVerifyMatchesOld(f *testing.F) {
	f.Add([]byte("1234"), []byte(`{"a":1}`), "", uint8(0))
	f.Add([]byte("1234"), []byte(`{"a":1}`), "x", uint8(1))
	f.Add([]byte(""), []byte(""), " ==\t", uint8(2))
	f.Add([]byte("k"), []byte("b"), strings.Repeat("A", 70), uint8(3))
	f.Add([]byte("k"), []byte("b"), "AAAA\nAAAA\r\nAAAAAAAAAAAAAAAAAAA", uint8(0))
	h := New(Config{Secret: "fuzz-key"}, nil, nil, nil)
	f.Fuzz(func(t *testing.T, secret, body []byte, sig string, form uint8) {
		good := Sign(secret, body)
		std := strings.NewReplacer("-", "+", "_", "/").Replace(good)
		for _, s := range []string{sig, good, good + "=", " " + good + "\t", std, std + "=", good + sig, sig + good,
			good[:10] + "\n" + good[10:], strings.Repeat("\r\n", int(form%40)) + good} {
			if got, want := Verify(secret, body, s), oldVerify(secret, body, s); got != want {
				t.Fatalf("Verify(%q, %q, %q) = %v, want %v", secret, body, s, got, want)
			}
			if got, want := h.verify(body, s), oldVerify([]byte("fuzz-key"), body, s); got != want {
				t.Fatalf("Handler.verify(%q, %q) = %v, want %v", body, s, got, want)
			}
		}
	})
}

// oldWriteJSON is writeJSON as it was: the header value and the reply in two allocations.
func oldWriteJSON(w http.ResponseWriter, status int, v reply) {
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	_, _ = w.Write(v.appendJSON(make([]byte, 0, 64+len(v.Reason)+len(v.NewURL))))
}

// TestWriteJSONWire: the reply's bytes on the wire (status line, headers, body) are the old
// writer's, for short replies and ones longer than writeJSON's buffer.
func TestWriteJSONWire(t *testing.T) {
	ms := uint64(3_600_000)
	for _, r := range []reply{
		{},
		{Reason: "use POST"},
		{Allowed: true, Reason: "internal", Lifetime: &ms},
		{Allowed: true, Reason: "internal", Lifetime: &ms, NewURL: "rtmp://h:1935/live/" + strings.Repeat("x", 200) + "?a=<1>"},
		{Reason: strings.Repeat("é\"<x>\x01", 60)},
	} {
		var wire [2]string
		for i, write := range []func(http.ResponseWriter, int, reply){writeJSON, oldWriteJSON} {
			wire[i] = hookiotest.WireReply(t, func(w http.ResponseWriter, _ *http.Request) { write(w, http.StatusOK, r) })
		}
		if wire[0] != wire[1] {
			t.Errorf("writeJSON wrote\n%q\nwant\n%q", wire[0], wire[1])
		}
	}
}
