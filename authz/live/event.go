// Package live keeps the registry of live streams and viewer sessions, fed by every adapter's
// start/stop events and by the SFU, and read by the API, the UI and go-live notifications.
package live

import "time"

// EventType says what happened to a stream or a session.
type EventType uint8

// Event types. Published/Unpublished are about a stream's publisher; Joined/Left about a reader.
// Alive refreshes a session's last-seen time (nginx-rtmp on_update, OME re-admission).
const (
	Published EventType = iota + 1
	Unpublished
	Joined
	Left
	Alive
)

// Event is one report from an adapter or the SFU. Every field but Type, Path and Source is
// optional. Events are idempotent: a repeated Published or Unpublished for the same Session
// changes nothing, so servers that duplicate or reorder callbacks keep the registry consistent
// (Registry.Record lists the rules). Path must be the public path (after Decision.Rename), never
// a secret stream key: the registry's API and notifications show it.
type Event struct {
	Type     EventType
	Path     string    // stream path, e.g. "live/alice"
	Source   string    // who reports it: "nginx-rtmp", "ome", "srs", "mediamtx", "sfu"
	Session  string    // the server's id for the client session, if any
	Identity string    // the authorised identity, if known
	Protocol string    // rtmp, webrtc, srt, ...
	Remote   string    // client address
	Time     time.Time // zero: now
	// KeyID and KeyLabel name the stream key that admitted the session (authz.Decision.KeyID
	// and KeyLabel), never its secret, so a revocation can find the sessions it must end and
	// events can say which key went live.
	KeyID, KeyLabel string
}
