package sfubench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// naivePLIInterval is how often the naive forwarder asks publishers for a keyframe, as pion's
// sfu-ws example does.
const naivePLIInterval = 3 * time.Second

// Naive is the baseline forwarder, built the way pion's sfu-ws example forwards media but
// speaking WHIP/WHEP: pion's default codecs and default interceptors (NACK responder copies,
// RTCP reports, TWCC), one TrackLocalStaticRTP per publisher track shared by every viewer, and
// one goroutine per publisher track that reads, strips header extensions and writes to all
// viewers serially; simulcast layers are separate tracks and a viewer gets the first to
// arrive. Viewers' RTCP is never read. A PLI goes to the publisher when a viewer
// joins and every 3 s. It uses the same ICE setup as gatehouse's SFU (one UDP mux, loopback
// candidates) so that only forwarding differs. There is no authentication: it is a baseline.
//
// Create it with NewNaive, serve Handler and call Close, which closes every PeerConnection and
// waits for the goroutines.
type Naive struct {
	api *webrtc.API
	mux ice.UDPMux
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	pcs      map[string]*webrtc.PeerConnection
	tracks   map[string][]*webrtc.TrackLocalStaticRTP // by stream path
	pubPLI   map[string]func()                        // sends a PLI to the path's publisher
	wg       sync.WaitGroup
	stop     chan struct{}
	stopOnce sync.Once
}

// NewNaive builds the baseline forwarder and its UDP mux (ephemeral port on every address,
// loopback included). log may be nil.
func NewNaive(log *slog.Logger) (*Naive, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	// Simulcast publishers need the mid and RID header extensions to be told apart; the
	// forwarder then treats each layer as a track of its own (a viewer gets the first one).
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	mux, err := ice.NewMultiUDPMuxFromPort(0, ice.UDPMuxFromPortWithLoopback())
	if err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	n := &Naive{
		api:    webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)),
		mux:    mux,
		log:    log,
		pcs:    map[string]*webrtc.PeerConnection{},
		tracks: map[string][]*webrtc.TrackLocalStaticRTP{},
		pubPLI: map[string]func(){},
		stop:   make(chan struct{}),
	}
	n.wg.Go(n.keyframeTicker)
	return n, nil
}

// Handler serves POST /whip/{path...}, POST /whep/{path...} and DELETE on the returned
// session URLs.
func (n *Naive) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip/{path...}", n.handlePublish)
	mux.HandleFunc("POST /whep/{path...}", n.handleView)
	mux.HandleFunc("DELETE /session/{id}", n.handleDelete)
	return mux
}

func (n *Naive) keyframeTicker() {
	t := time.NewTicker(naivePLIInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.mu.Lock()
		plis := make([]func(), 0, len(n.pubPLI))
		for _, f := range n.pubPLI {
			plis = append(plis, f)
		}
		n.mu.Unlock()
		for _, f := range plis {
			f()
		}
	}
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func readOffer(w http.ResponseWriter, r *http.Request) (string, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil || len(b) == 0 {
		http.Error(w, "bad offer", http.StatusBadRequest)
		return "", false
	}
	return string(b), true
}

// answer applies the offer, waits for gathering (bounded) and writes the 201 reply.
func (n *Naive) answer(w http.ResponseWriter, r *http.Request, id string, pc *webrtc.PeerConnection, offer string) bool {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		http.Error(w, "offer not accepted", http.StatusBadRequest)
		return false
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		http.Error(w, "no answer", http.StatusBadRequest)
		return false
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		http.Error(w, "no answer", http.StatusBadRequest)
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/session/"+id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, pc.LocalDescription().SDP)
	return true
}

// register keeps pc for Close and DELETE; it refuses (false) after Close.
func (n *Naive) register(id string, pc *webrtc.PeerConnection) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.pcs[id] = pc
	return true
}

func (n *Naive) handlePublish(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("path")
	offer, ok := readOffer(w, r)
	if !ok {
		return
	}
	pc, err := n.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, "no peer connection", http.StatusInternalServerError)
		return
	}
	id := newID()
	if !n.register(id, pc) {
		_ = pc.Close()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, remote.ID(), remote.StreamID())
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return
		}
		n.tracks[path] = append(n.tracks[path], local)
		if remote.Kind() == webrtc.RTPCodecTypeVideo {
			ssrc := uint32(remote.SSRC())
			n.pubPLI[path] = func() { _ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}) }
		}
		n.wg.Add(1)
		n.mu.Unlock()
		defer n.wg.Done()
		defer n.removeTrack(path, local)
		buf := make([]byte, 1500)
		pkt := &rtp.Packet{}
		for {
			i, _, err := remote.Read(buf)
			if err != nil {
				return
			}
			if err := pkt.Unmarshal(buf[:i]); err != nil {
				return
			}
			pkt.Extension = false
			pkt.Extensions = nil
			if err := local.WriteRTP(pkt); err != nil {
				return
			}
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			_ = pc.Close()
		}
	})
	if !n.answer(w, r, id, pc, offer) {
		n.drop(id)
	}
}

func (n *Naive) removeTrack(path string, t *webrtc.TrackLocalStaticRTP) {
	n.mu.Lock()
	defer n.mu.Unlock()
	list := n.tracks[path]
	for i, x := range list {
		if x == t {
			n.tracks[path] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(n.tracks[path]) == 0 {
		delete(n.tracks, path)
		delete(n.pubPLI, path)
	}
}

func (n *Naive) handleView(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("path")
	offer, ok := readOffer(w, r)
	if !ok {
		return
	}
	n.mu.Lock()
	tracks := append([]*webrtc.TrackLocalStaticRTP(nil), n.tracks[path]...)
	pli := n.pubPLI[path]
	n.mu.Unlock()
	if len(tracks) == 0 {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "not live", http.StatusConflict)
		return
	}
	pc, err := n.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, "no peer connection", http.StatusInternalServerError)
		return
	}
	id := newID()
	if !n.register(id, pc) {
		_ = pc.Close()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	for _, t := range tracks {
		if _, err := pc.AddTrack(t); err != nil {
			n.drop(id)
			http.Error(w, "add track", http.StatusInternalServerError)
			return
		}
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			_ = pc.Close()
		}
	})
	if !n.answer(w, r, id, pc, offer) {
		n.drop(id)
		return
	}
	if pli != nil {
		pli()
	}
}

func (n *Naive) drop(id string) {
	n.mu.Lock()
	pc := n.pcs[id]
	delete(n.pcs, id)
	n.mu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
}

func (n *Naive) handleDelete(w http.ResponseWriter, r *http.Request) {
	n.drop(r.PathValue("id"))
	w.WriteHeader(http.StatusOK)
}

// Close closes every PeerConnection and the UDP mux and waits for the forwarding goroutines.
// Idempotent.
func (n *Naive) Close() error {
	n.stopOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		pcs := n.pcs
		n.pcs = map[string]*webrtc.PeerConnection{}
		n.mu.Unlock()
		close(n.stop)
		for _, pc := range pcs {
			_ = pc.Close()
		}
		n.wg.Wait()
		_ = n.mux.Close()
	})
	return nil
}
