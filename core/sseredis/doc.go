// Package sseredis is an sse.Store on Redis that also broadcasts: hubs in
// several processes that share it deliver every event to the clients of
// the topics they serve, and any of them can resume any client.
//
//	store, err := sseredis.New(ctx, sseredis.Options{Client: redis.NewClient(&redis.Options{Addr: "redis:6379"})})
//	...
//	hub, err := sse.NewHub(sse.Options{Store: store})
//
// # Topics
//
// Each topic has a history of its own, numbered on its own: its keys are
//
//	<Prefix>:{<topic>}:s  the history, a Redis stream
//	<Prefix>:{<topic>}:m  its first and newest Seq
//
// and its events are published on the channel <Prefix>:{<topic>}:c. One
// Lua script appends an event to the history and publishes it, so history
// and live delivery agree on every process. (In the key, '{', '}' and '%'
// of the topic are written %7B, %7D and %25.) The topic is the keys' hash
// tag: Redis Cluster keeps a topic's keys in one slot, and spreads the
// topics over its nodes.
//
// A process subscribes to the channel of a topic when its hub's first
// stream of the topic opens, and leaves it when the last ends: it receives
// only the topics its clients follow. Each Redis it uses carries one
// subscription per process.
//
// # Sharding
//
// Options.Shards spreads the topics over several independent Redis
// servers, by a consistent hash of the topic's name: publishing scales with
// their number. A *redis.ClusterClient in Options.Client does the same
// with the cluster's slots.
//
// # IDs and epochs
//
// The hub names a stream's place with a Seq per topic (see sse.Store):
// "3f9a0c1e82d4-60837915495412" for a stream of one topic. A topic's Seqs
// follow each other by one; its first Seq is a time in microseconds, so
// that a topic that Redis forgot (idle for Options.TopicTTL, or lost) begins
// again above every Seq it had. An ID says nothing of other topics.
//
// The epoch, the part before the hyphen, names the present lifetime of
// the Redis data: each Redis holds a random token in <Prefix>:epoch, and
// the epoch is made from the tokens. When Redis loses its keys (FLUSHALL,
// a restart without persistence) a new token, and a new epoch, begins: a
// client that resumes with an ID of the old one gets the hub's reset
// event. The positions themselves are checked too: a position that a
// topic's history no longer covers is answered with the reset event, never
// with a history that has a gap.
//
// See docs/scaling.md for what is guaranteed and how to size it.
package sseredis
