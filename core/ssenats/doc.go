// Package ssenats is an sse.Store on NATS JetStream that also broadcasts
// (an sse.Broadcaster): hubs in several processes that share a stream
// deliver every event of a topic to their clients in the same order, and
// any of them resumes any client.
//
//	nc, err := nats.Connect("nats://nats:4222")
//	...
//	store, err := ssenats.New(ctx, ssenats.Options{Conn: nc})
//	...
//	hub, err := sse.NewHub(sse.Options{Store: store})
//
// # History
//
// One JetStream stream (Options.Stream) holds the history. A topic's events
// are messages on the subject <Prefix>.t.<topic>, the topic escaped into
// one subject token (see Store.Subject), so the server keeps each topic's
// newest events on its own: MaxEventsPerTopic is the stream's
// MaxMsgsPerSubject, and a loud topic never pushes a quiet one's history
// out. MaxAge and MaxBytes bound the whole stream.
//
// An event's Seq is the JetStream sequence number of its message. That
// one number orders all topics, so a resume of several topics merges their
// events exactly as they were published, and reading a topic from a
// position is JetStream's direct get of the subject's next message after
// it: a round trip per event returned, whatever else the stream holds. A
// count of its own per topic would need a second index to find where a
// topic's n-th event sits. The price: an ID reveals how many events the
// whole stream took (all topics together) before it, though not which.
// Where that matters, give each tenant a stream (Stream and Prefix) of its
// own.
//
// # Gaps
//
// Each event records the Seq of its topic's previous event. Append
// publishes on condition that the subject's newest message is the one it
// names (the Nats-Expected-Last-Subject-Sequence header), so the chain
// has no hole; appends of one topic in one process wait for one another,
// and one that another process beat is made again after the newer event.
// A retried publish keeps its Nats-Msg-Id, so the server stores it once.
// With the chain, After and Listen tell exactly whether events of a topic
// after a position were dropped. The one case JetStream leaves open is a
// topic whose every event expired: the server then forgets the subject.
// A position in such a topic is reported evicted (the client is reset)
// unless the stream still holds the event at that position (of any topic)
// or nothing older, which shows that nothing after it expired.
//
// # Live delivery
//
// The stream republishes each message once stored (RePublish) on
// <Prefix>.l.<topic>. Listen subscribes to that subject for each topic
// the hub follows, and only those: a process receives only the topics its
// clients follow. A message that does not follow the last one Listen
// handed over (NATS dropped some for a slow consumer, or the connection
// was lost) makes Listen read the gap from the stream first. When the
// connection is lost, Listen reports it (the hub's
// Observer.BroadcastState); once nats.go has reconnected, it reads what
// each topic missed, then reports that delivery resumed. Events the stream
// dropped meanwhile are reported with Lost: the topic's clients get the
// reset event, then the events that remain.
//
// A stream that is deleted (or lost with a server that kept it in memory)
// is made anew by the next Append, with a new epoch, numbering on after
// the old one's events. The server announces it (JetStream advisories),
// and a topic's first event in the new stream shows it too; every Listen
// then reports the new epoch (the hub resets every stream) and goes on
// with the new stream's events. Clients that resume with an old ID are
// reset.
//
// Signals (Hub.EndStreams) are plain NATS messages on <Prefix>.signal.
//
// # Requirements and limits
//
// A NATS server 2.9 or newer with JetStream (RePublish and direct get).
// An event must fit the server's max_payload (1 MiB by default) with some
// 200 bytes to spare: keep sse.Options.MaxEventBytes below it. See
// docs/scaling.md for guarantees, sizing, and when to choose NATS or Redis.
package ssenats
