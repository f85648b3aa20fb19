package e2e

import (
	"net"
	"net/http"
	"sync"
	"syscall"
)

// connTracker follows a test server's connections (set track as its
// http.Server.ConnState) so that a test can cut them, as a network failure
// or a crashed proxy would. The zero value is ready to use.
type connTracker struct {
	mu sync.Mutex
	// conns are the server-side connections serving a request, each with
	// whether it was hijacked (a detached stream). A hijacked connection
	// stays here after its stream ended: net/http no longer reports on it.
	conns map[net.Conn]bool
}

func (ct *connTracker) track(c net.Conn, state http.ConnState) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if state != http.StateActive && state != http.StateHijacked {
		delete(ct.conns, c)
		return
	}
	if ct.conns == nil {
		ct.conns = make(map[net.Conn]bool)
	}
	ct.conns[c] = state == http.StateHijacked
}

// dropConns cuts the server side of every connection that is serving a
// request and returns how many it cut.
func (ct *connTracker) dropConns() int {
	ct.mu.Lock()
	conns := ct.conns
	ct.conns = nil
	ct.mu.Unlock()
	n := 0
	for c, hijacked := range conns {
		if cutConn(c, hijacked) {
			n++
		}
	}
	return n
}

// cutConn cuts a server-side connection as a crashed proxy or a network
// failure would. It reports whether it cut a hijacked connection that was
// still open, and true for any other.
//
// A connection that net/http serves is closed. A hijacked one belongs to
// the hub, which watches it with epoll: closing its descriptor behind the
// hub's back would silently take it out of the epoll set, and the hub
// would notice only at its next write, a heartbeat maybe seconds later.
// So it is shut down both ways instead, in one call (the hub closes the
// connection as soon as it sees a shutdown): the client sees the
// connection close (a FIN), and the hub's poller sees what it sees when
// the peer goes away (EPOLLRDHUP), and closes the connection itself.
func cutConn(c net.Conn, hijacked bool) bool {
	sc, ok := c.(syscall.Conn)
	if !hijacked || !ok {
		_ = c.Close()
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = shutdownBoth(fd) }); err != nil {
		return false // closed already
	}
	return serr == nil
}
