package tokens

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"gatehouse/authz"
)

// Issuer key files inside the directory given to LoadIssuer, and the limits of issued tokens.
const (
	SigningKeyFile   = "signing-key.pem"   // current Ed25519 private key, PKCS#8 PEM, mode 0600
	PreviousKeysFile = "previous-keys.pem" // retired public keys (PKIX PEM), newest first, mode 0600
	// MaxPreviousKeys is how many retired public keys Rotate keeps published, so tokens signed
	// before that many rotations stay verifiable until they expire.
	MaxPreviousKeys = 4
	// DefaultIssuerName is the iss of tokens gatehouse mints unless IssuerName says otherwise.
	DefaultIssuerName = "gatehouse"
	// AudienceFile holds the default aud of issued tokens, "gatehouse-" and 16 random hex digits,
	// created next to the signing key on first run (mode 0600) unless IssuerAudience is given.
	// It travels with the key: a copy of the key directory is the same deployment.
	AudienceFile = "audience"
	// DefaultMaxTTL is the longest lifetime an issued token may have unless IssuerMaxTTL says
	// otherwise. Own tokens cannot be revoked one by one (only by rotating the key out of the
	// published set, MaxPreviousKeys+1 rotations), so their lifetime is the bound on a leaked one.
	DefaultMaxTTL = 24 * time.Hour
	// ClaimKey is the claim holding an issued token's permissions, in MediaMTX's format (a JSON
	// array of {"action","path"}), so MediaMTX's authJWTJWKS can verify the tokens too.
	ClaimKey = "mediamtx_permissions"
)

// IssuerOption configures LoadIssuer.
type IssuerOption func(*Issuer)

// IssuerName sets the iss claim of issued tokens (default "gatehouse").
func IssuerName(name string) IssuerOption { return func(i *Issuer) { i.name = name } }

// IssuerAudience sets the aud claim of issued tokens, which the Backend's built-in provider then
// requires (default: the content of AudienceFile in the key directory, created on first run).
func IssuerAudience(aud string) IssuerOption { return func(i *Issuer) { i.audience = aud } }

// IssuerMaxTTL sets the longest lifetime Issue accepts and the longest exp - iat the Backend's
// built-in provider accepts (default DefaultMaxTTL; zero or negative keeps the default).
func IssuerMaxTTL(d time.Duration) IssuerOption {
	return func(i *Issuer) {
		if d > 0 {
			i.maxTTL = d
		}
	}
}

// IssuerClock sets the time source for iat and exp (default time.Now; nil keeps the default).
func IssuerClock(now func() time.Time) IssuerOption {
	return func(i *Issuer) {
		if now != nil {
			i.now = now
		}
	}
}

// signingKey is the current private key and its kid.
type signingKey struct {
	kid  string
	priv ed25519.PrivateKey
}

// Issuer mints gatehouse's own tokens: compact EdDSA JWTs in MediaMTX's format, signed with an
// Ed25519 key kept in a directory, and publishes the matching public keys as a JWKS. It starts no
// goroutines and is safe for concurrent use; Rotate takes effect at once for Issue, JWKSHandler
// and KeySet (which a verifier such as backends/jwks reads per request).
type Issuer struct {
	dir      string
	name     string
	audience string
	maxTTL   time.Duration
	now      func() time.Time

	mu   sync.Mutex // serialises Rotate
	cur  atomic.Pointer[signingKey]
	prev []ed25519.PublicKey // guarded by mu
	keys atomic.Pointer[KeySet]
	jwks atomic.Pointer[[]byte]
	gen  atomic.Uint64
}

// Key is one public key the issuer publishes: its kid and the Ed25519 key.
type Key struct {
	ID     string
	Public ed25519.PublicKey
}

// KeySet is an immutable snapshot of the issuer's published keys, the current one first, then
// the retired ones newest first. Gen changes whenever the keys change (starting at 1), so a
// verifier can cache what it derives from a snapshot.
type KeySet struct {
	Gen  uint64
	Keys []Key
}

