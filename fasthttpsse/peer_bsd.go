//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package fasthttpsse

// hungUp cannot tell on this system whether the peer has shut its end of
// the socket down while data waits unread.
func hungUp(uintptr) (hup, ok bool) { return false, false }
