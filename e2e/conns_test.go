package e2e

import (
	"net"
	"net/http"
	"sync"
)

// connTracker follows a test server's connections (set track as its
// http.Server.ConnState) so that a test can cut them, as a network failure
// or a crashed proxy would. The zero value is ready to use.
type connTracker struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{} // server-side connections serving a request
}

func (ct *connTracker) track(c net.Conn, state http.ConnState) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if state != http.StateActive {
		delete(ct.conns, c)
		return
	}
	if ct.conns == nil {
		ct.conns = make(map[net.Conn]struct{})
	}
	ct.conns[c] = struct{}{}
}

// dropConns closes the server side of every connection that is serving a
// request and returns how many it closed.
func (ct *connTracker) dropConns() int {
	ct.mu.Lock()
	conns := make([]net.Conn, 0, len(ct.conns))
	for c := range ct.conns {
		conns = append(conns, c)
		delete(ct.conns, c)
	}
	ct.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}
