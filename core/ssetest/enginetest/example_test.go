package enginetest_test

import (
	"net"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest/enginetest"
)

// An engine's own test runs the suite: it gives every check a namespace
// on the engine's server, and every simulated process a connection the
// suite can break. sseredis's engine_test.go is a complete one, on one
// Redis and on three.
func Example() {
	// In the engine's package: func TestEngine(t *testing.T) {
	var t *testing.T
	enginetest.Run(t, enginetest.Engine{
		NewBus: func(t *testing.T) enginetest.Bus {
			// A namespace of the check's own, removed at its end: a
			// random key prefix, stream or subject name.
			return &myBus{prefix: "test-" + t.Name()}
		},
	})
}

// myBus is one check's namespace on the engine's server.
type myBus struct{ prefix string }

// NewNode connects a new process through a TCP proxy of its own, so that
// Down and Up can cut it off, and names its connections, so that Kill can
// find them on the server.
func (b *myBus) NewNode(t *testing.T, history int) enginetest.Node {
	p := startProxy(t)
	return &myNode{proxy: p, store: newStore(t, p.Addr(), b.prefix, history)}
}

// LoseData deletes everything under the prefix, as a flush would.
func (b *myBus) LoseData(t *testing.T) bool { return true }

type myNode struct {
	proxy *proxy
	store sse.Broadcaster
}

func (n *myNode) Store() sse.Broadcaster { return n.store }

// Kill asks the server to close the process's connections (Redis:
// CLIENT KILL; NATS: kick the connection through the monitoring API).
func (n *myNode) Kill(t *testing.T) {}

// Down closes the proxy's connections and stops accepting; Up listens
// again on the same address.
func (n *myNode) Down(t *testing.T) { n.proxy.down() }
func (n *myNode) Up(t *testing.T)   { n.proxy.up() }

// What an engine's test has of its own; here, stubs.
type proxy struct{ net.Listener }

func (p *proxy) down() {}
func (p *proxy) up()   {}

func startProxy(t *testing.T) *proxy { return &proxy{} }

func newStore(t *testing.T, addr net.Addr, prefix string, history int) sse.Broadcaster { return nil }
