// Package loadgen is the load generator of the benchmarks: thousands of SSE
// client connections from one process, read by a few goroutines.
//
// Each worker goroutine owns an epoll instance (Linux), non-blocking
// sockets and one read buffer shared by all its connections; it parses in
// place only what the measurements need: the status line, chunked framing,
// each event's first "data" line ("<send time in unix ns> <sequence> ...")
// and the "id" field. A connection costs a few hundred bytes of generator
// memory and no goroutine.
//
// The generator measures per phase (see Gen.Mark): events delivered in a
// sequence range per connection, gaps and duplicates, latency (receive
// time minus send time) and the time each connection took to complete.
package loadgen

import "time"

// Config configures a Gen.
type Config struct {
	// Addr is the server, an IPv4 host:port (127.0.0.1:PORT).
	Addr string
	// Path is the request path. Default "/events".
	Path string
	// Workers is the number of epoll goroutines. Default 2.
	Workers int
	// SourceAddrs spreads connections over the source addresses
	// 127.0.0.1 .. 127.0.0.SourceAddrs, each with its own ephemeral ports.
	// Default 1 (the kernel's choice).
	SourceAddrs int
	// MaxInflight bounds connects not yet answered with a response head,
	// per worker. 0 means no bound: a connect storm.
	MaxInflight int
	// ReadBuffer is the size of each worker's read buffer. Default 16 KiB.
	ReadBuffer int
}

func (c *Config) setDefaults() {
	if c.Path == "" {
		c.Path = "/events"
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	c.SourceAddrs = min(max(c.SourceAddrs, 1), 254)
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 16 << 10
	}
}

// Stats are a generator's lifetime counters.
type Stats struct {
	Conns      int   // connections created (Connect)
	Open       int   // open now, response head received
	Opened     int64 // ever answered with 200
	Failed     int64 // connect error, or closed or refused before a 200 head
	Abandoned  int64 // closed by the generator (CloseConns, CloseAll) before a head
	PeerClosed int64 // closed by the server after a 200 head
	LastOpenAt int64 // unix ns of the newest 200 head
}

// Phase is what the generator saw since the last Mark.
type Phase struct {
	MarkAt       int64 // unix ns of the Mark
	Marked       int   // connections marked
	Complete     int   // of which received what they need
	Closed       int   // of which closed before that
	Expected     int64 // events in range, summed over marked connections
	Delivered    int64 // in-range events received (each at most once)
	Losses       int64 // Expected - Delivered
	Gaps         int64 // sequence numbers skipped on a connection (any range)
	Dups         int64 // events at or below a connection's newest sequence
	Other        int64 // events without the "<ts> <seq>" data (reset events...)
	FirstEventAt int64 // unix ns of the first and last in-range event
	LastEventAt  int64
	Latency      Hist // receive minus send time of in-range events
	Completion   Hist // per marked connection: Mark to its last needed event
}

// Expectation is what one connection was expected to receive (Gen.Expect)
// and what it did.
type Expectation struct {
	Expected int    // events expected
	Got      int    // of those, received
	Skipped  int    // expected events passed over: a later expected one came first
	Odd      int    // events received that were not expected (or came again)
	Resets   int    // reset events received
	Reason   string // the first reset's reason
	Done     bool   // every expected event was received
	// Latency is the time from the connect to the last expected event,
	// when Done.
	Latency time.Duration
	Open    bool // the stream is open now
}
