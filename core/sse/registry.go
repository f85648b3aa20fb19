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
	subs    []*subscriber // nil: a free slot
	lastSeq uint64        // Seq of the newest event given to this chunk
}

// topicSubs is a topic's subscribers.
type topicSubs struct {
	mu     sync.Mutex               // guards the fields below, and changes to chunks
	chunks atomic.Pointer[[]*chunk] // replaced, never changed, when a chunk is added
	free   []slot                   // free slots, in chunks that have them
	n      int                      // subscribers
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
	// lastSeq is the Seq of the event being fanned out, or of the newest
	// one fanned out. A chunk created now starts after it.
	lastSeq atomic.Uint64
	count   atomic.Int64 // topics with subscribers

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

// add registers s: every event fanned out to its topics after the
// position s.after is set to reaches s's queue.
func (r *registry) add(s *subscriber) {
	s.slots = make([]slot, len(s.topics))
	s.after = 0
	for i, t := range s.topics {
		r.mu.Lock()
		ts := r.topics[t]
		if ts == nil {
			ts = &topicSubs{}
			ts.chunks.Store(new([]*chunk))
			r.topics[t] = ts
			r.count.Add(1)
		}
		ts.mu.Lock() // before r.mu is released, so that remove cannot drop ts
		r.mu.Unlock()
		if len(ts.free) == 0 {
			old := *ts.chunks.Load()
			c := &chunk{subs: make([]*subscriber, chunkSlots(len(old))), lastSeq: r.lastSeq.Load()}
			chunks := append(append(make([]*chunk, 0, len(old)+1), old...), c)
			for j := len(c.subs) - 1; j >= 0; j-- {
				ts.free = append(ts.free, slot{c, j})
			}
			ts.chunks.Store(&chunks)
		}
		at := ts.free[len(ts.free)-1]
		ts.free = ts.free[:len(ts.free)-1]
		ts.n++
		at.chunk.mu.Lock()
		at.chunk.subs[at.index] = s
		s.after = max(s.after, at.chunk.lastSeq)
		at.chunk.mu.Unlock()
		ts.mu.Unlock()
		s.slots[i] = at
	}
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
	if !was {
		return false
	}
	for i, t := range s.topics {
		at := s.slots[i]
		r.mu.Lock()
		ts := r.topics[t]
		ts.mu.Lock()
		at.chunk.mu.Lock()
		at.chunk.subs[at.index] = nil
		at.chunk.mu.Unlock()
		ts.free = append(ts.free, at)
		if ts.n--; ts.n == 0 {
			delete(r.topics, t)
			r.count.Add(-1)
		}
		ts.mu.Unlock()
		r.mu.Unlock()
	}
	return true
}

// snapshot returns the chunks of topic's subscribers, for a fan-out of the
// event of Seq seq; ok is false for an event at or below the newest fanned
// out.
func (r *registry) snapshot(topic string, seq uint64) (chunks []*chunk, ok bool) {
	if seq <= r.lastSeq.Load() {
		return nil, false
	}
	// Set before the chunk list is read: a chunk created after this starts
	// after seq, and a chunk in the list gets the event.
	r.lastSeq.Store(seq)
	if ts := r.subscribers(topic); ts != nil {
		return *ts.chunks.Load(), true
	}
	return nil, true
}

// subscribers returns topic's subscribers, or nil.
func (r *registry) subscribers(topic string) *topicSubs {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topics[topic]
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
		for _, s := range c.subs {
			if s != nil {
				f(s)
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
		for _, s := range c.subs {
			if s == nil {
				continue
			}
			switch s.enqueue(seq, f) {
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
