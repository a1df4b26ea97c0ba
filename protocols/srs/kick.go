package srs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"gatehouse/authz/conf"
	"gatehouse/authz/live"
)

// errClientNotFound is SRS's ERROR_RTMP_CLIENT_NOT_FOUND: the client is gone.
const errClientNotFound = 2049

// Kicker ends SRS sessions through SRS's HTTP API: DELETE /api/v1/clients/<client_id> (with the
// http_api auth's Basic credentials when configured). It implements revoke.Kicker.
type Kicker struct {
	api    conf.Endpoint
	client *http.Client
	gone   error
}

// NewKicker returns a Kicker calling api with client (nil: a client with a 5 s timeout); gone is
// the error a vanished client wraps (revoke.ErrGone).
func NewKicker(api conf.Endpoint, client *http.Client, gone error) *Kicker {
	return &Kicker{api: api, client: client, gone: gone}
}

// Kick deletes the client of s. The registry's session id is SRS's client_id, prefixed by
// "server_id/" when SRS sent one (Hook.SessionID); the prefix is removed. SRS answers HTTP 200
// with a JSON code: 0 is done, 2049 (client not found) means it is gone.
func (k *Kicker) Kick(ctx context.Context, s live.Session) error {
	id := s.ID
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	if id == "" {
		return fmt.Errorf("srs: kick: session has no client id")
	}
	status, body, err := k.api.Call(ctx, k.client, http.MethodDelete, "/api/v1/clients/"+url.PathEscape(id))
	switch {
	case err != nil:
		return fmt.Errorf("srs: kick: %w", err)
	case status == http.StatusNotFound:
		return fmt.Errorf("srs: kick: %w", k.gone)
	case status/100 != 2:
		return fmt.Errorf("srs: kick: SRS answered %d %s", status, http.StatusText(status))
	}
	var reply struct {
		Code *int `json:"code"`
	}
	if err := json.Unmarshal(body, &reply); err != nil || reply.Code == nil {
		return fmt.Errorf("srs: kick: SRS's answer has no code")
	}
	switch *reply.Code {
	case 0:
		return nil
	case errClientNotFound:
		return fmt.Errorf("srs: kick: %w", k.gone)
	}
	return fmt.Errorf("srs: kick: SRS answered code %d", *reply.Code)
}
