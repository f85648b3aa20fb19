package ssenats_test

import (
	"testing"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
	"github.com/ssekit/ssekit/core/ssetest/enginetest"
)

// TestEngine runs the engine suite on NATS: each check on a stream and
// subject prefix of its own, each simulated process through a proxy of its
// own, which Kill, Down and Up act on.
func TestEngine(t *testing.T) {
	needNATS(t)
	enginetest.Run(t, enginetest.Engine{NewBus: func(t *testing.T) enginetest.Bus {
		return &natsBus{env: newEnv(t)}
	}})
}

// natsBus is a check's stream on the shared server.
type natsBus struct{ env *testEnv }

func (b *natsBus) NewNode(t *testing.T, history int) enginetest.Node {
	p := testkit.StartProxy(t, b.env.url[len("nats://"):])
	s := b.env.store(b.env.conn(p.Addr), ssenats.Options{MaxEventsPerTopic: history})
	return &natsNode{proxy: p, store: s}
}

// LoseData deletes the stream, as an operator, or a restart of a server
// that kept it in memory, would.
func (b *natsBus) LoseData(t *testing.T) bool {
	deleteStream(t, b.env)
	return true
}

// natsNode is one process, connected through its proxy.
type natsNode struct {
	proxy *testkit.Proxy
	store *ssenats.Store
}

func (n *natsNode) Store() sse.Broadcaster { return n.store }

// Kill closes the process's connection, as the server does when it drops
// a client: nats.go reconnects at once.
func (n *natsNode) Kill(*testing.T) { n.proxy.Kill() }
func (n *natsNode) Down(*testing.T) { n.proxy.Down() }
func (n *natsNode) Up(*testing.T)   { n.proxy.Up() }
