package users

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"gatehouse/authz"
)

// FuzzParsePHC: the parser never panics, what it accepts is within limits, and encoding what it
// accepted parses back to the same thing.
func FuzzParsePHC(f *testing.F) {
	for _, s := range []string{argon2TestUser, argon2TestPass, argon2DocsUser, argon2Zars} {
		f.Add(strings.TrimPrefix(s, prefixArgon2))
	}
	f.Add("$argon2d$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			return
		}
		switch {
		case p.variant != "argon2id" && p.variant != "argon2i",
			p.time < 1 || p.time > maxArgon2Time,
			p.threads < 1,
			p.memory < 8*uint32(p.threads) || p.memory > maxArgon2Memory,
			len(p.salt) < minArgon2Salt || len(p.salt) > maxArgon2Salt,
			len(p.key) < minArgon2Key || len(p.key) > maxArgon2Key:
			t.Fatalf("parsePHC(%q) accepted out-of-range %+v", s, p)
		}
		q, err := parsePHC(p.String())
		if err != nil {
			t.Fatalf("parsePHC(String()) of %q: %v", s, err)
		}
		if q.variant != p.variant || q.memory != p.memory || q.time != p.time || q.threads != p.threads ||
			!bytes.Equal(q.salt, p.salt) || !bytes.Equal(q.key, p.key) {
			t.Fatalf("round trip of %q: %+v != %+v", s, q, p)
		}
	})
}

// FuzzParseCredential: never panics; an accepted plain value verifies itself and nothing shorter;
// an accepted sha256 value re-encodes to itself.
func FuzzParseCredential(f *testing.F) {
	for _, s := range []string{"", "any", "validPlain123", "invalid/Plain", sha256TestUser, "sha256:inval*idBase64",
		"sha256:validBase64EncodedHash==", argon2TestPass, "argon2:invalid"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredential(s)
		if err != nil {
			return
		}
		b := New(Config{CacheSize: new(int)})
		switch c.kind {
		case kindEmpty:
			if s != "" {
				t.Fatalf("%q parsed as empty", s)
			}
		case kindPlain:
			if ok, _ := b.check(context.Background(), &c, &guess{s: s}); !ok {
				t.Fatalf("plain %q does not verify itself", s)
			}
			if ok, _ := b.check(context.Background(), &c, &guess{s: s[:len(s)-1]}); ok {
				t.Fatalf("plain %q verifies a prefix", s)
			}
		case kindSHA256:
			if got := prefixSHA256 + base64.StdEncoding.EncodeToString(c.digest[:]); got != s {
				t.Fatalf("sha256 %q re-encodes as %q", s, got)
			}
		case kindArgon2:
			if !strings.HasPrefix(s, prefixArgon2) || c.phc == nil {
				t.Fatalf("%q parsed as argon2 without prefix or parameters", s)
			}
		}
		if c.IsAny() != (s == "any") {
			t.Fatalf("IsAny(%q) = %v", s, c.IsAny())
		}
	})
}

// FuzzDecodeConfig: arbitrary YAML under the backend's key never panics the decoder, and a
// config that decodes can be evaluated.
func FuzzDecodeConfig(f *testing.F) {
	f.Add(mediamtxDefault)
	f.Add("internal:\n  cache_size: 3\n  users:\n  - user: bob\n    pass: " + sha256TestPass + "\n    ips: [10.0.0.0/8]\n    permissions: [{action: read, path: ~^a, protocols: [hls]}]\n")
	f.Add("internal:\n  users:\n  - &u {user: any, permissions: [{action: api}]}\n  - *u\n")
	f.Add("internal:\n  users:\n  - user: [x]\n    pass: {a: b}\n    ips: [[1]]\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := decode(t, src)
		if err != nil {
			return
		}
		_ = cfg.Warnings()
		for _, u := range cfg.Users {
			for _, c := range []Credential{u.User, u.Pass} {
				if c.kind == kindArgon2 && uint64(c.phc.memory)*uint64(c.phc.time) > 1<<14 {
					return // valid but too slow to evaluate in a fuzz loop
				}
			}
		}
		b := New(cfg)
		for _, r := range []*authz.Request{
			req(authz.ActionRead, "a", "10.1.1.1", "bob", "testpass"),
			req(authz.ActionAPI, "", "::1", "", ""),
		} {
			if _, err := b.Authorize(context.Background(), r); err != nil {
				t.Fatalf("Authorize: %v", err)
			}
		}
	})
}
