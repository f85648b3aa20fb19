//go:build unix

package sse

import (
	"errors"
	"net"
	"syscall"
)

const detachSupported = true

// rawConn returns c's file descriptor access, if it has one.
func rawConn(c net.Conn) (syscall.RawConn, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	return raw, err == nil
}

// write writes as much of p as the socket takes now, without waiting: it
// returns fewer than len(p) bytes and no error when the socket is full.
func (d *detachedConn) write(p []byte) (n int, err error) {
	rerr := d.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, werr := syscall.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			switch {
			case werr == syscall.EINTR:
			case werr == syscall.EAGAIN:
				return true
			case werr != nil:
				err = werr
				return true
			case m == 0:
				err = errors.New("sse: write returned 0 bytes")
				return true
			}
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return n, err
}

// drain reads and drops what the peer sent and nobody read (at most
// 64 KiB), without waiting: closing a socket with unread bytes would reset
// the connection and could lose the last bytes written.
func (d *detachedConn) drain() {
	var buf [4096]byte
	_ = d.raw.Read(func(fd uintptr) bool {
		for range 16 {
			n, err := syscall.Read(int(fd), buf[:])
			if err == syscall.EINTR {
				continue
			}
			if n <= 0 || err != nil {
				break
			}
		}
		return true
	})
}

// waitPoller is the portable poller: while a socket is full, a goroutine
// waits for it to take bytes through the runtime's network poller. It
// does not notice a departed peer; a failing heartbeat does.
type waitPoller struct{}

func (waitPoller) add(*detachedConn) error { return nil }
func (waitPoller) remove(*detachedConn)    {}
func (waitPoller) close()                  {}

func (waitPoller) waitWritable(d *detachedConn) {
	go func() {
		first := true
		// The function runs at once and again each time the runtime's
		// poller finds the socket writable; it returns false to wait.
		_ = d.raw.Write(func(uintptr) bool {
			wait := first
			first = false
			return !wait
		})
		d.canWrite()
	}()
}
