package sfu

// peerScope reports whether pion creates loggers of this scope for each PeerConnection (its ICE
// agent, packet mux, DTLS, SRTP, SCTP and the PeerConnection itself). Their warnings describe
// one peer's life, not the server's health: "Failed to ping without candidate pairs" while ICE
// starts, "Failed to accept RTP/RTCP stream is already closed" and "undeclaredMediaProcessor
// failed to open SrtpSession" when a session ends, a DTLS handshake cut short by a client that
// left. They come several per session (144 lines for 45 sessions in a benchmark run), while the
// SFU already logs each session's start and end with its reason, so they go to Debug. The
// process-wide scopes (the UDP and TCP muxes: "udpmux", "tcpmux") keep their warnings, and
// errors stay errors in every scope.
func peerScope(scope string) bool {
	switch scope {
	case "pc", "ice", "mux", "dtls", "DTLSTransport", "srtp", "sctp":
		return true
	}
	return false
}
