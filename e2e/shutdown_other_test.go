//go:build !unix

package e2e

import "syscall"

// shutdownBoth shuts a socket down both ways.
func shutdownBoth(fd uintptr) error { return syscall.Shutdown(syscall.Handle(fd), syscall.SHUT_RDWR) }