// LoadIssuer loads the signing key from dir, or on first run creates dir (mode 0700) and a new
// Ed25519 key in it (mode 0600). A key file readable by group or others is refused, as ssh does.
// Retired public keys saved by Rotate are loaded too.
func LoadIssuer(dir string, opts ...IssuerOption) (*Issuer, error) {
	i := &Issuer{dir: dir, name: DefaultIssuerName, maxTTL: DefaultMaxTTL, now: time.Now}
	for _, o := range opts {
		o(i)
	}
	if i.name == "" {
		return nil, fmt.Errorf("%w: empty issuer name", ErrIssuer)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: key directory: %w", ErrIssuer, err)
	}
	priv, err := i.loadOrCreateKey()
	if err != nil {
		return nil, err
	}
	if i.audience == "" {
		if i.audience, err = i.loadOrCreateAudience(); err != nil {
			return nil, err
		}
	}
	prev, err := i.loadPrevious()
	if err != nil {
		return nil, err
	}
	i.prev = prev
	i.install(priv)
	return i, nil
}

func (i *Issuer) keyPath() string  { return filepath.Join(i.dir, SigningKeyFile) }
func (i *Issuer) prevPath() string { return filepath.Join(i.dir, PreviousKeysFile) }

func (i *Issuer) loadOrCreateKey() (ed25519.PrivateKey, error) {
	priv, err := readPrivateKey(i.keyPath())
	if !errors.Is(err, fs.ErrNotExist) {
		return priv, err
	}
	_, priv, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate key: %w", ErrIssuer, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: encode key: %w", ErrIssuer, err)
	}
	tmp, err := writeTemp(i.dir, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	// Link, not rename: if another process created the key meanwhile, keep theirs.
	if err := os.Link(tmp, i.keyPath()); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readPrivateKey(i.keyPath())
		}
		return nil, fmt.Errorf("%w: save key: %w", ErrIssuer, err)
	}
	return priv, nil
}

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is accessible by group or others (mode %o); chmod 600 it", ErrIssuer, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read key: %w", ErrIssuer, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s is not a PKCS#8 PEM private key", ErrIssuer, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a PKCS#8 PEM private key", ErrIssuer, path)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds a %T, want an Ed25519 key", ErrIssuer, path, k)
	}
	return priv, nil
}

// maxAudience bounds the audience file (it is put in every token).
const maxAudience = 256

func (i *Issuer) loadOrCreateAudience() (string, error) {
	path := filepath.Join(i.dir, AudienceFile)
	read := func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		aud := strings.TrimSpace(string(b))
		if aud == "" || len(aud) > maxAudience || strings.ContainsFunc(aud, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return "", fmt.Errorf("%w: %s must hold one line of at most %d printable characters", ErrIssuer, path, maxAudience)
		}
		return aud, nil
	}
	aud, err := read()
	if !errors.Is(err, fs.ErrNotExist) {
		return aud, err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("%w: generate audience: %w", ErrIssuer, err)
	}
	aud = "gatehouse-" + hex.EncodeToString(rnd[:])
	tmp, err := writeTemp(i.dir, []byte(aud+"\n"))
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil { // as for the key: another process may have won
		if errors.Is(err, fs.ErrExist) {
			return read()
		}
		return "", fmt.Errorf("%w: save audience: %w", ErrIssuer, err)
	}
	return aud, nil
}

func (i *Issuer) loadPrevious() ([]ed25519.PublicKey, error) {
	b, err := os.ReadFile(i.prevPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read previous keys: %w", ErrIssuer, err)
	}
	var out []ed25519.PublicKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		pub, ok := k.(ed25519.PublicKey)
		if err != nil || !ok || blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("%w: %s: not an Ed25519 public key", ErrIssuer, i.prevPath())
		}
		out = append(out, pub)
	}
	return out, nil
}

// writeTemp writes data to a new 0600 file in dir, synced, and returns its name.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-key-*")
	if err != nil {
		return "", fmt.Errorf("%w: save key: %w", ErrIssuer, err)
	}
	name := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("%w: save key: %w", ErrIssuer, err)
	}
	return name, nil
}

func replaceFile(dir, path string, data []byte) error {
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: save key: %w", ErrIssuer, err)
	}
	return nil
}

