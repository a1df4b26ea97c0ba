package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Signature headers of FormatJSON deliveries.
const (
	HeaderTimestamp = "X-Gatehouse-Timestamp" // Unix seconds when the attempt was signed
	HeaderSignature = "X-Gatehouse-Signature" // "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderEvent     = "X-Gatehouse-Event"     // "live" or "offline"
	HeaderDelivery  = "X-Gatehouse-Delivery"  // the body's id, the same on every retry
)

// DefaultMaxSkew is the tolerance receivers should pass to Verify.
const DefaultMaxSkew = 5 * time.Minute

// Sign returns the X-Gatehouse-Signature value for body sent at timestamp (Unix seconds):
// "sha256=" followed by the lower-case hex HMAC-SHA256 of secret over timestamp + "." + body.
// Signing the timestamp with the body lets receivers reject replays (see Verify).
func Sign(secret []byte, timestamp int64, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a FormatJSON delivery as a receiver: timestamp and signature are the
// X-Gatehouse-Timestamp and X-Gatehouse-Signature headers, body the raw request body (read it
// with a size limit, and verify before parsing). It returns nil if the signature is a valid
// HMAC-SHA256 of timestamp + "." + body under secret and the timestamp is within maxSkew of now
// (DefaultMaxSkew is a good choice); otherwise ErrBadTimestamp, ErrStaleTimestamp or
// ErrBadSignature. signature may hold several comma-separated "sha256=<hex>" values, and one
// match suffices, so a receiver can rotate secrets by calling Verify once per secret. The
// comparison is constant-time. Deliveries are retried with the same body id, so receivers that
// must act once should also remember ids for maxSkew.
func Verify(secret []byte, timestamp string, body []byte, signature string, now time.Time, maxSkew time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || strings.HasPrefix(timestamp, "+") {
		return ErrBadTimestamp
	}
	skew := int64(maxSkew / time.Second)
	if n := now.Unix(); ts < n-skew || ts > n+skew {
		return ErrStaleTimestamp
	}
	want := mac(secret, timestamp, body)
	for s := range strings.SplitSeq(signature, ",") {
		h, ok := strings.CutPrefix(strings.TrimSpace(s), "sha256=")
		if !ok || len(h) != hex.EncodedLen(sha256.Size) {
			continue
		}
		got, err := hex.DecodeString(h)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
