package sse_test

import (
	"context"
	"sync"

	"github.com/ssekit/ssekit/core/sse"
)

// memBus is a Broadcaster in memory: hubs that share one act as
// instances of a service that share a Redis.
type memBus struct {
	*sse.MemoryStore

	mu        sync.Mutex
	last      uint64
	log       []sse.Entry // every entry, for listeners that start late
	listeners map[chan func(sse.Listener)]struct{}
	listening sync.WaitGroup // running Listen calls
}

func newMemBus(store *sse.MemoryStore) *memBus {
	return &memBus{MemoryStore: store, listeners: make(map[chan func(sse.Listener)]struct{})}
}

var _ sse.Broadcaster = (*memBus)(nil)

func (b *memBus) Append(ctx context.Context, topic string, ev sse.Event) (sse.Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.MemoryStore.Append(ctx, topic, ev)
	if err != nil {
		return e, err
	}
	b.last = e.Seq
	b.log = append(b.log, e)
	for ch := range b.listeners {
		ch <- func(l sse.Listener) { l.Deliver(e) }
	}
	return e, nil
}

func (b *memBus) Newest(context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, nil
}

func (b *memBus) Listen(ctx context.Context, after uint64, l sse.Listener) error {
	b.listening.Add(1)
	defer b.listening.Done()
	ch := make(chan func(sse.Listener), 1<<16)
	b.mu.Lock()
	for _, e := range b.log {
		if e.Seq > after {
			ch <- func(l sse.Listener) { l.Deliver(e) }
		}
	}
	b.listeners[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.listeners, ch)
		b.mu.Unlock()
	}()
	for {
		select {
		case f := <-ch:
			f(l)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *memBus) Signal(_ context.Context, msg []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	msg = append([]byte(nil), msg...)
	for ch := range b.listeners {
		ch <- func(l sse.Listener) { l.Signal(msg) }
	}
	return nil
}

// listeners returns the number of running Listen calls.
func (b *memBus) listenerCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.listeners)
}
