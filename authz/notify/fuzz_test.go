package notify

import (
	"strconv"
	"testing"
	"time"
)

// FuzzVerify feeds Verify arbitrary headers and bodies: it must never panic, must accept exactly
// what Sign produced for the same inputs, and must reject a signature over anything else.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("k"), "1778593500", []byte(`{"event":"live"}`), "sha256=00")
	f.Add([]byte(""), "-1", []byte(""), "sha256=,sha256=zz")
	f.Add([]byte("k"), "+1778593500", []byte("x"), "")
	f.Fuzz(func(t *testing.T, secret []byte, timestamp string, body []byte, signature string) {
		now := time.Unix(1778593500, 0)
		err := Verify(secret, timestamp, body, signature, now, DefaultMaxSkew)
		ts, perr := strconv.ParseInt(timestamp, 10, 64)
		if perr != nil {
			if err == nil {
				t.Fatalf("accepted malformed timestamp %q", timestamp)
			}
			return
		}
		if err == nil && signature != "" {
			// whatever was accepted must equal a real signature among the listed ones
			if Verify(secret, timestamp, append(body, 'x'), signature, now, DefaultMaxSkew) == nil {
				t.Fatalf("signature %q verifies two different bodies", signature)
			}
		}
		good := Sign(secret, ts, body)
		err = Verify(secret, timestamp, body, good, now, DefaultMaxSkew)
		inSkew := ts >= now.Unix()-300 && ts <= now.Unix()+300
		if inSkew && timestamp == strconv.FormatInt(ts, 10) && err != nil {
			t.Fatalf("rejected its own signature: %v", err)
		}
		if !inSkew && err == nil {
			t.Fatalf("accepted timestamp %d outside the skew", ts)
		}
	})
}
