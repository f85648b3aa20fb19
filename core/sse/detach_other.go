//go:build !unix

package sse

import (
	"errors"
	"net"
	"syscall"
)

// Streams are not detached on systems other than Unix.
const detachSupported = false

func rawConn(net.Conn) (syscall.RawConn, bool) { return nil, false }

func (d *detachedConn) write([]byte) (int, error) {
	return 0, errors.New("sse: detached streams are not supported on this system")
}

func (d *detachedConn) drain() {}

func defaultPoller() (poller, error) {
	return nil, errors.New("sse: detached streams are not supported on this system")
}
