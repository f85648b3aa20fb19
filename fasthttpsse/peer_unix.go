//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package fasthttpsse

import (
	"net"
	"syscall"
)

// rawConn returns the socket under c, to watch for the client's departure,
// or nil when there is none.
func rawConn(c net.Conn) syscall.RawConn {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// waitGone waits, in the netpoller, until the socket is readable and then
// peeks without consuming. It returns nil when the client has closed the
// connection (end of stream, reset, or where hungUp can tell, a hang-up
// behind data that waits), errReadable when data waits and hungUp cannot
// tell, and the error of rc.Read when the read deadline passes first.
func waitGone(rc syscall.RawConn) error {
	var b [1]byte
	var result error
	wakes := 0
	err := rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
			return false // nothing yet: wait until the socket is readable
		case n == 0 || err != nil:
			return true // end of stream, or reset
		}
		// Data waits (a TLS close_notify, a pipelined request): the
		// socket stays readable, but the netpoller is edge-triggered and
		// wakes us again when more arrives, such as the client's FIN.
		switch hup, ok := hungUp(fd); {
		case hup:
			return true
		case !ok || wakes >= 8:
			result = errReadable
			return true
		}
		wakes++
		return false
	})
	if err != nil {
		return err
	}
	return result
}

// peerHungUp reports whether hungUp finds that the peer has shut its end
// of rc down.
func peerHungUp(rc syscall.RawConn) bool {
	hup := false
	_ = rc.Control(func(fd uintptr) { hup, _ = hungUp(fd) })
	return hup
}
