//go:build !linux

package main

// reloading is the message that starts a reload; systemd runs only on Linux, so elsewhere it
// carries no clock.
func reloading() string { return "RELOADING=1" }
