package sfu

import (
	"encoding/json"
	"net/http"

	"github.com/pion/webrtc/v4"
)

// The layer resource of a WHEP session (/whep/session/{id}/layer): GET shows the simulcast
// layer the viewer follows and the ones it could; POST or PATCH with {"rid":"h"} pins a layer
// (the switch happens at that layer's next keyframe) and {"rid":"auto"} returns to automatic
// choice. Only the credential that created the session may use it, like DELETE.

// layerRel is the Link relation that advertises the layer resource (the WHEP draft's name).
const layerRel = "urn:ietf:params:whep:ext:core:layer"

// maxLayerBody bounds the body of a layer request.
const maxLayerBody = 1 << 10

// layerState is the layer resource's JSON.
type layerState struct {
	RID    string      `json:"rid"`    // the layer followed now ("" before the first packet or without simulcast)
	Target string      `json:"target"` // the layer being switched to (equal to rid when settled)
	Mode   string      `json:"mode"`   // "auto" or "pinned"
	Layers []layerJSON `json:"layers"` // from lowest to highest quality
}

type layerJSON struct {
	RID     string `json:"rid"`
	Bitrate int64  `json:"bitrate"` // measured, bit/s; 0 until measured
}

func layerLink(sess *session) string {
	return "</whep/session/" + sess.id + `/layer>; rel="` + layerRel + `"`
}

// validRID reports whether rid is an RFC 8851 rid-id of reasonable length.
func validRID(rid string) bool {
	if rid == "" || len(rid) > 32 {
		return false
	}
	for _, c := range rid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *SFU) handleLayer(w http.ResponseWriter, r *http.Request) {
	sess := s.lookup(w, r, KindRead)
	if sess == nil || !owns(w, r, sess) {
		return
	}
	var d *downTrack
	for _, x := range sess.downs {
		if x.slot.kind == webrtc.RTPCodecTypeVideo {
			d = x
		}
	}
	if d == nil {
		problem(w, http.StatusNotFound, "the session has no video")
		return
	}
	if r.Method != http.MethodGet {
		var req struct {
			RID string `json:"rid"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLayerBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || !validRID(req.RID) {
			problem(w, http.StatusBadRequest, `the body must be {"rid":"<layer>"} or {"rid":"auto"}`)
			return
		}
		if req.RID != "auto" && d.slot.layer(req.RID) == nil {
			problem(w, http.StatusUnprocessableEntity, "the stream has no such layer")
			return
		}
		d.picker.setPin(req.RID)
		d.repick()
	}
	sel := d.sel.Load()
	st := layerState{RID: sel.cur, Target: sel.next, Mode: "auto", Layers: []layerJSON{}}
	if d.picker.pinned() != "" {
		st.Mode = "pinned"
	}
	for _, u := range d.slot.ordered() {
		st.Layers = append(st.Layers, layerJSON{RID: u.rid, Bitrate: u.bps.Load()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(st)
}
