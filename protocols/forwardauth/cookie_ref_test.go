package forwardauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
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

// grantSamples are grants as setCookie fills them, and some with values that need escaping.
var grantSamples = []Grant{
	{Path: "live/cam", Identity: "viewer", Session: "fa-0123456789abcdef01234567", Instance: "AbCdEfGhIjKl", Generation: 3, Issued: 1764500000123456789, Exp: 1764503600},
	{Path: "live/cam", Session: "fa-1", Instance: "i", Issued: 1, Exp: 2},
	{Path: "a/b", Identity: "bob", KeyID: "k-1", Session: "s", Instance: "n", Generation: 18446744073709551615, Issued: 9223372036854775807, Exp: 9223372036854775807},
	{Path: "live/é", Identity: "Zoë <z@example.com> & \"co\"\\", Session: "s\u2028", Instance: "n\x01", Exp: 1},
	{Path: "x", Identity: "\xff\xfe", Session: "s", Instance: "n", Exp: 1},
}

// checkDecodeGrant: decodeGrant answers as json.Unmarshal does.
func checkDecodeGrant(t *testing.T, b []byte) {
	t.Helper()
	var want Grant
	werr := json.Unmarshal(b, &want)
	got, gerr := decodeGrant(b)
	if (gerr == nil) != (werr == nil) || (gerr == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("decodeGrant(%q) = %+v, %v; json.Unmarshal: %+v, %v", b, got, gerr, want, werr)
	}
}

// TestDecodeGrantMatchesJSON: decodeGrant reads what json.Unmarshal reads from the payloads seal
// writes (directly when they need no unescaping), and from variants json.Marshal never writes.
func TestDecodeGrantMatchesJSON(t *testing.T) {
	for i, g := range grantSamples {
		b, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		checkDecodeGrant(t, b)
		if _, ok := parseGrant(string(b)); ok != (i < 2) {
			t.Errorf("parseGrant(%s): fast path %v, want %v", b, ok, i < 2)
		}
	}
	for _, s := range []string{
		``, `{}`, `null`, `{"p":"x","s":"s","n":"n","t":1,"e":2} `, `{"p":"x","s":"s","n":"n","t":1,"e":2}x`,
		`{"P":"x","s":"s","n":"n","t":1,"e":2}`, `{"p":"x","s":"s","n":"n","t":01,"e":2}`, `{"p":"x","s":"s","n":"n","t":-1,"e":2}`,
		`{"p":"x","s":"s","n":"n","t":1.5,"e":2}`, `{"p":"x","s":"s","n":"n","t":1e3,"e":2}`, `{"p":"x","s":"s","n":"n","g":-1,"t":1,"e":2}`,
		`{"p":"x","s":"s","n":"n","t":1,"e":99999999999999999999}`, `{"p":"x","s":"s","n":"n","t":1,"e":999999999999999999}`,
		`{"p":"x","s":"s","n":"n","t":1,"e":1000000000000000000}`,
		`{"p":"x","s":"s","n":"n","t":1,"e":9223372036854775808}`, `{"p":"x","s":"s","n":"n","t":9999999999999999999,"e":1}`,
		`{"p":"x","s":"s","n":"n","g":9999999999999999999,"t":1,"e":1}`, `{"p":"x","s":"s","n":"n","g":18446744073709551616,"t":1,"e":1}`, `{"p":"x","i":"","k":"","s":"s","n":"n","g":0,"t":0,"e":0}`,
		`{"p":"x","s":"s","n":"n","t":1,"e":2,"p":"y"}`, `{"p":"x\u0041","s":"s","n":"n","t":1,"e":2}`, `{"p":"x","s":"s","n":"n","e":2,"t":1}`,
		`{"p":"x","s":"s","n":"n","t":1,"e":2`, `{"p":"x","s":"s","n":"n","t":1,"e":`, `{"p":"x`, `{"p":"x","s":"s","n":"n","x":1,"t":1,"e":2}`,
		"{\"p\":\"x\x7f\",\"s\":\"s\",\"n\":\"n\",\"t\":1,\"e\":2}", "{\"p\":\"x\t\",\"s\":\"s\",\"n\":\"n\",\"t\":1,\"e\":2}",
	} {
		checkDecodeGrant(t, []byte(s))
	}
}

// FuzzDecodeGrantMatchesJSON: decodeGrant answers as json.Unmarshal on any payload.
func FuzzDecodeGrantMatchesJSON(f *testing.F) {
	for _, g := range grantSamples {
		b, _ := json.Marshal(g)
		f.Add(b)
	}
	f.Add([]byte(`{"p":"x","s":"s","n":"n","t":01,"e":2}`))
	f.Fuzz(checkDecodeGrant)
}

// sealRef is sealer.seal as it was, with encoding/json and crypto/hmac: the reference.
func sealRef(key []byte, g Grant) string {
	g.Exp = g.Expires.Unix()
	payload, _ := json.Marshal(g)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return cookieVersion + "." + p + "." + base64.RawURLEncoding.EncodeToString(macRef(key, p))
}

func checkSeal(t *testing.T, key []byte, g Grant) {
	t.Helper()
	if got, want := (sealer{key: key}).seal(g), sealRef(key, g); got != want {
		t.Fatalf("seal(%+v)\n= %q\nwant %q", g, got, want)
	}
}

// TestSealMatchesOld: seal writes the same cookie value as the encoding/json and crypto/hmac
// code, for grants whose strings need no escaping (built directly), ones that do (encoding/json),
// and ones longer than seal's stack buffers.
func TestSealMatchesOld(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	for _, g := range grantSamples {
		g.Expires = time.Unix(g.Exp, 0)
		checkSeal(t, key, g)
	}
	for _, n := range []int{200, 300, 400, 1000, 3000} {
		checkSeal(t, key, Grant{Path: strings.Repeat("p", n), Identity: strings.Repeat("i", n), Session: "s", Instance: "n", Expires: time.Unix(1764503600, 0)})
	}
	checkSeal(t, key, Grant{Path: "p", Session: "s", Instance: "n", Issued: -5, Expires: time.Unix(-1, 0)})
}

// TestSealAllocs: sealing a usual grant allocates only the cookie value.
func TestSealAllocs(t *testing.T) {
	s := sealer{key: bytes.Repeat([]byte("k"), 32)}
	g := grantSamples[0]
	g.Expires = time.Unix(g.Exp, 0)
	if n := testing.AllocsPerRun(100, func() { _ = s.seal(g) }); n != 1 {
		t.Errorf("seal: %v allocations, want 1", n)
	}
}

// FuzzSealMatchesOld: seal writes what the encoding/json and crypto/hmac code wrote for any
// grant.
func FuzzSealMatchesOld(f *testing.F) {
	for _, g := range grantSamples {
		f.Add(g.Path, g.Identity, g.KeyID, g.Session, g.Instance, g.Generation, g.Issued, g.Exp)
	}
	f.Fuzz(func(t *testing.T, p, i, k, s, n string, gen uint64, issued, exp int64) {
		checkSeal(t, []byte("0123456789abcdef0123456789abcdef"), Grant{Path: p, Identity: i, KeyID: k, Session: s, Instance: n,
			Generation: gen, Issued: issued, Expires: time.Unix(exp, 0)})
	})
}
