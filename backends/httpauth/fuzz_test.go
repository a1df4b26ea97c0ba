package httpauth

import (
	"encoding/json"
	"testing"
	"time"

	"gatehouse/authz/conf"
)

// FuzzParseReply: whatever the service sends in a 2xx body, parsing never panics and never yields
// an identity or expiry outside the documented rules.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"", "OK", `{"identity":"alice","expires_in":60}`, `{"identity":""}`, `[1]`, `{"expires_in":1e300}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, ok := parseReply(raw)
		if !ok && rep != (reply{}) {
			t.Fatalf("got %+v with ok=false, want the zero reply", rep)
		}
		if rep.Identity != "" && !validIdentity(rep.Identity) {
			t.Fatalf("got identity %q, which validIdentity refuses", rep.Identity)
		}
		if rep.ExpiresIn < 0 || rep.ExpiresIn > maxExpiresIn {
			t.Fatalf("got expires_in %v, want within [0, %v]", rep.ExpiresIn, maxExpiresIn)
		}
		if !ok {
			return
		}
		// What was accepted survives a round trip through the documented format.
		again, _ := json.Marshal(map[string]any{"identity": rep.Identity, "expires_in": rep.ExpiresIn.Seconds()})
		rep2, ok2 := parseReply(again)
		if !ok2 || rep2.Identity != rep.Identity || (rep.ExpiresIn-rep2.ExpiresIn).Abs() > time.Microsecond {
			t.Fatalf("round trip: got %+v %v, want %+v", rep2, ok2, rep)
		}
	})
}

// FuzzConfig: a config that decodes never fails later in New (parse, don't validate later), and
// decoding never panics.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"http:\n  address: http://127.0.0.1:9000/auth\n",
		"http:\n  address: https://a.example/\n  fingerprint: " + "AB:" + "cd" + "\n",
		"http:\n  address: http://a.example/\n  headers: {X-A: b}\n  cache: {size: 3, allow_ttl: 1s}\n  exclude: [{action: read, path: \"~^pub\"}]\n",
		"http:\n  address: http://a.example/\n  timeout: 0s\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		var got file
		if err := conf.Decode("fuzz.yml", []byte(src), nil, &got); err != nil || got.HTTP.Address == "" {
			return // rejected, or the http key absent or empty
		}
		b, err := New(got.HTTP)
		if err != nil {
			t.Fatalf("decoded config %+v fails in New: %v", got.HTTP, err)
		}
		_ = b.Close()
	})
}
