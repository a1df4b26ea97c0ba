package ome

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

// DefaultVhost is Config.Vhost's default: the virtual host name of OME's sample Server.xml.
const DefaultVhost = "default"

// Kicker ends OvenMediaEngine publish sessions through OME's REST API:
// DELETE /v1/vhosts/<vhost>/apps/<app>/streams/<stream>, which deletes the stream and
// "terminates the ingress connection" (docs/rest-api/v1/virtualhost/application/stream). OME's
// API authenticates with Basic base64(<AccessToken>): write the AccessToken "user:password" as
// the endpoint's user and password. OME has no API to end one viewer's session: a viewer ends at
// its grant's lifetime (sent on admission) and is decided again when it reconnects, so Kick
// answers errUnsupported for one. It implements revoke.Kicker.
type Kicker struct {
	api         conf.Endpoint
	vhost       string
	client      *http.Client
	gone        error
	unsupported error
}

// NewKicker returns a Kicker calling api for vhost ("" : DefaultVhost) with client (nil: a 5 s
// timeout). gone is the error a vanished stream wraps (revoke.ErrGone), unsupported the one a
// viewer's session wraps (revoke.ErrUnsupported).
func NewKicker(api conf.Endpoint, vhost string, client *http.Client, gone, unsupported error) *Kicker {
	if vhost == "" {
		vhost = DefaultVhost
	}
	return &Kicker{api: api, vhost: vhost, client: client, gone: gone, unsupported: unsupported}
}

// Kick deletes the stream of publish session s (its path is OME's "<app>/<stream>", after a
// rename the new name). OME answers 200 when done and 404 when the stream is gone.
func (k *Kicker) Kick(ctx context.Context, s live.Session) error {
	if !s.Publish {
		return fmt.Errorf("ome: kick: %w: OME has no API to end a viewer's session; it ends at its grant's lifetime", k.unsupported)
	}
	app, stream, ok := strings.Cut(s.Path, "/")
	if !ok || app == "" || stream == "" {
		return fmt.Errorf("ome: kick: session path %q is not app/stream", s.Path)
	}
	status, _, err := k.api.Call(ctx, k.client, http.MethodDelete,
		"/v1/vhosts/"+url.PathEscape(k.vhost)+"/apps/"+url.PathEscape(app)+"/streams/"+url.PathEscape(stream))
	switch {
	case err != nil:
		return fmt.Errorf("ome: kick: %w", err)
	case status/100 == 2:
		return nil
	case status == http.StatusNotFound:
		return fmt.Errorf("ome: kick: %w", k.gone)
	}
	return fmt.Errorf("ome: kick: OME answered %d %s", status, http.StatusText(status))
}
