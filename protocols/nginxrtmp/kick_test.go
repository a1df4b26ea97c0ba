package nginxrtmp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

// TestKick: nginx-rtmp's control module request (GET .../drop/publisher|subscriber?app=&name=
// &clientid=), answered with the number of dropped sessions ("0": gone).
func TestKick(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
		if r.URL.Query().Get("clientid") == "9" {
			_, _ = w.Write([]byte("0"))
			return
		}
		_, _ = w.Write([]byte("1"))
	}))
	defer srv.Close()
	gone := errors.New("gone")
	k := NewKicker(conf.Endpoint{URL: srv.URL + "/control"}, srv.Client(), gone)
	if err := k.Kick(context.Background(), live.Session{ID: "7@127.0.0.1", Path: "live/alice", Publish: true}); err != nil {
		t.Fatal(err)
	}
	if want := "GET /control/drop/publisher?app=live&clientid=7&name=alice"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if err := k.Kick(context.Background(), live.Session{ID: "9@127.0.0.1", Path: "live/alice"}); !errors.Is(err, gone) {
		t.Errorf("got %v, want gone", err)
	}
	if want := "GET /control/drop/subscriber?app=live&clientid=9&name=alice"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
