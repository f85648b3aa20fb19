package sse_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// memBus is a Broadcaster in memory: hubs that share one act as
// instances of a service that share a Redis.
type memBus struct {
	mu        sync.Mutex
	store     *sse.MemoryStore // replaced by restart
	listeners map[*busListener]struct{}
	followed  map[string]uint64 // every topic a hub followed, from where

	// offset is added to every Seq the bus hands out, to stand for a store
	// whose sequence numbers are long (a global sequence of years).
	offset uint64

	// eager makes Append return only once every listener has been handed
	// the entry, as a store does that broadcasts before it acknowledges
	// (NATS JetStream's republish).
	eager bool

	// delay, in nanoseconds, holds each hand-over to a hub that long: a
	// slow bus.
	delay atomic.Int64
}

// busListener is one Listen call: the topics it follows and its queue.
type busListener struct {
	follows map[string]bool
	ch      chan func(sse.Listener)
}

func newMemBus(store *sse.MemoryStore) *memBus {
	return &memBus{store: store, listeners: make(map[*busListener]struct{}), followed: make(map[string]uint64)}
}

var _ sse.Broadcaster = (*memBus)(nil)

func (b *memBus) Append(ctx context.Context, topic string, ev sse.Event) (sse.Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.store.Append(ctx, topic, ev)
	if err != nil {
		return e, err
	}
	e.Seq += b.offset
	handed := make(chan struct{}, len(b.listeners))
	n := 0
	for l := range b.listeners {
		if l.follows[e.Topic] {
			l.ch <- func(l sse.Listener) { l.Deliver(e); handed <- struct{}{} }
			n++
		}
	}
	for ; b.eager && n > 0; n-- {
		<-handed
	}
	return e, nil
}

// Listen serves one hub. memBus cannot tell which hub calls Follow, so
// every Listen follows every topic that any hub followed: a hub ignores
// entries of topics it has no streams of, and those it has already.
func (b *memBus) Listen(ctx context.Context, l sse.Listener) error {
	bl := &busListener{follows: map[string]bool{}, ch: make(chan func(sse.Listener), 1<<16)}
	b.mu.Lock()
	b.listeners[bl] = struct{}{}
	for topic, after := range b.followed {
		b.catchUp(bl, topic, after)
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.listeners, bl)
		b.mu.Unlock()
	}()
	for {
		select {
		case f := <-bl.ch:
			time.Sleep(time.Duration(b.delay.Load()))
			f(l)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *memBus) Follow(topic string, after uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev, ok := b.followed[topic]; !ok || after < prev {
		b.followed[topic] = after
	}
	for l := range b.listeners {
		if !l.follows[topic] {
			b.catchUp(l, topic, after)
		}
	}
}

// catchUp makes l follow topic from after; b.mu is held.
func (b *memBus) catchUp(l *busListener, topic string, after uint64) {
	l.follows[topic] = true
	entries, _ := b.after(b.store, []string{topic}, []uint64{after}, 1<<20)
	for _, e := range entries {
		l.ch <- func(l sse.Listener) { l.Deliver(e) }
	}
}

func (b *memBus) After(_ context.Context, topics []string, after []uint64, limit int) ([]sse.Entry, error) {
	return b.after(b.current(), topics, after, limit)
}

func (b *memBus) after(store *sse.MemoryStore, topics []string, after []uint64, limit int) ([]sse.Entry, error) {
	inner := make([]uint64, len(after))
	for i, a := range after {
		inner[i] = a - min(a, b.offset)
	}
	entries, err := store.After(context.Background(), topics, inner, limit)
	for i := range entries {
		entries[i].Seq += b.offset
	}
	return entries, err
}

func (b *memBus) Newest(ctx context.Context, topic string) (uint64, error) {
	seq, err := b.current().Newest(ctx, topic)
	return seq + b.offset, err
}

func (b *memBus) Epoch() string { return b.current().Epoch() }

func (b *memBus) current() *sse.MemoryStore {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.store
}

// restart replaces the bus's store with an empty one, as a Redis that lost
// its keys or a recreated JetStream stream: a new epoch, whose Seqs start
// over. Every hub is told, before any entry of the new epoch reaches it.
func (b *memBus) restart(store *sse.MemoryStore) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.store = store
	for l := range b.listeners {
		l.ch <- func(l sse.Listener) { l.NewEpoch() }
	}
}

// Unfollow keeps following: memBus cannot tell which hub asks, and a hub
// ignores entries of topics it has no streams of.
func (b *memBus) Unfollow(string) {}

func (b *memBus) Signal(_ context.Context, msg []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	msg = append([]byte(nil), msg...)
	for l := range b.listeners {
		l.ch <- func(l sse.Listener) { l.Signal(msg) }
	}
	return nil
}

// listenerCount returns the number of running Listen calls.
func (b *memBus) listenerCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.listeners)
}
