package srs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

var errGone = errors.New("gone")

// TestKick: the exact request SRS's HTTP API expects (DELETE /api/v1/clients/<client_id>, Basic
// auth when http_api.auth is on; srs_app_http_api.cpp SrsGoApiClients), answered with a JSON code:
// 0 done, 2049 (client not found) gone, anything else an error to retry.
func TestKick(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "srs-pass" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got = append(got, r.Method+" "+r.URL.Path)
		switch r.URL.Path {
		case "/api/v1/clients/k3j9q1":
			_, _ = w.Write([]byte(`{"code":0}`))
		case "/api/v1/clients/gone1":
			_, _ = w.Write([]byte(`{"code":2049}`))
		default:
			_, _ = w.Write([]byte(`{"code":1000}`))
		}
	}))
	defer srv.Close()
	k := NewKicker(conf.Endpoint{URL: srv.URL, User: "admin", Password: "srs-pass"}, srv.Client(), errGone)
	for _, tt := range []struct {
		id, want string
		wantErr  error
		fails    bool
	}{
		{"vid-x/k3j9q1", "DELETE /api/v1/clients/k3j9q1", nil, false}, // server_id prefix removed
		{"k3j9q1", "DELETE /api/v1/clients/k3j9q1", nil, false},
		{"gone1", "DELETE /api/v1/clients/gone1", errGone, true},
		{"other", "DELETE /api/v1/clients/other", nil, true},
	} {
		got = nil
		err := k.Kick(context.Background(), live.Session{Source: Source, ID: tt.id})
		if (err != nil) != tt.fails || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
			t.Errorf("%s: got %v, want error %v (fails %v)", tt.id, err, tt.wantErr, tt.fails)
		}
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: got %v, want %s", tt.id, got, tt.want)
		}
	}
	bad := NewKicker(conf.Endpoint{URL: srv.URL}, srv.Client(), errGone)
	if err := bad.Kick(context.Background(), live.Session{ID: "k3j9q1"}); err == nil || errors.Is(err, errGone) {
		t.Errorf("no credentials: got %v, want an error to retry", err)
	}
}
