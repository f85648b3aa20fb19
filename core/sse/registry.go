package sse

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The hub's registry of subscribers.
//
// A topic's subscribers sit in chunks of chunkSize slots, each with a lock
// of its own. A fan-out walks a snapshot of the topic's chunk list and
// locks one chunk at a time while it queues the event for that chunk's
// subscribers; registering or unregistering a stream locks the one chunk
// it changes. So neither ever waits for a whole fan-out, however many
// subscribers the topic has, and a hot topic's fan-out can be spread over
// several goroutines, a range of chunks each.
//
// Subscribers never move: a stream that ends leaves a free slot, which the
// next stream of the topic takes. (Moving one would let a fan-out in
// progress miss it or meet it twice.) Each chunk records the Seq of the
// newest event it was given; a stream that joins it starts after that
// Seq, so a fan-out in progress reaches it exactly when its position says
// it should.
//
// The set of all subscribers, which heartbeat ticks, Shutdown and
// EndStreams walk, is sharded: a walk locks one shard at a time.

// chunkSize is the number of slots in a full-sized chunk of a topic's
// subscribers. A topic's first chunks are smaller (chunkSlots), so that
// the many topics with one stream or a few, a user's own, cost little.
const chunkSize = 256

// chunkSlots returns the number of slots of a topic's i-th chunk: 2, 8,
// 32, 128, then chunkSize.
func chunkSlots(i int) int {
	if i >= 4 {
		return chunkSize
	}
	return 2 << (2 * i)
}

// parallelFanOut is the number of subscribers from which a fan-out is
// spread over several goroutines.
const parallelFanOut = 4 * chunkSize

// fanOutWorkers is the most goroutines one fan-out uses: a quarter of the
// CPUs, so that the streams' writers keep the rest. (Queueing is memory
// bound: on 2 CPUs a second goroutine made a 10 000-subscriber fan-out
// slower, not faster.) Tests change it.
var fanOutWorkers = func() int { return runtime.GOMAXPROCS(0) / 4 }

// chunk is a part of a topic's subscribers.
type chunk struct {
	mu      sync.Mutex
	subs    []member // a nil s: a free slot
	lastSeq uint64   // Seq of the newest event of the topic given to this chunk
}

// member is a subscriber in a topic's chunk.
type member struct {
	s  *subscriber
	ti int // the index of the topic in s.topics
}

// topicSubs is a topic's subscribers.
type topicSubs struct {
	mu     sync.Mutex               // guards the fields below, and changes to chunks
	chunks atomic.Pointer[[]*chunk] // replaced, never changed, when a chunk is added
	free   []slot                   // free slots, in chunks that have them
	n      int                      // subscribers
	// lastSeq is the Seq of the topic's event being fanned out, or of the
	// newest one fanned out. A chunk created now starts after it.
	lastSeq atomic.Uint64
	// doneSeq is the Seq of the newest event whose fan-out has ended: it
	// is in the queue of every subscriber it was for.
	doneSeq atomic.Uint64
}

// slot is where a subscriber sits in one of its topics' chunks.
type slot struct {
	chunk *chunk
	index int
}

// registry holds the subscribers by topic, and all of them in shards.
type registry struct {
	mu     sync.Mutex // guards topics
	topics map[string]*topicSubs
	count  atomic.Int64 // topics with subscribers
	// lastSeq is the greatest Seq fanned out (or being fanned out): with
	// an OrderedStore, the place in every topic's history that a stream
	// registered now reaches live.
	lastSeq atomic.Uint64
	// follow and unfollow, when set, are told when a topic gains its first
	// subscriber (with the Seq its chunks start after) and loses its last,
	// under mu, so that they are told in order.
	follow   func(topic string, after uint64)
	unfollow func(topic string)

	shards [16]subShard
}

type subShard struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

func newRegistry() *registry {
	r := &registry{topics: make(map[string]*topicSubs)}
	for i := range r.shards {
		r.shards[i].subs = make(map[*subscriber]struct{})
	}
	return r
}

// shard returns s's shard.
func (r *registry) shard(s *subscriber) *subShard {
	return &r.shards[s.id%uint64(len(r.shards))]
}

