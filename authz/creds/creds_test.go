package creds

import (
	"errors"
	"net/url"
	"testing"

	"gatehouse/authz"
)

func TestFromAuthorization(t *testing.T) {
	tests := []struct {
		name, header string
		want         Credentials
	}{
		{"basic", "Basic bXl1c2VyOm15cGFzcw==", Credentials{User: "myuser", Pass: "mypass"}},
		{"bearer user:pass (OBS)", "Bearer myuser:mypass", Credentials{User: "myuser", Pass: "mypass"}},
		{"bearer token", "Bearer testing123", Credentials{Token: "testing123", TokenFrom: authz.OriginHeader}},
		{"bearer jwt", "bearer a.b.c", Credentials{Token: "a.b.c", TokenFrom: authz.OriginHeader}},
		{"jwt as the basic password is also a token", "Basic dTpleUouYS5i", Credentials{User: "u", Pass: "eyJ.a.b", Token: "eyJ.a.b", TokenFrom: authz.OriginHeader}},
		{"jwt as the OBS password is also a token", "Bearer u:eyJ.a.b", Credentials{User: "u", Pass: "eyJ.a.b", Token: "eyJ.a.b", TokenFrom: authz.OriginHeader}},
		{"bearer stream key is a key (OBS WHIP Bearer Token)", "Bearer ghk_abc", Credentials{Key: "ghk_abc"}},
		{"stream key as the basic password is also a key", "Basic dTpnaGtfYWJj", Credentials{User: "u", Pass: "ghk_abc", Key: "ghk_abc"}},
		{"stream key as the OBS password is also a key", "Bearer u:ghk_abc", Credentials{User: "u", Pass: "ghk_abc", Key: "ghk_abc"}},
		{"two colons is a token", "Bearer a:b:c", Credentials{Token: "a:b:c", TokenFrom: authz.OriginHeader}},
		{"basic bad base64", "Basic !!!", Credentials{}},
		{"basic without colon", "Basic dXNlcg==", Credentials{}},
		{"unknown scheme", "Digest x", Credentials{}},
		{"empty", "", Credentials{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromAuthorization(tt.header); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFromQuery(t *testing.T) {
	tests := []struct {
		name, raw string
		want      Credentials
		wantErr   error
	}{
		{"user pass", "user=u&pass=p&x=1", Credentials{User: "u", Pass: "p"}, nil},
		{"token", "?token=t", Credentials{Token: "t", TokenFrom: authz.OriginQuery, TokenParam: "token"}, nil},
		{"legacy jwt", "jwt=j", Credentials{Token: "j", TokenFrom: authz.OriginQuery, TokenParam: "jwt"}, nil},
		{"token wins over jwt", "jwt=j&token=t", Credentials{Token: "t", TokenFrom: authz.OriginQuery, TokenParam: "token"}, nil},
		{"stream key", "key=K", Credentials{Key: "K"}, nil},
		{"duplicate key", "key=a&key=b", Credentials{}, ErrDuplicate},
		{"jwt as pass is also a token", "user=u&pass=eyJ.a.b", Credentials{User: "u", Pass: "eyJ.a.b", Token: "eyJ.a.b", TokenFrom: authz.OriginQuery, TokenParam: "pass"}, nil},
		{"stream key as pass is also a key", "user=u&pass=ghk_x", Credentials{User: "u", Pass: "ghk_x", Key: "ghk_x"}, nil},
		{"duplicate user", "user=a&user=b", Credentials{}, ErrDuplicate},
		{"duplicate token", "token=a&token=b", Credentials{}, ErrDuplicate},
	}
	for _, tt := range []struct {
		name, raw string
		want      Credentials
		wantErr   error
	}{
		{"extra token param", "access_key=k", Credentials{Token: "k", TokenFrom: authz.OriginQuery, TokenParam: "access_key"}, nil},
		{"token wins over extra", "token=t&access_key=k", Credentials{Token: "t", TokenFrom: authz.OriginQuery, TokenParam: "token"}, nil},
		{"duplicate extra", "access_key=a&access_key=b", Credentials{}, ErrDuplicate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := ParseQuery(tt.raw, "access_key")
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %+v %v, want %+v %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := ParseQuery(tt.raw)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %+v %v, want %+v %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, _, err := ParseQuery("a=%zz"); err == nil {
		t.Error("malformed query accepted")
	}
	if _, err := FromQuery(url.Values{"pass": {"x"}}); err != nil {
		t.Error(err)
	}
}

func FuzzFromAuthorization(f *testing.F) {
	f.Add("Basic bXl1c2VyOm15cGFzcw==")
	f.Add("Bearer a:b")
	f.Fuzz(func(t *testing.T, h string) {
		c := FromAuthorization(h)
		if c.Token != "" && c.Pass != "" {
			t.Fatalf("both token and password from %q", h)
		}
		if JWTShaped(c.Pass) {
			t.Fatalf("a JWT-shaped password was not classified as a token from %q", h)
		}
	})
}
