// Package sse serves Server-Sent Events: streams of events that browsers
// read with EventSource.
//
// # Events
//
// An Event has an ID, a Type, Data and optionally a Retry hint or a Comment.
// AppendEvent writes its wire form, exactly as the HTML standard's parser
// expects it: every line of Data is its own "data" field, CR, LF and CRLF
// all count as line breaks, an empty payload still dispatches, and a payload
// that ends with a line break keeps it. Fields that cannot be sent safely (a
// line break or NUL in an ID or Type, a line break in a Comment, invalid
// UTF-8, a negative Retry) are an error, never bytes on the wire.
//
// # Hub
//
// A Hub fans events out by topic. Publish hands an event to the Store, which
// gives it its ID, encodes it once, and appends the same bytes to the queue
// of every subscriber of the topic. It never waits for a client and never
// writes to a socket: each stream's own handler goroutine takes everything
// queued for it and sends it in one write and one flush. A queue is bounded
// in events and bytes; a client that falls that far behind is disconnected
// (it reconnects and resumes, see below) or, with SlowConsumerDropOldest, loses the
// oldest events and is told so.
//
// Every write has a deadline, so a client that stops reading is cut off
// without holding anything up, and http.Server.WriteTimeout does not end
// healthy streams. A stream that has been silent for HeartbeatInterval gets a
// comment, which keeps proxies from closing it and reveals dead peers; one
// ticker per hub drives all heartbeats.
//
// # Streams
//
// Hub.Handler returns the http.Handler for a route. It picks each request's
// topics with HandlerOptions.Topics, which can also turn a request away
// (Refuse, TryLater), sends the response head at once, and then streams.
// Hub.Shutdown ends every stream with a retry hint and waits for the
// handlers, so that http.Server.Shutdown can return.
//
// # Replay
//
// The Store keeps recent events, numbering each topic's in order (Seq). An
// ID names a stream's place in that history: the Store's epoch, a name for
// its lifetime, and a Seq, as in "3f9a0c1e-42". The MemoryStore numbers all
// topics in one sequence, so one Seq is a place in every topic; a store
// that numbers each topic on its own (sseredis) gives a stream of several
// topics IDs with a Seq per topic, as in "5f0c2a9e81d4-42.7", and resets
// such a stream when it comes back with one Seq (an ID of some other
// stream). A client treats IDs as opaque. A client that reconnects sends the last ID it saw in the
// Last-Event-ID header (or, on its first connection, in the lastEventId
// query parameter) and gets every event of its topics after that one, then
// the live events, with no gap and no duplicate, even while events are being
// published. A stream opened without an ID is given its position right away
// ("id" without data, which sets the client's last ID and dispatches
// nothing), so even a stream that breaks before its first event resumes
// without loss.
//
// When the events a client missed cannot be replayed, because its ID is
// from an earlier process lifetime, is unknown or malformed, or names events
// the Store has already dropped, the stream starts with a reset event
// (type "sse-reset", see Options.ResetEventType) whose data says why, and
// continues with live events. A client should reload its state when it sees
// one. No stream ever loses events silently.
//
// The default Store keeps each topic's recent events in memory
// (NewMemoryStore). Store is an interface, so that a shared store lets any
// process resume any client.
package sse
