package users

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Prefixes of hashed credentials, as in MediaMTX.
const (
	prefixSHA256 = "sha256:"
	prefixArgon2 = "argon2:"
)

// Limits on argon2 parameters read from a PHC string. MediaMTX has none; ours keep one verification
// from allocating gigabytes or running for minutes because of a typo, and keep x/crypto/argon2 from
// panicking on t=0 or p=0.
const (
	maxArgon2Memory  = 1 << 20 // KiB (1 GiB)
	maxArgon2Time    = 64
	maxArgon2Threads = 255 // x/crypto/argon2 takes a uint8
	minArgon2Salt    = 8   // RFC 9106 §3.1
	maxArgon2Salt    = 1024
	minArgon2Key     = 4 // RFC 9106 §3.1
	maxArgon2Key     = 1024
)

// Parameters of HashArgon2id: OWASP's argon2id baseline (m=19 MiB, t=2, p=1), with a 16-byte salt
// and a 32-byte key. That is ~5x the memory hardness of MediaMTX's documented m=4096,t=3 while one
// verification stays around 20–50 ms and 19 MiB, which matters because a gateway verifies on the
// connect path and (without a cache hit) once per unknown-user attempt; the verification cache makes
// the cost a once-per-TTL event for a legitimate client.
const (
	hashArgon2Memory  = 19456
	hashArgon2Time    = 2
	hashArgon2Threads = 1
	hashArgon2Salt    = 16
	hashArgon2Key     = 32
)

// MediaMTX's character sets (internal/conf/credential.go), as constants rather than regexps to
// keep package state out: plain values exclude / : % , ? ~ space and quotes.
const (
	alnum       = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	plainChars  = alnum + `!$()*+.;<=>[]^_-{}@#&`
	base64Chars = alnum + "+/="
)

// onlyChars reports whether s is non-empty and made only of bytes in set.
func onlyChars(s, set string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

type credKind uint8

const (
	kindEmpty  credKind = iota // matches anything
	kindPlain                  // digest = sha256(value)
	kindSHA256                 // digest = decoded value
	kindArgon2
)

// Credential is one stored `user` or `pass` value: empty (matches anything, as in MediaMTX), plain,
// `sha256:<base64 of the SHA-256 digest>` or `argon2:<PHC string>` (argon2id or argon2i). The zero
// Credential is empty. Plain values are kept only as their SHA-256 digest so comparisons take the
// same time whatever the guess's length. fmt prints a Credential as its kind only, never its value.
type Credential struct {
	kind   credKind
	isAny  bool     // the plain value "any"
	digest [32]byte // kindPlain, kindSHA256
	phc    *phc     // kindArgon2
	src    string   // kindArgon2: the stored string, part of the verification-cache key
}

// ParseCredential parses a stored credential in MediaMTX's syntax. Errors wrap ErrInvalidCredential
// or ErrUnsupportedArgon2 and never contain the value.
func ParseCredential(s string) (Credential, error) {
	switch {
	case s == "":
		return Credential{}, nil
	case strings.HasPrefix(s, prefixSHA256):
		v := s[len(prefixSHA256):]
		if !onlyChars(v, base64Chars) {
			return Credential{}, fmt.Errorf("%w: sha256 value must be standard base64 (A-Z a-z 0-9 + / =)", ErrInvalidCredential)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(v)
		if err != nil {
			return Credential{}, fmt.Errorf("%w: sha256 value is not valid padded base64", ErrInvalidCredential)
		}
		if len(raw) != sha256.Size {
			return Credential{}, fmt.Errorf("%w: sha256 value decodes to %d bytes, want %d (openssl dgst -binary -sha256 | openssl base64)",
				ErrInvalidCredential, len(raw), sha256.Size)
		}
		c := Credential{kind: kindSHA256}
		copy(c.digest[:], raw)
		return c, nil
	case strings.HasPrefix(s, prefixArgon2):
		p, err := parsePHC(s[len(prefixArgon2):])
		if err != nil {
			return Credential{}, err
		}
		return Credential{kind: kindArgon2, phc: p, src: s}, nil
	}
	if !onlyChars(s, plainChars) {
		return Credential{}, fmt.Errorf("%w: plain value contains a character that is not allowed "+
			"(allowed: A-Z a-z 0-9 ! $ ( ) * + . ; < = > [ ] ^ _ - { } @ # &; hash it with sha256: or argon2: to use others)",
			ErrInvalidCredential)
	}
	return Credential{kind: kindPlain, isAny: s == "any", digest: sha256.Sum256([]byte(s))}, nil
}

// IsEmpty reports whether the credential is empty, which matches any value.
func (c Credential) IsEmpty() bool { return c.kind == kindEmpty }

// IsAny reports whether the credential is the plain value "any", which as a `user` matches every
// client and ignores credentials.
func (c Credential) IsAny() bool { return c.isAny }

// IsHashed reports whether the credential is a sha256: or argon2: hash.
func (c Credential) IsHashed() bool { return c.kind == kindSHA256 || c.kind == kindArgon2 }

// Kind returns "empty", "plain", "sha256", "argon2id" or "argon2i".
func (c Credential) Kind() string {
	switch c.kind {
	case kindPlain:
		return "plain"
	case kindSHA256:
		return "sha256"
	case kindArgon2:
		return c.phc.variant
	}
	return "empty"
}

// String returns the kind in angle brackets, never the value, so a Credential is safe in %v.
func (c Credential) String() string { return "<" + c.Kind() + ">" }

// GoString is String, so %#v does not print the digest either.
func (c Credential) GoString() string { return c.String() }

// checkDigest compares the guess's SHA-256 (gd) with a plain or sha256 credential in constant time.
func (c *Credential) checkDigest(gd *[32]byte) bool {
	return subtle.ConstantTimeCompare(c.digest[:], gd[:]) == 1
}

// phc is a parsed argon2 PHC string: $argon2id$v=19$m=4096,t=3,p=1$<salt>$<key>, salt and key in
// unpadded standard base64.
type phc struct {
	variant string // "argon2id" or "argon2i"
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parsePHC parses the part after "argon2:". It accepts what the argon2 CLI (`argon2 salt -id -e`)
// and MediaMTX's argon2 library accept: variants argon2id and argon2i, version 19, parameters in
// the order m,t,p.
func parsePHC(s string) (*phc, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: argon2 value is not a PHC string $argon2id$v=19$m=<KiB>,t=<n>,p=<n>$<salt>$<hash>: %s",
			ErrInvalidCredential, what)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, bad("want 5 '$'-separated fields after a leading '$'")
	}
	p := &phc{variant: parts[1]}
	switch p.variant {
	case "argon2id", "argon2i":
	case "argon2d":
		return nil, fmt.Errorf("%w: argon2d is not supported (MediaMTX neither); hash with argon2id (recommended) or argon2i", ErrUnsupportedArgon2)
	default:
		return nil, bad("unknown variant (want argon2id or argon2i)")
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return nil, bad("missing version v=19")
	}
	if n, err := parseDecimal(v, 255); err != nil || n != argon2.Version {
		return nil, fmt.Errorf("%w: argon2 version must be v=19 (0x13)", ErrUnsupportedArgon2)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, bad("parameters must be exactly m=…,t=…,p=…")
	}
	var vals [3]uint64
	for i, name := range [3]string{"m", "t", "p"} {
		k, val, ok := strings.Cut(params[i], "=")
		if !ok || k != name {
			return nil, bad("parameters must be exactly m=…,t=…,p=… in that order")
		}
		n, err := parseDecimal(val, 1<<32-1)
		if err != nil {
			return nil, bad(fmt.Sprintf("parameter %s: %v", name, err))
		}
		vals[i] = n
	}
	switch {
	case vals[1] < 1 || vals[1] > maxArgon2Time:
		return nil, bad(fmt.Sprintf("t must be 1..%d", maxArgon2Time))
	case vals[2] < 1 || vals[2] > maxArgon2Threads:
		return nil, bad(fmt.Sprintf("p must be 1..%d", maxArgon2Threads))
	case vals[0] < 8*vals[2] || vals[0] > maxArgon2Memory:
		return nil, bad(fmt.Sprintf("m must be 8*p..%d KiB", maxArgon2Memory))
	}
	p.memory, p.time, p.threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return nil, bad("salt is not unpadded standard base64")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil {
		return nil, bad("hash is not unpadded standard base64")
	}
	if len(p.salt) < minArgon2Salt || len(p.salt) > maxArgon2Salt {
		return nil, bad(fmt.Sprintf("salt must be %d..%d bytes", minArgon2Salt, maxArgon2Salt))
	}
	if len(p.key) < minArgon2Key || len(p.key) > maxArgon2Key {
		return nil, bad(fmt.Sprintf("hash must be %d..%d bytes", minArgon2Key, maxArgon2Key))
	}
	return p, nil
}

// parseDecimal parses a non-negative decimal without sign or leading zeros, at most max.
func parseDecimal(s string, max uint64) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("want a decimal number without sign or leading zeros")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("want a decimal number at most %d", max)
	}
	return n, nil
}

