package creds

import (
	"net/url"
	"strings"
	"testing"
)

// TestFromRawQuery: FromRawQuery agrees with ParseQuery on usual queries, the ones its fast pass
// leaves to ParseQuery, and the malformed ones.
func TestFromRawQuery(t *testing.T) {
	tests := []struct {
		raw  string
		fast bool // read by the one pass
	}{
		{"user=testuser&pass=testpass", true},
		{"?user=testuser&pass=testpass", true},
		{"token=abc&x=1&y", true},
		{"access_key=k1", true},
		{"jwt=a.b.c&pass=p%2Bq+r", true},
		{"key=ghk_x&user=&pass=", true},
		{"", true},
		{"&&=&", true},
		{"us%65r=u", true},
		{"user=a&user=b", false},
		{"access_key=a&access_key=b", false},
		{"x=1;y=2", false},
		{"x=%zz", false},
		{"%zz=1", false},
		{"token=%4", false},
		{strings.Repeat("x=1&", 20), false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			if _, ok := fromRawQueryFast(strings.TrimPrefix(tt.raw, "?"), []string{"access_key"}); ok != tt.fast {
				t.Errorf("fast pass = %v, want %v", ok, tt.fast)
			}
			checkRawQuery(t, tt.raw, "access_key")
		})
	}
}

func checkRawQuery(t *testing.T, raw string, tokenParams ...string) {
	t.Helper()
	got, gotErr := FromRawQuery(raw, tokenParams...)
	_, want, wantErr := ParseQuery(raw, tokenParams...)
	if got != want || (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("FromRawQuery(%q) = %+v, %v; ParseQuery: %+v, %v", raw, got, gotErr, want, wantErr)
	}
	// A repeated parameter is named, and several may be: only the kind must agree then.
	if gotErr != nil && !strings.HasPrefix(gotErr.Error(), "creds: repeated") && gotErr.Error() != wantErr.Error() {
		t.Fatalf("FromRawQuery(%q) error %q, ParseQuery %q", raw, gotErr, wantErr)
	}
}

// FuzzFromRawQueryMatchesParseQuery holds FromRawQuery to ParseQuery on arbitrary queries.
func FuzzFromRawQueryMatchesParseQuery(f *testing.F) {
	for _, s := range []string{"user=testuser&pass=testpass", "token=a&jwt=b&key=c", "access_key=x&ak=y", "a=%41&b=+", "x;y", "u%73er=1&user=2"} {
		f.Add(s, "access_key", "ak")
	}
	f.Fuzz(func(t *testing.T, raw, p1, p2 string) {
		checkRawQuery(t, raw, p1, p2)
		checkRawQuery(t, raw)
	})
}

// FuzzValidQueryMatchesParseQuery: ValidQuery accepts exactly what url.ParseQuery accepts.
func FuzzValidQueryMatchesParseQuery(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "a=%zz", "a=%4", "a;b", "x=%41" + strings.Repeat("&y=1", 20)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		_, err := url.ParseQuery(q)
		if got := ValidQuery(q); got != (err == nil) {
			t.Errorf("ValidQuery(%q) = %v, url.ParseQuery error %v", q, got, err)
		}
	})
}