// kidOf is the RFC 7638 JWK thumbprint of an Ed25519 public key, shortened to 16 characters
// (96 bits) to keep tokens small: stable across restarts, distinct across rotations.
func kidOf(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// install makes priv current and republishes the key set (current + i.prev). Callers hold mu or
// own i exclusively.
func (i *Issuer) install(priv ed25519.PrivateKey) {
	pub := priv.Public().(ed25519.PublicKey)
	cur := &signingKey{kid: kidOf(pub), priv: priv}
	ks := &KeySet{Gen: i.gen.Add(1)}
	var doc jwkset.JWKSMarshal
	for _, k := range append([]ed25519.PublicKey{pub}, i.prev...) {
		kid := kidOf(k)
		if slices.ContainsFunc(ks.Keys, func(have Key) bool { return have.ID == kid }) {
			continue
		}
		ks.Keys = append(ks.Keys, Key{ID: kid, Public: k})
		jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			ALG: jwkset.AlgEdDSA, KID: kid, USE: jwkset.UseSig,
		}})
		if err == nil { // cannot fail for a 32-byte Ed25519 key
			doc.Keys = append(doc.Keys, jwk.Marshal())
		}
	}
	body, _ := json.Marshal(doc) // plain strings only
	i.jwks.Store(&body)
	i.keys.Store(ks)
	i.cur.Store(cur)
}

// KeySet returns the current snapshot of the published keys (never nil). Rotate and Reload
// replace it; it is never modified in place.
func (i *Issuer) KeySet() *KeySet { return i.keys.Load() }

// Name returns the iss of issued tokens.
func (i *Issuer) Name() string { return i.name }

// Audience returns the aud of issued tokens.
func (i *Issuer) Audience() string { return i.audience }

// MaxTTL returns the longest lifetime Issue accepts.
func (i *Issuer) MaxTTL() time.Duration { return i.maxTTL }

// Dir returns the key directory the issuer was loaded from.
func (i *Issuer) Dir() string { return i.dir }

// Reload reads the signing key and the retired public keys from the key directory again and,
// when they differ from the current ones (gatehouse rotate-key ran in another process), makes
// them current, at once for Issue, JWKSHandler and KeySet. It reports
// whether they changed; on error the current keys stay. Name, audience and maximum lifetime stay
// as loaded. A missing key file is an error here: Reload never creates a key.
func (i *Issuer) Reload() (bool, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	priv, err := readPrivateKey(i.keyPath())
	if err != nil {
		if errors.Is(err, ErrIssuer) {
			return false, err
		}
		return false, fmt.Errorf("%w: read key: %w", ErrIssuer, err)
	}
	prev, err := i.loadPrevious()
	if err != nil {
		return false, err
	}
	eq := func(a, b ed25519.PublicKey) bool { return a.Equal(b) }
	if priv.Equal(i.cur.Load().priv) && slices.EqualFunc(prev, i.prev, eq) {
		return false, nil
	}
	i.prev = prev
	i.install(priv)
	return true, nil
}

// KeyID returns the kid of the current signing key.
func (i *Issuer) KeyID() string { return i.cur.Load().kid }

// Rotate generates a new current signing key and keeps the previous public key published (up to
// MaxPreviousKeys of them), so tokens issued before stay valid until they expire. Both files are
// replaced atomically; on error the old key stays current.
func (i *Issuer) Rotate() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("%w: generate key: %w", ErrIssuer, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("%w: encode key: %w", ErrIssuer, err)
	}
	oldPub := i.cur.Load().priv.Public().(ed25519.PublicKey)
	prev := []ed25519.PublicKey{oldPub}
	for _, k := range i.prev {
		if len(prev) < MaxPreviousKeys && !k.Equal(oldPub) {
			prev = append(prev, k)
		}
	}
	var pemPrev []byte
	for _, k := range prev {
		d, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return fmt.Errorf("%w: encode key: %w", ErrIssuer, err)
		}
		pemPrev = append(pemPrev, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: d})...)
	}
	// Previous keys first: a crash in between leaves the old key both current and published.
	if err := replaceFile(i.dir, i.prevPath(), pemPrev); err != nil {
		return err
	}
	if err := replaceFile(i.dir, i.keyPath(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return err
	}
	i.prev = prev
	i.install(priv)
	return nil
}

