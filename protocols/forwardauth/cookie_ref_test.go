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

// macRef is the cookie MAC as seal computed it before its rewrite: the reference of sealRef.
func macRef(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macLabel))
	m.Write([]byte(payload))
	return m.Sum(nil)
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

// TestSealAllocs: sealing a usual grant allocates less than the encoding/json code did (the
// JSON, base64 text and cookie value are built in one allocation; crypto/hmac's own remain).
func TestSealAllocs(t *testing.T) {
	s := sealer{key: bytes.Repeat([]byte("k"), 32)}
	g := grantSamples[0]
	g.Expires = time.Unix(g.Exp, 0)
	n := testing.AllocsPerRun(100, func() { _ = s.seal(g) })
	ref := testing.AllocsPerRun(100, func() { _ = sealRef(s.key, g) })
	if n >= ref {
		t.Errorf("seal: %v allocations, the old code %v; want fewer", n, ref)
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
