package users

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Vectors shared by MediaMTX's tests and docs (mediamtx-auth.md §5.1).
const (
	sha256TestUser = "sha256:rl3rgi4NcZkpAEcacZnQ2VuOfJ0FxAqCRaKB/SwdZoQ="
	sha256TestPass = "sha256:E9JJ8stBJ7QM+nV4ZoUCeHk/gU3tPFh/5YieiJp6n2w="
	argon2TestUser = "argon2:$argon2id$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58"
	argon2TestPass = "argon2:$argon2i$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$/mrZ42TiTv1mcPnpMUera5oi0SFYbbyueAbdx5sUvWo"
	argon2DocsUser = "argon2:$argon2id$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$OGGO0eCMN0ievb4YGSzvS/H+Vajx1pcbUmtLp2tRqRU"
	argon2DocsPass = "argon2:$argon2i$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$oct3kOiFywTdDdt19kT07hdvmsPTvt9zxAUho2DLqZw"
	argon2Zars     = "argon2:$argon2id$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$zarsL19s86GzUWlAkvwt4gJBFuU/A9CVuCjNI4fksow"
	sha256DocsUser = "sha256:j1tsRqDEw9xvq/D7/9tMx6Jh/jMhk3UfjwIB2f1zgMo="
	sha256DocsPass = "sha256:BdSWkrdV+ZxFBLUQQY7+7uv9RmiSVA8nrPmjGjJtZQQ="
)

// checkCredential verifies g against c without a cache, as a Backend does.
func checkCredential(t testing.TB, c Credential, g string) bool {
	t.Helper()
	b := New(Config{CacheSize: new(int)})
	ok, err := b.check(context.Background(), &c, &guess{s: g})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return ok
}

func TestCredentialCheck(t *testing.T) {
	tests := []struct {
		name, stored, guess string
		want                bool
	}{
		// internal/conf/credential_test.go Check cases.
		{"plain ok", "password", "password", true},
		{"plain wrong", "password", "wrongpassword", false},
		{"plain prefix", "password", "passwor", false},
		{"sha256 ok", sha256TestUser, "testuser", true},
		{"sha256 wrong", sha256TestUser, "notestuser", false},
		{"argon2id ok", argon2TestUser, "testuser", true},
		{"argon2id wrong", argon2TestUser, "notestuser", false},
		// §5.1 vectors.
		{"sha256 testpass", sha256TestPass, "testpass", true},
		{"argon2i testpass", argon2TestPass, "testpass", true},
		{"argon2i wrong", argon2TestPass, "testuser", false},
		{"argon2id docs user", argon2DocsUser, "user", true},
		{"argon2id docs wrong", argon2DocsUser, "mypass", false},
		{"empty matches anything", "", "whatever", true},
		{"empty matches empty", "", "", true},
		{"plain rejects empty", "password", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCredential(tt.stored)
			if err != nil {
				t.Fatalf("ParseCredential: %v", err)
			}
			if got := checkCredential(t, c, tt.guess); got != tt.want {
				t.Errorf("check(%q) = %v, want %v", tt.guess, got, tt.want)
			}
		})
	}
}

func TestParseCredential(t *testing.T) {
	tests := []struct {
		name, in string
		want     error // nil: valid
		kind     string
	}{
		// internal/conf/credential_test.go validate OK cases.
		{"empty", "", nil, "empty"},
		{"plain", "validPlain123", nil, "plain"},
		{"plain all specials", "a!$()*+.;<=>[]^_-{}@#&", nil, "plain"},
		{"argon2id zars", argon2Zars, nil, "argon2id"},
		{"argon2i", argon2TestPass, nil, "argon2i"},
		{"sha256", sha256TestUser, nil, "sha256"},
		// MediaMTX checks only the charset and accepts this; a value that is not a 32-byte digest
		// can never match, so we reject it at load.
		{"sha256 short (MediaMTX accepts)", "sha256:validBase64EncodedHash==", ErrInvalidCredential, ""},
		// MediaMTX validate error cases.
		{"plain slash", "invalid/Plain", ErrInvalidCredential, ""},
		{"sha256 charset", "sha256:inval*idBase64", ErrInvalidCredential, ""},
		{"argon2 garbage", "argon2:invalid", ErrInvalidCredential, ""},
		{"argon2d without prefix is bad plain", "$argon2d$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		// Ours.
		{"argon2d", "argon2:$argon2d$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrUnsupportedArgon2, ""},
		{"argon2 v16", "argon2:$argon2id$v=16$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrUnsupportedArgon2, ""},
		{"argon2 no version", "argon2:$argon2id$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 t=0", "argon2:$argon2id$v=19$m=4096,t=0,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 p=0", "argon2:$argon2id$v=19$m=4096,t=3,p=0$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 p=256", "argon2:$argon2id$v=19$m=4096,t=3,p=256$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 m<8p", "argon2:$argon2id$v=19$m=15,t=3,p=2$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 m huge", "argon2:$argon2id$v=19$m=4194304,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 m overflow", "argon2:$argon2id$v=19$m=99999999999,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 leading zero", "argon2:$argon2id$v=19$m=04096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 signed", "argon2:$argon2id$v=19$m=+4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 params order", "argon2:$argon2id$v=19$t=3,m=4096,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 extra param", "argon2:$argon2id$v=19$m=4096,t=3,p=1,k=2$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 padded salt", "argon2:$argon2id$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg=$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 short salt", "argon2:$argon2id$v=19$m=4096,t=3,p=1$MTIz$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58", ErrInvalidCredential, ""},
		{"argon2 short key", "argon2:$argon2id$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$VXg", ErrInvalidCredential, ""},
		{"argon2 extra field", argon2TestUser + "$x", ErrInvalidCredential, ""},
		{"argon2 no leading dollar", "argon2:argon2id$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58$", ErrInvalidCredential, ""},
		{"sha256 unpadded", "sha256:rl3rgi4NcZkpAEcacZnQ2VuOfJ0FxAqCRaKB/SwdZoQ", ErrInvalidCredential, ""},
		{"sha256 non-canonical", "sha256:rl3rgi4NcZkpAEcacZnQ2VuOfJ0FxAqCRaKB/SwdZoR=", ErrInvalidCredential, ""},
		{"sha256 empty", "sha256:", ErrInvalidCredential, ""},
		{"plain space", "my pass", ErrInvalidCredential, ""},
		{"plain comma", "a,b", ErrInvalidCredential, ""},
		{"plain colon", "a:b", ErrInvalidCredential, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCredential(tt.in)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ParseCredential error = %v, want %v", err, tt.want)
			}
			if err != nil {
				if secret := strings.TrimPrefix(strings.TrimPrefix(tt.in, "argon2:"), "sha256:"); len(secret) > 8 && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the credential", err)
				}
				return
			}
			if got := c.Kind(); got != tt.kind {
				t.Errorf("Kind() = %q, want %q", got, tt.kind)
			}
		})
	}
}

