package sse

import (
	"context"
	"errors"
	"time"
)

// Entry is an event as a Store recorded it.
type Entry struct {
	// Topic is the topic the event was published on.
	Topic string
	// Seq is the entry's place in the store's single order across all
	// topics. Later entries have larger Seq. Seq is never 0.
	Seq uint64
	// Time is when the store recorded the entry.
	Time time.Time
	// Event is the event, with ID set to the store's name for Seq.
	Event Event

	// frame, when set, is the event's wire form, ID included, as the
	// store keeps it. It is shared and never modified. The hub sends it
	// as it is instead of encoding Event again.
	frame []byte
}

// A Store records published events so that clients that reconnect can be
// sent what they missed. It assigns every event its ID, and it orders all
// events of all topics in one sequence, which is what makes the hand-over
// from replay to live delivery exact for clients of several topics.
//
// The MemoryStore of NewMemoryStore is the default. A Store must be safe
// for concurrent use.
type Store interface {
	// Append records ev on topic and returns the entry, whose Seq is greater
	// than that of every entry recorded before, and whose Event.ID names
	// that Seq in the store's present epoch.
	//
	// Append must not keep ev.Data or topic beyond the call; copy what it
	// keeps. The caller may reuse their memory once Append returns (a
	// server's request buffers, for example).
	Append(ctx context.Context, topic string, ev Event) (Entry, error)

	// After returns, oldest first, at most limit entries of the given topics
	// whose Seq is greater than after. It returns ErrEvicted when entries
	// of those topics with Seq greater than after are no longer kept (the
	// caller may have missed some), and ErrUnknownID when after is beyond
	// the newest entry. A store that cannot tell which topics lost entries
	// may answer ErrEvicted when any did, but never a history with a gap.
	// after == 0 means from the oldest entry ever recorded.
	After(ctx context.Context, after uint64, topics []string, limit int) ([]Entry, error)

	// Position returns the Seq that id names. It returns ErrUnknownID for
	// anything that is not an ID of this store's present epoch: malformed
	// text, an ID from an earlier process lifetime or from another store.
	Position(ctx context.Context, id string) (uint64, error)

	// ID returns the ID that names seq in the present epoch. ID(0) names the
	// position before the first entry.
	ID(seq uint64) string
}

var (
	// ErrUnknownID means an event ID that the store did not issue in its
	// present epoch. The hub answers it with a reset event.
	ErrUnknownID = errors.New("sse: unknown event id")

	// ErrEvicted means that events after the given position were dropped
	// from the store's window. The hub answers it with a reset event.
	ErrEvicted = errors.New("sse: events after this id were evicted")
)

// A Broadcaster is a Store shared by several processes that also carries
// what is appended to every hub that uses it: a hub whose Store is a
// Broadcaster delivers to its clients what Listen hands it, its own
// publishes included, instead of delivering them directly. That is how
// events published on one instance reach clients on every other, in the
// same order everywhere (sseredis implements it on Redis). It also carries
// signals between hubs (Hub.EndStreams ends streams on every instance).
type Broadcaster interface {
	Store

	// Newest returns the Seq of the newest entry; NewHub calls it once, so
	// an unreachable store is an error at start.
	Newest(ctx context.Context) (uint64, error)

	// Listen hands l every entry appended after Seq after, by any process,
	// in Seq order and without gaps, and every signal sent, until ctx is
	// done; then it returns ctx's error. It rides out outages of the store
	// itself, catching up from what the store still holds; l.State is
	// called with a non-nil error when delivery stops and with nil when it
	// resumes. l's methods are never called concurrently.
	Listen(ctx context.Context, after uint64, l Listener) error

	// Signal hands msg to the Listener of every hub that shares the store,
	// this one included, at most once each. Signals are not recorded: a
	// hub that does not listen when one is sent never gets it.
	Signal(ctx context.Context, msg []byte) error
}

// A Listener receives what a Broadcaster carries. The hub is the Listener
// of its store; a Broadcaster implementation calls it.
type Listener interface {
	// Deliver hands over the next entry.
	Deliver(Entry)
	// State reports that delivery stopped (err says why; an error that
	// matches ErrEvicted means entries were lost) or resumed (nil).
	State(err error)
	// Signal hands over a message that a hub sent with
	// Broadcaster.Signal.
	Signal(msg []byte)
}