// claimPermission is one entry of mediamtx_permissions in MediaMTX's strict format, plus
// gatehouse's protocols (which MediaMTX does not know, so it refuses a token that has them).
type claimPermission struct {
	Action    string   `json:"action"`
	Path      string   `json:"path,omitempty"`
	Protocols []string `json:"protocols,omitempty"`
}

// Issue returns a compact EdDSA JWT for subject with the given permissions, valid for ttl (at
// most MaxTTL, else an error wrapping ErrTTL): header alg, kid, typ; claims iss, aud, sub, iat,
// exp and mediamtx_permissions. A permission limited to protocols carries them in a "protocols"
// list: gatehouse honours it, and MediaMTX, whose format has no such key, refuses the whole token
// (fails closed) instead of granting every protocol. Note that MediaMTX reads
// "live/*" literally; for tokens that MediaMTX verifies itself, write a regular expression
// ("~^live/").
func (i *Issuer) Issue(subject string, perms []authz.Permission, ttl time.Duration) (string, error) {
	if subject == "" {
		return "", fmt.Errorf("%w: empty subject", ErrIssuer)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("%w: ttl must be positive", ErrIssuer)
	}
	if ttl > i.maxTTL {
		return "", fmt.Errorf("%w: %w: %s > %s", ErrIssuer, ErrTTL, ttl, i.maxTTL)
	}
	if len(perms) == 0 {
		return "", fmt.Errorf("%w: no permissions", ErrIssuer)
	}
	cp := make([]claimPermission, 0, len(perms))
	for _, p := range perms {
		if _, err := authz.ParseAction(string(p.Action)); err != nil {
			return "", fmt.Errorf("%w: %w", ErrIssuer, err)
		}
		c := claimPermission{Action: string(p.Action), Protocols: p.Protocols}
		if p.Action.HasPath() {
			c.Path = p.Path.String()
		}
		cp = append(cp, c)
	}
	now := i.now()
	cur := i.cur.Load()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss":    i.name,
		"aud":    i.audience,
		"sub":    subject,
		"iat":    now.Unix(),
		"exp":    now.Add(ttl).Unix(),
		ClaimKey: cp,
	})
	t.Header["kid"] = cur.kid
	s, err := t.SignedString(cur.priv)
	if err != nil {
		return "", fmt.Errorf("%w: sign: %w", ErrIssuer, err)
	}
	return s, nil
}

// JWKSHandler serves the issuer's public keys as a JWKS (OKP/Ed25519 keys with kid, alg EdDSA,
// use sig) to GET and HEAD, with Cache-Control max-age=60 so rotations spread within a minute.
// Mount it at /.well-known/jwks.json; it answers on whatever path it is mounted.
func (i *Issuer) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body := *i.jwks.Load()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=60")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// ParseAllow parses a permission written as on the command line: "action" or "action:path",
// e.g. "publish:live/alice", "read:live/*", "read:~^cam", "api". Paths use authz.PathPattern
// syntax; api, metrics and pprof take no path.
func ParseAllow(s string) (authz.Permission, error) {
	action, path, hasPath := strings.Cut(strings.TrimSpace(s), ":")
	a, err := authz.ParseAction(action)
	if err != nil {
		return authz.Permission{}, fmt.Errorf("%w %q: %w", ErrAllow, s, err)
	}
	if hasPath && !a.HasPath() {
		return authz.Permission{}, fmt.Errorf("%w %q: %s takes no path", ErrAllow, s, a)
	}
	if hasPath && path == "" {
		return authz.Permission{}, fmt.Errorf("%w %q: empty path (omit \":\" to allow any path)", ErrAllow, s)
	}
	p, err := authz.NewPermission(action, path, nil)
	if err != nil {
		return authz.Permission{}, fmt.Errorf("%w %q: %w", ErrAllow, s, err)
	}
	return p, nil
}
