package creds

import (
	"errors"
	"net/url"
	"testing"
)

func TestFromAuthorization(t *testing.T) {
	tests := []struct {
		name, header string
		want         Credentials
	}{
		{"basic", "Basic bXl1c2VyOm15cGFzcw==", Credentials{User: "myuser", Pass: "mypass"}},
		{"bearer user:pass (OBS)", "Bearer myuser:mypass", Credentials{User: "myuser", Pass: "mypass"}},
		{"bearer token", "Bearer testing123", Credentials{Token: "testing123"}},
		{"bearer jwt", "bearer a.b.c", Credentials{Token: "a.b.c"}},
		{"two colons is a token", "Bearer a:b:c", Credentials{Token: "a:b:c"}},
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
		{"token", "?token=t", Credentials{Token: "t"}, nil},
		{"legacy jwt", "jwt=j", Credentials{Token: "j"}, nil},
		{"token wins over jwt", "jwt=j&token=t", Credentials{Token: "t"}, nil},
		{"duplicate user", "user=a&user=b", Credentials{}, ErrDuplicate},
		{"duplicate token", "token=a&token=b", Credentials{}, ErrDuplicate},
	}
	for _, tt := range []struct {
		name, raw string
		want      Credentials
		wantErr   error
	}{
		{"extra token param", "access_key=k", Credentials{Token: "k"}, nil},
		{"token wins over extra", "token=t&access_key=k", Credentials{Token: "t"}, nil},
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
		if c.Token != "" && (c.User != "" || c.Pass != "") {
			t.Fatalf("both token and user/pass from %q", h)
		}
	})
}
