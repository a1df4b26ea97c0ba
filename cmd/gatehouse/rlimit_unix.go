//go:build unix

package main

import "syscall"

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit where allowed (the Go runtime
// usually has already) and returns the soft limit in force, or 0 if it cannot be read.
func raiseFDLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			r = want
		}
	}
	if r.Cur > 1<<30 { // RLIM_INFINITY
		return 1 << 30
	}
	return int(r.Cur)
}