// String encodes p as a PHC string (without the "argon2:" prefix).
func (p *phc) String() string {
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", p.variant, argon2.Version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(p.salt), base64.RawStdEncoding.EncodeToString(p.key))
}

// derive computes the argon2 key of guess with p's parameters and salt.
func (p *phc) derive(guess []byte) []byte {
	if p.variant == "argon2i" {
		return argon2.Key(guess, p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	}
	return argon2.IDKey(guess, p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
}

// verify reports whether guess derives p's key; the comparison is constant-time.
func (p *phc) verify(guess []byte) bool {
	return subtle.ConstantTimeCompare(p.derive(guess), p.key) == 1
}

// HashArgon2id hashes secret for a `user:` or `pass:` value: "argon2:$argon2id$v=19$m=19456,t=2,p=1$…"
// with a random 16-byte salt and a 32-byte key (OWASP's argon2id baseline; see the constants for
// why). The error is only for a failing system random source.
func HashArgon2id(secret []byte) (string, error) {
	p := &phc{variant: "argon2id", memory: hashArgon2Memory, time: hashArgon2Time, threads: hashArgon2Threads,
		salt: make([]byte, hashArgon2Salt)}
	if _, err := rand.Read(p.salt); err != nil {
		return "", fmt.Errorf("users: random salt: %w", err)
	}
	p.key = argon2.IDKey(secret, p.salt, p.time, p.memory, p.threads, hashArgon2Key)
	return prefixArgon2 + p.String(), nil
}

// HashSHA256 hashes secret for a `user:` or `pass:` value: "sha256:" followed by the standard
// base64 of its SHA-256 digest, the same as `openssl dgst -binary -sha256 | openssl base64`.
// Unsalted: use it for high-entropy secrets or user names, HashArgon2id for passwords.
func HashSHA256(secret []byte) string {
	d := sha256.Sum256(secret)
	return prefixSHA256 + base64.StdEncoding.EncodeToString(d[:])
}
