// Package enginetest is the conformance suite of shared-store engines: an
// sse.Broadcaster that several processes share (sseredis on Redis, an
// engine on NATS, or your own) runs Run from its tests, and the suite
// checks, through real hubs, HTTP streams and the engine's real server,
// that it keeps the guarantees hubs rely on:
//
//   - every process delivers each topic's events in one order, the order
//     of the topic's history, whatever process published them;
//   - a client whose process dies resumes on another and gets exactly the
//     history of its topics: nothing missed, nothing twice;
//   - a process cut off from the bus for longer than the history tells its
//     clients (the reset event), never leaves a silent gap;
//   - a process whose connection is killed catches up without loss;
//   - Publish fails, and says so, while the bus is unreachable;
//   - a listener that falls far behind loses nothing;
//   - a process receives only the topics it follows;
//   - when the bus loses its data, clients that resume are reset.
//
// The engine gives the suite a Bus per check (a namespace of its own on
// the engine's server) and, per simulated process, a Node whose fault
// hooks cut that process's connections. The hooks are all the suite knows
// of the engine: see Engine, Bus and Node, and the example.
//
// The package uses only the standard library and ssekit's core.
package enginetest

import (
	"testing"

	"github.com/ssekit/ssekit/core/sse"
)

// Engine describes a shared-store engine to the suite.
type Engine struct {
	// NewBus returns a bus for one check: a namespace of its own on the
	// engine's server (a key prefix, a stream name), whose data is
	// removed at the end of t. Required.
	NewBus func(t *testing.T) Bus

	// BehindEvents is how many events the "falls behind" check publishes
	// while a listener is stuck: more than the engine buffers for one
	// listener, so that it must drop what it buffered and read the
	// history. Default 10000.
	BehindEvents int
}

// A Bus is one check's namespace on the engine's server. Its nodes share
// it as the processes of one service would.
type Bus interface {
	// NewNode returns a new process's store on the bus, with a connection
	// of its own that the Node's hooks act on. history, when not 0, bounds
	// how many events each topic's history keeps (the check of an outage
	// longer than the history uses a small one); every node of a bus is
	// given the same. The node is closed at the end of t.
	NewNode(t *testing.T, history int) Node

	// LoseData makes the server lose what the bus holds, as a flush or a
	// restart without persistence would. Stores' connections may be cut
	// too. Checks that need it are skipped when it returns false (the
	// engine cannot do it).
	LoseData(t *testing.T) bool
}

// A Node is one process's store and the hooks that break its connection
// to the bus. The suite calls the hooks from the test's goroutine, never
// concurrently.
type Node interface {
	// Store returns the process's store. A hub made on it calls Listen,
	// Follow and Unfollow.
	Store() sse.Broadcaster

	// Kill cuts the process's connections to the server, as the server
	// does when it kills a client (Redis's CLIENT KILL) or a network
	// blip does: the store must reconnect by itself.
	Kill(t *testing.T)

	// Down makes the server unreachable from the process, until Up: its
	// connections are closed, and new ones fail.
	Down(t *testing.T)
	Up(t *testing.T)
}
