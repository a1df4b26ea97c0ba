package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

// Managed stream keys (the ones gatehouse generates and keeps in its store) look like
//
//	ghk_ + 32 characters of lower-case base32 (a-z, 2-7)
//
// 36 characters in all: the 32 encode 16 random bytes (128 bits) followed by a CRC-32 of the
// prefix and those bytes. The prefix lets secret scanners find a leaked key; the checksum lets
// gatehouse refuse a mistyped or made-up key before any lookup. Only letters, digits and "_": the
// key survives a stream name, a URL query, nginx-rtmp's args, an SRT streamid and OBS's field
// untouched, and "live/" + key + "?key=" + key is 82 bytes, far under nginx-rtmp's 255.
const (
	// SecretPrefix starts every managed key.
	SecretPrefix = "ghk_"
	// SecretLen is the length of a managed key, prefix included.
	SecretLen = len(SecretPrefix) + 32

	secretRandom = 16 // bytes of randomness
)

// secretEncoding is RFC 4648 base32 in lower case without padding (20 bytes -> 32 characters).
var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Digest is the SHA-256 of a key: the only form in which a key is stored or held in memory.
type Digest [sha256.Size]byte

// NewSecret returns a fresh managed key and its digest. The key must be shown to its owner once
// and then forgotten.
func NewSecret() (string, Digest, error) {
	var b [secretRandom + 4]byte
	if _, err := rand.Read(b[:secretRandom]); err != nil {
		return "", Digest{}, fmt.Errorf("keys: random: %w", err)
	}
	binary.BigEndian.PutUint32(b[secretRandom:], checksum(b[:secretRandom]))
	s := SecretPrefix + secretEncoding.EncodeToString(b[:])
	return s, sha256.Sum256([]byte(s)), nil
}

// IsManagedForm reports whether s carries the managed-key prefix, well formed or not.
func IsManagedForm(s string) bool { return strings.HasPrefix(s, SecretPrefix) }

// ParseSecret checks a managed key's length, alphabet and checksum and returns its digest, or
// ErrMalformed (whose text never contains s). It costs the same for every key of the right
// length, so it reveals nothing about stored keys: it reads no store.
func ParseSecret(s string) (Digest, error) {
	if len(s) != SecretLen || !IsManagedForm(s) {
		return Digest{}, fmt.Errorf("%w: a stream key is %s followed by 32 letters and digits", ErrMalformed, SecretPrefix)
	}
	b, err := secretEncoding.DecodeString(s[len(SecretPrefix):])
	if err != nil || len(b) != secretRandom+4 {
		return Digest{}, fmt.Errorf("%w: a stream key has only the characters a-z and 2-7 after %s", ErrMalformed, SecretPrefix)
	}
	if binary.BigEndian.Uint32(b[secretRandom:]) != checksum(b[:secretRandom]) {
		return Digest{}, fmt.Errorf("%w: checksum mismatch (the key was mistyped or truncated)", ErrMalformed)
	}
	return sha256.Sum256([]byte(s)), nil
}

func checksum(random []byte) uint32 {
	h := crc32.NewIEEE()
	_, _ = h.Write([]byte(SecretPrefix))
	_, _ = h.Write(random)
	return h.Sum32()
}
