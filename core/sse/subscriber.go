package sse

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// frame is an encoded event, shared by the queues of every subscriber it
// was queued for; its bytes are never modified.
type frame struct {
	b []byte
	// b[idStart:idEnd] is the "id" line: a stream whose IDs name a Seq per
	// topic sends the frame with its own ID line instead.
	idStart, idEnd int
	// refs counts the queues that hold the frame. While fanOut runs it
	// counts every subscriber of its snapshot, plus one, so that it cannot
	// reach 0 early; fanOut then takes back what it did not queue.
	// Stats.QueuedBytes counts a frame while refs > 0.
	refs atomic.Int32
}

// queued is one encoded event waiting for a subscriber.
type queued struct {
	seq uint64
	ti  int // the index of the event's topic in the subscriber's topics
	f   *frame
}

// subscriber is one open stream's place in the hub: its topics and its
// bounded queue. Publishers append to the queue; the stream's own goroutine
// takes everything at once and writes it.
type subscriber struct {
	hub     *Hub
	topics  []string
	info    *StreamInfo // the Session's
	expires time.Time   // MaxStreamAge: zero for none; set before registration
	id      uint64      // picks the registry shard
	slots   []slot      // slots[i]: where s sits in topics[i]'s chunks, when it has joined

	// after[i] is the Seq of the newest event of topics[i] that the stream
	// has sent or may skip: the stream's place in the history. Set by
	// register, then used only by the stream goroutine.
	after []uint64

	notify chan struct{} // capacity 1: "something changed"
	// det, once set, is the detached connection that serves the stream
	// instead of a goroutine waiting on notify.
	det atomic.Pointer[detachedConn]
	// req, once set, is the per-request stream the subscriber stands for
	// (Hub.Stream): it has no topics, and its writes come from its
	// producer, so a wake-up goes to it instead.
	req   *Stream
	wrote atomic.Bool // written since the last heartbeat tick
	beat  atomic.Bool // a heartbeat is due

	mu    sync.Mutex
	queue []queued
	spare []queued // the stream goroutine's previous batch, reused
	bytes int
	reset ResetReason // reason of a reset event owed to the stream, or ""
	// rewound: the store began a new lifetime; the stream's positions
	// start over at its next take.
	rewound bool
	ended   EndReason // 0 while the stream runs
	last    []byte    // a frame to send before the end (EndStreams), or nil
}

// newSubscriber returns a subscriber of the stream info describes; info
// must outlive it.
func newSubscriber(h *Hub, info *StreamInfo) *subscriber {
	return &subscriber{
		hub: h, topics: info.Topics, info: info, id: subscriberIDs.Add(1),
		after: make([]uint64, len(info.Topics)), slots: make([]slot, len(info.Topics)),
		notify: make(chan struct{}, 1),
	}
}

func (s *subscriber) wake() {
	if d := s.det.Load(); d != nil {
		d.schedule()
		return
	}
	if s.req != nil {
		s.req.wake()
		return
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// enqueueResult is what enqueue did with a frame.
type enqueueResult int

const (
	enqueueSkipped enqueueResult = iota // the stream is ending
	enqueued
	enqueuedDropping // queued after dropping older events
	enqueueEvicted   // the queue was full: the stream is ending
)

// enqueue appends a frame, applying the slow-consumer policy when the queue
// is full. It never blocks on the stream.
//
// The queue is full when the frame would take it past MaxQueueEvents or
// MaxQueueBytes. An empty queue is never full: Publish bounds a frame by
// MaxEventBytes, at most MaxQueueBytes, but a frame that another process
// broadcast may be larger, and one frame alone must not count as a slow
// consumer.
func (s *subscriber) enqueue(seq uint64, ti int, f *frame) enqueueResult {
	opts := &s.hub.opts
	s.mu.Lock()
	if s.ended != 0 {
		s.mu.Unlock()
		return enqueueSkipped
	}
	full := func(drop int) bool {
		n := len(s.queue) - drop
		return n > 0 && (n+1 > opts.MaxQueueEvents || s.bytes+len(f.b) > opts.MaxQueueBytes)
	}
	result := enqueued
	if full(0) {
		if opts.SlowConsumer == SlowConsumerDisconnect {
			s.ended = EndSlowConsumer
			s.mu.Unlock()
			s.wake()
			return enqueueEvicted
		}
		result = enqueuedDropping
		drop := 0
		for full(drop) {
			s.bytes -= len(s.queue[drop].f.b)
			s.hub.releaseFrame(s.queue[drop].f)
			drop++
		}
		n := copy(s.queue, s.queue[drop:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		if s.reset == "" {
			s.reset = ResetDropped
		}
	}
	s.queue = append(s.queue, queued{seq: seq, ti: ti, f: f}) // fanOut counted the reference
	s.bytes += len(f.b)
	first := len(s.queue) == 1
	s.mu.Unlock()
	if first {
		// Otherwise a wake-up is pending already: the stream has not taken
		// the queue since it became non-empty.
		s.wake()
	}
	return result
}

// end marks the stream to be ended for reason, unless it already is.
func (s *subscriber) end(reason EndReason) { s.endWith(reason, nil) }

// endWith is end with a frame to send before the stream's end.
func (s *subscriber) endWith(reason EndReason, last []byte) {
	s.mu.Lock()
	if s.ended == 0 {
		s.ended, s.last = reason, last
	}
	s.mu.Unlock()
	s.wake()
}

// take returns everything queued, the reason of a reset event owed to the
// stream ("" if none), whether the stream is to end, and the frame to send
// before its end. The returned slice is valid until the next take.
func (s *subscriber) take() (batch []queued, reset ResetReason, ended EndReason, last []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.spare)
	batch, s.queue, s.spare = s.queue, s.spare[:0], s.queue
	s.bytes = 0
	reset, s.reset = s.reset, ""
	if s.rewound {
		s.rewound = false
		clear(s.after) // the caller owns after: it is the stream's goroutine
	}
	for _, q := range batch {
		s.hub.releaseFrame(q.f)
	}
	return batch, reset, s.ended, s.last
}

// discard empties the queue of a stream that has ended; a fan-out that
// still holds the stream in its snapshot then queues nothing for it.
func (s *subscriber) discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended == 0 {
		s.ended = EndClientGone
	}
	for _, q := range s.queue {
		s.hub.releaseFrame(q.f)
	}
	clear(s.queue)
	s.queue, s.bytes = s.queue[:0], 0
}

// owe records that the stream must be sent a reset event with reason
// before its next events.
func (s *subscriber) owe(reason ResetReason) {
	s.mu.Lock()
	if s.reset == "" {
		s.reset = reason
	}
	s.mu.Unlock()
	s.wake()
}

// rewind drops what is queued, of a store's lifetime that has ended, and
// owes the stream a reset with reason, sent from the start of the new
// lifetime. A stream of several topics is rewound once per topic; the
// first drops the old lifetime's events, the others find none.
func (s *subscriber) rewind(reason ResetReason) {
	s.mu.Lock()
	for _, q := range s.queue {
		s.hub.releaseFrame(q.f)
	}
	clear(s.queue)
	s.queue, s.bytes = s.queue[:0], 0
	s.reset, s.rewound = reason, true
	s.mu.Unlock()
	s.wake()
}

func (s *subscriber) queuedBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// matches reports whether the stream is one that m selects.
func (s *subscriber) matches(m StreamMatch) bool {
	if m.Principal != "" && s.info.Principal.ID != m.Principal {
		return false
	}
	return m.Topic == "" || slices.Contains(s.topics, m.Topic)
}
