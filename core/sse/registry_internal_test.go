package sse

import (
	"testing"
	"time"
)

// TestRegistryWaitsForNoFanOut: while a fan-out holds one of a topic's
// chunks, registering and unregistering other subscribers of that topic
// and of other topics, and counting subscribers, go on: only what sits in
// that very chunk waits for it.
func TestRegistryWaitsForNoFanOut(t *testing.T) {
	h := newTestHub(t, Options{})
	r := h.reg
	join := func(topic string) *subscriber {
		s := newSubscriber(h, &StreamInfo{Topics: []string{topic}})
		if !r.join(s, 0, 0, true) {
			t.Fatal("join refused")
		}
		r.enter(s)
		return s
	}
	// Fill the hot topic's first chunk, and one subscriber more in a second.
	first := join("hot")
	for range chunkSlots(0) - 1 {
		join("hot")
	}
	held := first.slots[0].chunk
	join("hot")

	// A fan-out in progress in the first chunk.
	held.mu.Lock()
	defer held.mu.Unlock()

	// first leaves: it waits for the fan-out, and nothing else waits for it.
	left := make(chan struct{})
	go func() { r.remove(first); close(left) }()
	time.Sleep(10 * time.Millisecond) // let it block on the chunk

	done := make(chan struct{})
	go func() {
		defer close(done)
		join("hot")   // a new subscriber of the hot topic, in another chunk
		join("quiet") // and of another topic
		r.countOf("hot")
		r.countOf("quiet")
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("registering and counting waited for a fan-out to a chunk they do not use")
	}
	select {
	case <-left:
		t.Fatal("a subscriber left a chunk that a fan-out holds")
	default:
	}
}