// subscriberIDs numbers subscribers, for their shard.
var subscriberIDs atomic.Uint64

// has reports whether topic has subscribers.
func (r *registry) has(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topics[topic] != nil
}

// join adds s to the subscribers of s.topics[i]: every event of the topic
// with Seq greater than s.after[i] reaches s's queue. A topic without
// subscribers is created, its chunks starting after start; when the
// caller has none (known is false), join adds nothing and returns false.
func (r *registry) join(s *subscriber, i int, start uint64, known bool) bool {
	t := s.topics[i]
	r.mu.Lock()
	ts := r.topics[t]
	if ts == nil {
		if !known {
			r.mu.Unlock()
			return false
		}
		ts = &topicSubs{}
		ts.chunks.Store(new([]*chunk))
		ts.lastSeq.Store(start)
		r.topics[t] = ts
		r.count.Add(1)
		if r.follow != nil {
			r.follow(t, start)
		}
	}
	ts.mu.Lock() // before r.mu is released, so that remove cannot drop ts
	r.mu.Unlock()
	if len(ts.free) == 0 {
		old := *ts.chunks.Load()
		c := &chunk{subs: make([]member, chunkSlots(len(old))), lastSeq: ts.lastSeq.Load()}
		chunks := append(append(make([]*chunk, 0, len(old)+1), old...), c)
		for j := len(c.subs) - 1; j >= 0; j-- {
			ts.free = append(ts.free, slot{c, j})
		}
		ts.chunks.Store(&chunks)
	}
	at := ts.free[len(ts.free)-1]
	ts.free = ts.free[:len(ts.free)-1]
	ts.n++
	ts.mu.Unlock()
	// The slot is s's now: the chunk's lock, which a fan-out to the chunk
	// holds, is taken with no other lock held, so that nothing else waits
	// for that fan-out.
	at.chunk.mu.Lock()
	at.chunk.subs[at.index] = member{s, i}
	s.after[i] = at.chunk.lastSeq
	at.chunk.mu.Unlock()
	s.slots[i] = at
	return true
}

// enter adds s to the set of all subscribers, once it has joined its
// topics.
func (r *registry) enter(s *subscriber) {
	sh := r.shard(s)
	sh.mu.Lock()
	sh.subs[s] = struct{}{}
	sh.mu.Unlock()
}

// remove unregisters s, and reports whether it was registered.
func (r *registry) remove(s *subscriber) bool {
	sh := r.shard(s)
	sh.mu.Lock()
	_, was := sh.subs[s]
	delete(sh.subs, s)
	sh.mu.Unlock()
	if was {
		r.leave(s)
	}
	return was
}

// leave removes s from the subscribers of the topics it joined.
func (r *registry) leave(s *subscriber) {
	for i, t := range s.topics {
		at := s.slots[i]
		if at.chunk == nil {
			continue // never joined
		}
		s.slots[i] = slot{}
		// Out of the chunk first, with no other lock held: a fan-out to
		// the chunk holds its lock, and only s waits for it. The slot is
		// not free until it is empty.
		at.chunk.mu.Lock()
		at.chunk.subs[at.index] = member{}
		at.chunk.mu.Unlock()
		r.mu.Lock()
		ts := r.topics[t] // s still counts in ts.n: ts is there
		ts.mu.Lock()
		ts.free = append(ts.free, at)
		if ts.n--; ts.n == 0 {
			delete(r.topics, t)
			r.count.Add(-1)
			if r.unfollow != nil {
				r.unfollow(t)
			}
		}
		ts.mu.Unlock()
		r.mu.Unlock()
	}
}

// snapshot returns the chunks of topic's subscribers, for a fan-out of the
// topic's event of Seq seq; ok is false when the topic has no subscribers
// or the event is at or below the newest of the topic fanned out (a
// Broadcaster may deliver an event twice).
func (r *registry) snapshot(topic string, seq uint64) (ts *topicSubs, chunks []*chunk, ok bool) {
	if seq > r.lastSeq.Load() {
		r.lastSeq.Store(seq) // fan-outs run one at a time
	}
	ts = r.subscribers(topic)
	if ts == nil || seq <= ts.lastSeq.Load() {
		return nil, nil, false
	}
	// Set before the chunk list is read: a chunk created after this starts
	// after seq, and a chunk in the list gets the event.
	ts.lastSeq.Store(seq)
	return ts, *ts.chunks.Load(), true
}

