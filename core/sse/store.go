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
	// Seq is the entry's place in its topic's history: later entries of
	// the topic have larger Seq. Seq is never 0. Whether Seqs of different
	// topics compare depends on the store: the MemoryStore numbers all
	// topics in one sequence, others may number each topic on its own.
	Seq uint64
	// Time is when the store recorded the entry.
	Time time.Time
	// Event is the event, with ID set to its name: the store's epoch and
	// Seq (see Hub.Publish).
	Event Event

	// frame, when set, is the event's wire form, ID included, as the
	// store keeps it. It is shared and never modified. The hub sends it
	// as it is instead of encoding Event again.
	frame []byte
}

// A Store records published events so that clients that reconnect can be
// sent what they missed. It numbers each topic's events in order (Seq);
// the hub names a stream's place in the history, one Seq per topic of the
// stream, in the IDs it sends (see the package documentation).
//
// The MemoryStore of NewMemoryStore is the default. A Store must be safe
// for concurrent use.
type Store interface {
	// Append records ev on topic and returns the entry, whose Seq is
	// greater than that of every entry recorded on topic before.
	//
	// Append must not keep ev.Data or topic beyond the call; copy what it
	// keeps. The caller may reuse their memory once Append returns (a
	// server's request buffers, for example).
	Append(ctx context.Context, topic string, ev Event) (Entry, error)

	// After returns at most limit entries that follow the positions
	// after: for each i, the entries of topics[i] whose Seq is greater than
	// after[i], oldest first; entries of different topics in the store's
	// order (by Seq, when the store numbers all topics in one sequence).
	// It returns ErrEvicted when some of those entries are no longer kept
	// (a store that cannot tell which topics lost entries may answer
	// ErrEvicted when any did, but never a history with a gap), and
	// ErrUnknownID when a position is beyond the newest Seq the store may
	// have issued for its topic. A position of 0 is before the topic's
	// first entry.
	After(ctx context.Context, topics []string, after []uint64, limit int) ([]Entry, error)

	// Newest returns the Seq of topic's newest entry, or a position before
	// its first entry when it has none: a stream that starts there gets
	// every entry appended later. The hub asks when a stream of a topic
	// that no other stream of the hub follows opens.
	Newest(ctx context.Context, topic string) (uint64, error)

	// Epoch names the store's present lifetime. The hub puts it in every
	// ID, so that IDs of another lifetime (a process restart, for an
	// in-memory store) or of another store are told apart: a client that
	// sends one is reset. It is 1 to 32 ASCII letters or digits.
	Epoch() string
}

// An OrderedStore numbers the entries of all topics in one sequence, and
// the hub delivers them in that order: a stream's place in the history is
// then one Seq, whatever its number of topics, and every ID it is sent is
// as short as a single topic's. The MemoryStore is one.
type OrderedStore interface {
	Store
	// Ordered marks the store; it does nothing.
	Ordered()
}

var (
	// ErrUnknownID means an event ID that the store did not issue in its
	// present epoch. The hub answers it with a reset event.
	ErrUnknownID = errors.New("sse: unknown event id")

	// ErrEvicted means that events after the given position were dropped
	// from the store's history. The hub answers it with a reset event.
	ErrEvicted = errors.New("sse: events after this id were evicted")
)

// A Broadcaster is a Store shared by several processes that also carries
// what is appended to every hub that follows the topic: a hub whose Store
// is a Broadcaster delivers to its clients what Listen hands it, its own
// publishes included, instead of delivering them directly. That is how
// events published on one instance reach clients on every other (sseredis
// implements it on Redis). A hub follows only the topics its streams
// follow. A Broadcaster also carries signals between hubs
// (Hub.EndStreams ends streams on every instance).
type Broadcaster interface {
	Store

	// Listen hands l, until ctx is done, the entries of the topics that
	// Follow asked for, each topic's in Seq order and without gaps, and
	// every signal sent; then it returns ctx's error. It rides out outages
	// of the store itself, catching up from what the store still holds;
	// l.State is called with a non-nil error when delivery stops and with
	// nil when it resumes, and l.Lost when entries of a topic can no longer
	// be delivered. l's methods are never called concurrently. A hub calls
	// Listen once.
	Listen(ctx context.Context, l Listener) error

	// Follow asks Listen for the entries of topic whose Seq is greater
	// than after: first those the store holds, then those appended later.
	// Unfollow asks it to stop. Both return at once, without waiting for
	// the store; a hub calls Follow when a stream of a topic it did not
	// follow opens, and Unfollow when the topic's last stream ends.
	Follow(topic string, after uint64)
	Unfollow(topic string)

	// Signal hands msg to the Listener of every hub that shares the store,
	// this one included, at most once each. Signals are not recorded: a
	// hub that does not listen when one is sent never gets it.
	Signal(ctx context.Context, msg []byte) error
}

// A Listener receives what a Broadcaster carries. The hub is the Listener
// of its store; a Broadcaster implementation calls it.
type Listener interface {
	// Deliver hands over the next entry of a followed topic. Entries at or
	// before what the hub already has are ignored.
	Deliver(Entry)
	// State reports that delivery stopped (err says why) or resumed (nil).
	State(err error)
	// Lost reports that entries of topic were lost between the store and
	// the hub (an outage longer than the history): the topic's streams are
	// sent the reset event.
	Lost(topic string)
	// NewEpoch reports that the store began a new lifetime: its history
	// was lost (a Redis that lost its keys, a recreated stream) and Seqs
	// start over. Epoch returns the new lifetime's name before NewEpoch is
	// called, and no entry of the new lifetime is delivered before it.
	// Every stream is sent the reset event, naming the start of the new
	// lifetime, and then gets its entries.
	NewEpoch()
	// Signal hands over a message that a hub sent with
	// Broadcaster.Signal.
	Signal(msg []byte)
}
