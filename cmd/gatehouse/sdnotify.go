package main

import (
	"fmt"
	"net"
	"strings"
)

// sdNotifier tells systemd about the service's state (sd_notify(3), for Type=notify units) by
// sending datagrams to the unix socket named by $NOTIFY_SOCKET. Its zero value, the one without
// a socket (not started by systemd), does nothing. It starts no goroutines and holds no socket
// between messages.
type sdNotifier struct {
	addr *net.UnixAddr // nil: not under systemd
}

// newSDNotifier returns the notifier for socket, the value of $NOTIFY_SOCKET: a path, or an
// abstract socket name starting with '@' (the net package maps it to a leading NUL byte). Other
// forms (vsock: addresses) are not supported and give the zero value.
func newSDNotifier(socket string) sdNotifier {
	if socket == "" || !(strings.HasPrefix(socket, "/") || strings.HasPrefix(socket, "@")) {
		return sdNotifier{}
	}
	return sdNotifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}
}

// notify sends one state message such as "READY=1". An error (systemd gone, socket full) is the
// caller's to log; the service runs on either way.
func (n sdNotifier) notify(state string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