func TestCredentialClassify(t *testing.T) {
	tests := []struct {
		in                 string
		empty, any, hashed bool
	}{
		{"", true, false, false},
		{"any", false, true, false},
		{"anyone", false, false, false},
		{"secret", false, false, false},
		{sha256TestUser, false, false, true},
		{argon2TestUser, false, false, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			c, err := ParseCredential(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if c.IsEmpty() != tt.empty || c.IsAny() != tt.any || c.IsHashed() != tt.hashed {
				t.Errorf("empty, any, hashed = %v, %v, %v; want %v, %v, %v",
					c.IsEmpty(), c.IsAny(), c.IsHashed(), tt.empty, tt.any, tt.hashed)
			}
		})
	}
}

func TestCredentialFormattingHidesValue(t *testing.T) {
	u := User{}
	var err error
	if u.User, err = ParseCredential("alice"); err != nil {
		t.Fatal(err)
	}
	if u.Pass, err = ParseCredential(sha256TestPass); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(verb, u)
		for _, secret := range []string{"E9JJ8st", "13d249f2", "alice"} {
			if strings.Contains(got, secret) {
				t.Errorf("Sprintf(%s) = %q, contains %q", verb, got, secret)
			}
		}
	}
	if got, want := u.Pass.String(), "<sha256>"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestPHCRoundTrip(t *testing.T) {
	for _, s := range []string{argon2TestUser, argon2TestPass, argon2DocsUser, argon2DocsPass, argon2Zars} {
		p, err := parsePHC(strings.TrimPrefix(s, prefixArgon2))
		if err != nil {
			t.Fatalf("parsePHC: %v", err)
		}
		if got, want := prefixArgon2+p.String(), s; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestHashArgon2id(t *testing.T) {
	s, err := HashArgon2id([]byte("s3cret pass/with:chars"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "argon2:$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(s, want) {
		t.Errorf("HashArgon2id = %q, want prefix %q", s, want)
	}
	c, err := ParseCredential(s)
	if err != nil {
		t.Fatalf("ParseCredential(HashArgon2id(…)): %v", err)
	}
	if got, want := len(c.phc.salt), 16; got != want {
		t.Errorf("salt length = %d, want %d", got, want)
	}
	if got, want := len(c.phc.key), 32; got != want {
		t.Errorf("key length = %d, want %d", got, want)
	}
	if !checkCredential(t, c, "s3cret pass/with:chars") {
		t.Error("hash does not verify its own secret")
	}
	if checkCredential(t, c, "s3cret pass/with:char") {
		t.Error("hash verifies a different secret")
	}
	s2, err := HashArgon2id([]byte("s3cret pass/with:chars"))
	if err != nil {
		t.Fatal(err)
	}
	if s2 == s {
		t.Error("two hashes of one secret are equal: salt is not random")
	}
}

func TestHashSHA256(t *testing.T) {
	tests := []struct{ secret, want string }{
		{"testuser", sha256TestUser},
		{"testpass", sha256TestPass},
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			if got := HashSHA256([]byte(tt.secret)); got != tt.want {
				t.Errorf("HashSHA256 = %q, want %q", got, tt.want)
			}
			c, err := ParseCredential(HashSHA256([]byte(tt.secret)))
			if err != nil {
				t.Fatal(err)
			}
			if !checkCredential(t, c, tt.secret) {
				t.Error("hash does not verify its own secret")
			}
		})
	}
}

// TestCharsetsMatchMediaMTX compares our character sets with MediaMTX's regular expressions.
func TestCharsetsMatchMediaMTX(t *testing.T) {
	plainRe := regexp.MustCompile(`^[a-zA-Z0-9!\$\(\)\*\+\.;<=>\[\]\^_\-\{\}@#&]+$`)
	sha256Re := regexp.MustCompile(`^[a-zA-Z0-9\+/=]+$`)
	for c := range 256 {
		s := string([]byte{byte(c)})
		if got, want := onlyChars(s, plainChars), plainRe.MatchString(s); got != want {
			t.Errorf("plain %q: got %v, want %v", s, got, want)
		}
		if got, want := onlyChars(s, base64Chars), sha256Re.MatchString(s); got != want {
			t.Errorf("sha256 %q: got %v, want %v", s, got, want)
		}
	}
	if onlyChars("", plainChars) {
		t.Error("empty string accepted")
	}
}
