package fasthttpsse

import "golang.org/x/sys/unix"

// hungUp reports whether the peer has shut its end of the socket down,
// even while data it sent before waits unread (POLLRDHUP); ok is true.
func hungUp(fd uintptr) (hup, ok bool) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0, err == nil
}
