package mediamtx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
)

// testEngine allows alice/secret to publish live/alice and read anything; bob/pw is a known user
// with no permissions.
func testEngine() *authz.Engine {
	b := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		switch {
		case r.User == "alice" && r.Pass == "secret":
			if r.Action == authz.ActionRead || (r.Action == authz.ActionPublish && r.Path == "live/alice") {
				return authz.Allowing("alice", time.Time{}), nil
			}
			return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted"), nil
		case r.User == "bob" && r.Pass == "pw":
			return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted"), nil
		}
		return authz.Decision{}, nil
	})
	return authz.NewEngine(authz.NewChain(authz.Method{Name: "test", Backend: b}), nil)
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(New(Config{}, testEngine()))
	defer srv.Close()
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantReason string
	}{
		{"allow publish", "POST", `{"ip":"127.0.0.1","user":"alice","password":"secret","token":"secret","action":"publish","path":"live/alice","protocol":"rtsp","id":"0f8b4c1e-8d1c-4f3b-9d4a-0a1b2c3d4e5f","query":"a=b","userAgent":"Lavf61"}`, 200, "allowed"},
		{"allow read with null id", "POST", `{"ip":"::1","user":"alice","password":"secret","action":"read","path":"x","protocol":"hls","id":null}`, 200, "allowed"},
		{"unknown fields ignored", "POST", `{"action":"read","path":"x","user":"alice","password":"secret","future":{"x":1}}`, 200, "allowed"},
		{"anonymous first attempt is 401", "POST", `{"ip":"127.0.0.1","user":"","password":"","token":"","action":"read","path":"x","protocol":"rtsp","id":null}`, 401, "no_credentials"},
		{"wrong password is 401", "POST", `{"user":"alice","password":"nope","action":"read","path":"x"}`, 401, "bad_credentials"},
		{"known user not permitted is 403", "POST", `{"user":"alice","password":"secret","action":"publish","path":"live/bob"}`, 403, "not_permitted"},
		{"user without permissions is 403", "POST", `{"user":"bob","password":"pw","action":"read","path":"x"}`, 403, "not_permitted"},
		{"api action without path", "POST", `{"user":"bob","password":"pw","action":"api","path":"","protocol":""}`, 403, "not_permitted"},
		{"malformed json", "POST", `{"action":`, 400, "malformed_request"},
		{"not an object", "POST", `[1,2]`, 400, "malformed_request"},
		{"wrong type", "POST", `{"action":"read","user":5}`, 400, "malformed_request"},
		{"unknown action", "POST", `{"action":"delete","path":"x"}`, 400, "malformed_request"},
		{"bad ip", "POST", `{"action":"read","ip":"999.1.1.1"}`, 400, "malformed_request"},
		{"empty body", "POST", ``, 400, "malformed_request"},
		{"wrong method", "GET", ``, 405, "method_not_allowed"},
		{"oversize", "POST", `{"action":"read","token":"` + strings.Repeat("a", MaxBody) + `"}`, 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/hooks/mediamtx", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			// MediaMTX logs the body of a denial; a trailing newline became an empty log line.
			if bytes.HasSuffix(body, []byte("\n")) {
				t.Errorf("reply %q ends with a newline", body)
			}
			var got reply
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode reply: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || got.Reason != tt.wantReason {
				t.Errorf("got %d %q, want %d %q (message %q)", resp.StatusCode, got.Reason, tt.wantStatus, tt.wantReason, got.Message)
			}
			if got.Allowed != (tt.wantStatus == 200) {
				t.Errorf("got allowed=%v with status %d", got.Allowed, resp.StatusCode)
			}
			if strings.Contains(got.Message, "secret") {
				t.Errorf("reply leaks a credential: %q", got.Message)
			}
		})
	}
}

