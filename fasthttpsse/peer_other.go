//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package fasthttpsse

import (
	"net"
	"syscall"
)

// rawConn returns nil: on this system the connection is not watched for a
// departed client, which is found by a failing write instead (at a
// heartbeat at the latest, usually the second after the client left).
func rawConn(net.Conn) syscall.RawConn { return nil }

func waitGone(syscall.RawConn) error { return errReadable }

func peerHungUp(syscall.RawConn) bool { return false }
