//go:build !unix

package main

// raiseFDLimit has no file descriptor limit to read here: 0 (sizeLimits assumes 4096).
func raiseFDLimit() int { return 0 }