// TestDecodeCredentials: MediaMTX's fields and its raw query are sorted by kind and origin
// (issue 9, items 3 and 9): a JWT in the password field is a token, a query token says which
// parameter, a stream key parameter is a key, a repeated credential parameter is malformed.
func TestDecodeCredentials(t *testing.T) {
	const jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2ln"
	tests := []struct {
		name, fields string
		want         authz.Request
		wantErr      bool
	}{
		{"jwt as the password", `"user":"any","password":"` + jwt + `"`,
			authz.Request{User: "any", Pass: jwt, Token: jwt, TokenFrom: authz.OriginUserInfo}, false},
		{"password", `"user":"u","password":"p"`, authz.Request{User: "u", Pass: "p"}, false},
		{"query token", `"query":"jwt=` + jwt + `"`, authz.Request{Token: jwt, TokenFrom: authz.OriginQuery, TokenParam: "jwt", Query: "jwt=" + jwt}, false},
		{"header token repeated in the query came from the query", `"token":"` + jwt + `","query":"token=` + jwt + `"`,
			authz.Request{Token: jwt, TokenFrom: authz.OriginQuery, TokenParam: "token", Query: "token=" + jwt}, false},
		{"stream key parameter", `"query":"key=K"`, authz.Request{Key: "K", Query: "key=K"}, false},
		{"repeated key", `"query":"key=K&key=L"`, authz.Request{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Decode([]byte(`{"action":"read","path":"live/a",` + tt.fields + `}`))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "K") {
					t.Errorf("error names the key: %v", err)
				}
				return
			}
			got := authz.Request{User: req.User, Pass: req.Pass, Token: req.Token, TokenFrom: req.TokenFrom, TokenParam: req.TokenParam, Key: req.Key, Query: req.Query}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	req, err := Decode([]byte(`{"ip":"::ffff:10.0.0.1","user":"u","password":"p","token":"p","action":"publish","path":"cam1","protocol":"RTSP","id":"abc","query":"a=b","userAgent":"ua"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := authz.Request{Action: authz.ActionPublish, Path: "cam1", Protocol: "rtsp", User: "u", Pass: "p", // token "p" is MediaMTX's copy of the password, not a second credential
		Query: "a=b", ID: "abc", UserAgent: "ua", Source: "mediamtx"}
	want.IP = req.IP
	if *req != want {
		t.Errorf("got %+v, want %+v", *req, want)
	}
	if got := req.IP.String(); got != "10.0.0.1" {
		t.Errorf("got ip %s, want 10.0.0.1 (v4-mapped unmapped)", got)
	}
	if _, err := Decode([]byte(`{"action":"nope","password":"hunter2"}`)); !errors.Is(err, ErrMalformed) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("got %v, want ErrMalformed without the password", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"ip":"127.0.0.1","user":"u","password":"p","token":"p","action":"publish","path":"cam1","protocol":"rtsp","id":null,"query":"","userAgent":""}`))
	f.Add([]byte(`{"action":"api"}`))
	f.Add([]byte(`{"action":`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := Decode(b)
		if err == nil && req == nil {
			t.Fatal("nil request without error")
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}

// FuzzDecodeFastMatchesJSON: whenever the fast path accepts a body, encoding/json accepts it too
// and yields the same request.
func FuzzDecodeFastMatchesJSON(f *testing.F) {
	f.Add([]byte(`{"ip":"127.0.0.1","user":"u","password":"p","token":"p","action":"publish","path":"cam1","protocol":"rtsp","id":null,"query":"","userAgent":"Lavf"}`))
	f.Add([]byte(` { "id" : "x" , "ID":"y", "action":"read" } `))
	f.Add([]byte(`{"action":"read","user":"é","path":null,"future":"x"}`))
	f.Add([]byte(`{"action":"read","User":"x"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast wireRequest
		if !decodeFast(b, &fast) {
			return
		}
		var slow wireRequest
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, b)
		}
		if (fast.ID == nil) != (slow.ID == nil) || (fast.ID != nil && *fast.ID != *slow.ID) {
			t.Fatalf("id differs: fast %v slow %v for %q", fast.ID, slow.ID, b)
		}
		fast.ID, slow.ID = nil, nil
		if fast != slow {
			t.Fatalf("fast %+v != slow %+v for %q", fast, slow, b)
		}
	})
}

// FuzzAppendReply: the hand-written reply encoder always produces JSON that decodes to the input.
func FuzzAppendReply(f *testing.F) {
	f.Add(true, "allowed", "allowed")
	f.Add(false, "x\"y", "<\u2028>\x01\xff")
	f.Fuzz(func(t *testing.T, allowed bool, reason, message string) {
		b := appendReply(nil, reply{Allowed: allowed, Reason: reason, Message: message})
		var got reply
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		var want reply // the oracle: encoding/json's own round trip
		ref, _ := json.Marshal(reply{Allowed: allowed, Reason: reason, Message: message})
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

func BenchmarkHandler(b *testing.B) {
	h := New(Config{}, testEngine())
	body := []byte(`{"ip":"127.0.0.1","user":"alice","password":"secret","token":"secret","action":"publish","path":"live/alice","protocol":"rtmp","id":null,"query":"","userAgent":"bench"}`)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/hooks/mediamtx", bytes.NewReader(body)))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"ip":"127.0.0.1","user":"alice","password":"secret","token":"secret","action":"publish","path":"live/alice","protocol":"rtmp","id":null,"query":"","userAgent":"bench"}`)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			var w wireRequest
			if !decodeFast(body, &w) {
				b.Fatal("fallback")
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var w wireRequest
			if err := json.Unmarshal(body, &w); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDotDotPathsRefused: a permission on ~^live/ must not reach live/../admin. MediaMTX passes
// the path as its client wrote it; the engine's authz.CheckPath refuses it (403 invalid_path)
// before any method sees it.
func TestDotDotPathsRefused(t *testing.T) {
	var asked []string
	liveOnly := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		asked = append(asked, r.Path)
		if strings.HasPrefix(r.Path, "live/") { // what a ~^live/ permission matches
			return authz.Allowing("alice", time.Time{}), nil
		}
		return authz.Denying(authz.Forbidden, authz.ReasonNotPermitted, "not permitted"), nil
	})
	h := New(Config{}, authz.NewEngine(authz.NewChain(authz.Method{Name: "live-only", Backend: liveOnly}), nil))
	for _, tt := range []struct {
		path       string
		wantStatus int
		wantReason string
	}{
		{"live/cam", 200, "allowed"},
		{"live/../admin", 403, authz.ReasonInvalidPath},
		{"live/../../etc", 403, authz.ReasonInvalidPath},
	} {
		for _, action := range []string{"publish", "read"} {
			asked = nil
			body := `{"ip":"127.0.0.1","user":"alice","password":"secret","action":"` + action + `","path":"` + tt.path + `","protocol":"rtsp","id":null}`
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/mediamtx", strings.NewReader(body)))
			var got reply
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s %s: reply %q: %v", action, tt.path, w.Body, err)
			}
			if w.Code != tt.wantStatus || got.Reason != tt.wantReason || got.Allowed != (tt.wantStatus == 200) {
				t.Errorf("%s %s: got %d %q allowed=%v, want %d %q", action, tt.path, w.Code, got.Reason, got.Allowed, tt.wantStatus, tt.wantReason)
			}
			if tt.wantStatus != 200 && len(asked) != 0 {
				t.Errorf("%s %s: the backend was asked about %q, want refused before any method", action, tt.path, asked)
			}
		}
	}
}
