// Package hookio holds what every hook adapter does the same way at the edge of the seam: read a
// request body with a bound, map a JSON decoding error to a message that never quotes the input,
// cut an untrusted value short before it reaches a log line or an answer, and parse a client
// address. Adapters keep only what differs: how their server encodes its request and answer.
package hookio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
)

// DefaultMaxBody is the body bound of the hook adapters: their servers' requests are well under
// 1 KiB plus a token; 64 KiB leaves room for large JWTs and long signed URLs.
const DefaultMaxBody = 64 << 10

// Refusal is why a body could not be read: the status to answer, a machine-readable reason and
// a sentence safe to send and log.
type Refusal struct {
	Status  int
	Reason  string
	Message string
}

// smallBody is the largest declared body ReadBody allocates at once.
const smallBody = 4 << 10

// ReadBody reads r's body, at most max bytes (0: DefaultMaxBody). A longer body is a 413
// Refusal, any other read failure a 400.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *Refusal) {
	if max <= 0 {
		max = DefaultMaxBody
	}
	if n := r.ContentLength; n >= 0 && n <= min(max, smallBody) && r.Body != nil {
		// A small declared length within the bound (every hook sender declares one, usually
		// under 1 KiB): read exactly that into one buffer. net/http's body reader stops at the
		// declared length, and reports a body that ends early as an error, as below. Larger ones
		// grow with what arrives: a buffer of the declared size before a byte arrives would let
		// a client that declares 64 KiB and sends nothing pin 64 KiB per connection.
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, &Refusal{Status: http.StatusBadRequest, Reason: "read_error", Message: "could not read body"}
		}
		return body, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Refusal{Status: http.StatusRequestEntityTooLarge, Reason: "body_too_large", Message: fmt.Sprintf("body exceeds %d bytes", max)}
		}
		return nil, &Refusal{Status: http.StatusBadRequest, Reason: "read_error", Message: "could not read body"}
	}
	return body, nil
}

// DecodeJSON unmarshals body into v. Its error wraps malformed and says where the JSON is wrong
// (a byte offset, a field and its expected type) without quoting the body, which may hold a
// credential.
func DecodeJSON(body []byte, v any, malformed error) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: invalid JSON at byte %d", malformed, se.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("%w: field %q must be a %s", malformed, te.Field, te.Type)
	}
	return fmt.Errorf("%w: body is not a JSON object", malformed)
}

// Truncate cuts an untrusted value (an unknown action or call name) to 32 bytes for a message.
func Truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// ParseIP parses a client address as servers send it (IPv4-mapped IPv6 unmapped); false if s is
// not an IP address.
func ParseIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
