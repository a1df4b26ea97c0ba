package ome

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

var (
	errGone        = errors.New("gone")
	errUnsupported = errors.New("unsupported")
)

// TestKickerRequests: the exact request OME's REST API documents for deleting a stream
// (DELETE /v1/vhosts/<vhost>/apps/<app>/streams/<stream>, Basic base64(AccessToken)), its
// answers (200 done, 404 gone, others retried), and a viewer, which OME cannot end.
func TestKickerRequests(t *testing.T) {
	var got []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u+":"+p != "ome-access:token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got = append(got, r.Method+" "+r.URL.EscapedPath())
		switch r.URL.Path {
		case "/v1/vhosts/default/apps/app/streams/alice":
			_, _ = w.Write([]byte(`{"statusCode":200,"message":"OK"}`))
		case "/v1/vhosts/default/apps/app/streams/broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer api.Close()
	k := NewKicker(conf.Endpoint{URL: api.URL, User: "ome-access", Password: "token"}, "", api.Client(), errGone, errUnsupported)
	tests := []struct {
		name string
		s    live.Session
		want error // nil: done; errGone, errUnsupported, or errOther
	}{
		{"publisher", live.Session{Source: Source, Path: "app/alice", Publish: true}, nil},
		{"gone", live.Session{Source: Source, Path: "app/ended", Publish: true}, errGone},
		{"viewer", live.Session{Source: Source, Path: "app/alice"}, errUnsupported},
		{"server error", live.Session{Source: Source, Path: "app/broken", Publish: true}, errOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k.Kick(context.Background(), tt.s)
			switch {
			case tt.want == nil && err != nil, tt.want == errOther && (err == nil || errors.Is(err, errGone)),
				tt.want != nil && tt.want != errOther && !errors.Is(err, tt.want):
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	if len(got) != 3 || got[0] != "DELETE /v1/vhosts/default/apps/app/streams/alice" {
		t.Errorf("requests: got %q, want the DELETE of app/alice first and no request for the viewer", got)
	}
}

var errOther = errors.New("any other error")
