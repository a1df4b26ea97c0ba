package nginxrtmp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

// Kicker drops nginx-rtmp sessions at once through nginx-rtmp's control module
// (`rtmp_control all;` in an http location), instead of at the next on_update:
// GET <control>/drop/publisher|subscriber?app=<app>&name=<name>&clientid=<id>. It implements
// revoke.Kicker. Without it, a revoked key's session ends at its next on_update.
type Kicker struct {
	control conf.Endpoint
	client  *http.Client
	gone    error
}

// NewKicker returns a Kicker calling control (the URL of the location with rtmp_control, e.g.
// http://127.0.0.1:8080/control) with client (nil: a 5 s timeout); gone is the error a vanished
// session wraps (revoke.ErrGone).
func NewKicker(control conf.Endpoint, client *http.Client, gone error) *Kicker {
	return &Kicker{control: control, client: client, gone: gone}
}

// Kick drops s. The registry's id is "<clientid>@<nginx address>" and its path the public
// "<app>/<name>" (after a stream key's rename, the name nginx-rtmp uses). nginx-rtmp answers
// 200 with the number of dropped sessions, "0" when none matched (the session is gone).
func (k *Kicker) Kick(ctx context.Context, s live.Session) error {
	clientID, _, _ := strings.Cut(s.ID, "@")
	app, name, ok := strings.Cut(s.Path, "/")
	if clientID == "" || !ok {
		return fmt.Errorf("nginxrtmp: kick: session has no client id or app/name")
	}
	kind := "subscriber"
	if s.Publish {
		kind = "publisher"
	}
	q := url.Values{"app": {app}, "name": {name}, "clientid": {clientID}}
	status, body, err := k.control.Call(ctx, k.client, http.MethodGet, "/drop/"+kind+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("nginxrtmp: kick: %w", err)
	}
	if status/100 != 2 {
		return fmt.Errorf("nginxrtmp: kick: control answered %d %s", status, http.StatusText(status))
	}
	if strings.TrimSpace(string(body)) == "0" {
		return fmt.Errorf("nginxrtmp: kick: %w", k.gone)
	}
	return nil
}