// rewind starts every topic's Seqs over, for a store's new lifetime, and
// calls f for every subscriber of a topic. No fan-out runs meanwhile: a
// Broadcaster delivers one entry at a time, and calls NewEpoch between.
func (r *registry) rewind(f func(*subscriber)) {
	r.mu.Lock() // no topic gains or loses subscribers meanwhile
	defer r.mu.Unlock()
	r.lastSeq.Store(0)
	for _, ts := range r.topics {
		ts.mu.Lock()
		ts.lastSeq.Store(0)
		ts.doneSeq.Store(0)
		for _, c := range *ts.chunks.Load() {
			c.mu.Lock()
			c.lastSeq = 0
			for _, m := range c.subs {
				if m.s != nil {
					f(m.s)
				}
			}
			c.mu.Unlock()
		}
		ts.mu.Unlock()
	}
}

// subscribers returns topic's subscribers, or nil.
func (r *registry) subscribers(topic string) *topicSubs {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topics[topic]
}

// seqOf returns the Seq of the newest event of topic whose fan-out has
// ended; ok is false when the topic has no subscribers.
func (r *registry) seqOf(topic string) (seq uint64, ok bool) {
	ts := r.subscribers(topic)
	if ts == nil {
		return 0, false
	}
	return ts.doneSeq.Load(), true
}

// countOf returns the number of topic's subscribers.
func (r *registry) countOf(topic string) int {
	ts := r.subscribers(topic)
	if ts == nil {
		return 0
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.n
}

// eachOf calls f for every subscriber of topic, one chunk locked at a
// time.
func (r *registry) eachOf(topic string, f func(*subscriber)) {
	ts := r.subscribers(topic)
	if ts == nil {
		return
	}
	for _, c := range *ts.chunks.Load() {
		c.mu.Lock()
		for _, m := range c.subs {
			if m.s != nil {
				f(m.s)
			}
		}
		c.mu.Unlock()
	}
}

// each calls f for every subscriber, one shard locked at a time.
func (r *registry) each(f func(*subscriber)) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for s := range sh.subs {
			f(s)
		}
		sh.mu.Unlock()
	}
}

// fanOutResult counts what a fan-out did.
type fanOutResult struct{ queued, dropped, evicted int }

// enqueueAll queues f, the frame of Seq seq, for the subscribers in
// chunks: from the calling goroutine or, for a hot topic, from several.
func enqueueAll(chunks []*chunk, seq uint64, f *frame) fanOutResult {
	workers := min(fanOutWorkers(), len(chunks)*chunkSize/parallelFanOut)
	if workers <= 1 {
		return enqueueChunks(chunks, seq, f)
	}
	results := make([]fanOutResult, workers)
	var wg sync.WaitGroup
	per := (len(chunks) + workers - 1) / workers
	for w := 1; w < workers; w++ {
		lo, hi := min(w*per, len(chunks)), min((w+1)*per, len(chunks))
		wg.Go(func() { results[w] = enqueueChunks(chunks[lo:hi], seq, f) })
	}
	results[0] = enqueueChunks(chunks[:min(per, len(chunks))], seq, f)
	wg.Wait()
	var total fanOutResult
	for _, r := range results {
		total.queued += r.queued
		total.dropped += r.dropped
		total.evicted += r.evicted
	}
	return total
}

func enqueueChunks(chunks []*chunk, seq uint64, f *frame) (r fanOutResult) {
	for _, c := range chunks {
		c.mu.Lock()
		c.lastSeq = seq
		for _, m := range c.subs {
			if m.s == nil {
				continue
			}
			switch m.s.enqueue(seq, m.ti, f) {
			case enqueued:
				r.queued++
			case enqueuedDropping:
				r.queued++
				r.dropped++
			case enqueueEvicted:
				r.evicted++
			}
		}
		c.mu.Unlock()
	}
	return r
}
