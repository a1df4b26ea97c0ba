package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// reloading is the message that starts a reload: systemd (253+) wants CLOCK_MONOTONIC with it,
// so it can tell this reload from an earlier one. READY=1 ends it.
func reloading() string {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return "RELOADING=1"
	}
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}
