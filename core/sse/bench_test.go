package sse

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

var benchEvent = Event{
	ID:   "3f9a0c1e-123456",
	Type: "update",
	Data: []byte(`{"user":"ada","action":"comment","post":4711,"text":"a short message of the usual size"}`),
}

func BenchmarkEncode(b *testing.B) {
	for _, bc := range []struct {
		name string
		ev   Event
	}{
		{"json", benchEvent},
		{"multiline", Event{Type: "log", Data: []byte("line one\nline two\r\nline three\n")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.ev.Data)))
			for b.Loop() {
				var err error
				buf, err = AppendEvent(buf[:0], bc.ev)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublish measures Publish to N subscribers of one topic: the
// store append, one encode and N queue appends. Allocations per publish
// must not grow with N.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run("subscribers="+strconv.Itoa(n), func(b *testing.B) {
			h, err := NewHub(Options{MaxQueueEvents: 1 << 20, MaxQueueBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			subs := make([]*subscriber, n)
			for i := range subs {
				subs[i] = newSubscriber(h, &StreamInfo{Topics: []string{"t"}})
				h.register(context.Background(), subs[i])
			}
			defer func() {
				for _, s := range subs {
					h.unregister(s)
				}
			}()
			ev := Event{Type: "update", Data: benchEvent.Data}
			ctx := context.Background()
			drain := func() {
				for _, s := range subs {
					s.take()
					<-s.notify
				}
			}
			// Warm both of each subscriber's queue buffers up so that
			// their growth is not measured.
			for range 2 {
				for range 256 {
					_, _ = h.Publish(ctx, "t", ev)
				}
				drain()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := h.Publish(ctx, "t", ev); err != nil {
					b.Fatal(err)
				}
				if i%256 == 255 {
					b.StopTimer()
					drain()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// benchNotification is the payload of the store benchmarks: a
// notification of the usual size.
var benchNotification = []byte(`{"type":"comment","post":4711,"by":"ada","text":"a short notification of the usual size"}`)

// BenchmarkMemoryStoreAppend measures Append once the store is full, so
// that every append also drops an event: the topic's oldest (one topic,
// MaxEventsPerTopic) or the oldest of all (100 000 topics, MaxBytes).
func BenchmarkMemoryStoreAppend(b *testing.B) {
	for _, topics := range []int{1, 100_000} {
		b.Run("topics="+strconv.Itoa(topics), func(b *testing.B) {
			s, err := NewMemoryStore(MemoryStoreOptions{})
			if err != nil {
				b.Fatal(err)
			}
			names := make([]string, topics)
			for i := range names {
				names[i] = "user/" + strconv.Itoa(i)
			}
			ctx := context.Background()
			ev := Event{Type: "notification", Data: benchNotification}
			i := 0
			appendOne := func() {
				if _, err := s.Append(ctx, names[i%topics], ev); err != nil {
					b.Fatal(err)
				}
				i++
			}
			// Fill the store past its bounds: 64 MiB hold some 300 000
			// of these events.
			for range min(topics*5, 500_000) + 1000 {
				appendOne()
			}
			b.ReportAllocs()
			for b.Loop() {
				appendOne()
			}
		})
	}
}

// benchAfterStore returns a store of history events and the topics of a
// stream. With quiet topics, the stream's topics hold only resumeEvents of
// the history, spread across it among the events of 1000 other topics;
// otherwise they hold it all. after is the position to resume from that
// returns resumeEvents events.
func benchAfterStore(b *testing.B, streamTopics, history int, quiet bool) (s *MemoryStore, topics []string, after uint64) {
	s, err := NewMemoryStore(MemoryStoreOptions{MaxEventsPerTopic: history, MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	for i := range streamTopics {
		topics = append(topics, "user/"+strconv.Itoa(i))
	}
	ctx := context.Background()
	ev := Event{Type: "notification", Data: benchNotification}
	var mine []uint64 // the Seqs of the stream's events
	for i := range history {
		topic := "other/" + strconv.Itoa(i%1000)
		if !quiet || i%(history/resumeEvents) == 0 {
			topic = topics[i%streamTopics]
		}
		e, err := s.Append(ctx, topic, ev)
		if err != nil {
			b.Fatal(err)
		}
		if topic[0] == 'u' {
			mine = append(mine, e.Seq)
		}
	}
	return s, topics, mine[len(mine)-resumeEvents] - 1
}

// resumeEvents is how many events a resume in BenchmarkMemoryStoreAfter
// returns.
const resumeEvents = 16

// BenchmarkMemoryStoreAfter measures a resume that returns 16 events, on
// a stream of 1 or 32 topics, from histories of 1000 to 100 000 events:
// its cost must not grow with the history. "quiet": the stream's topics
// hold only those 16 events, spread across the history among the events
// of 1000 other topics (a user's feed); "loud": they hold the whole
// history and the resume asks for its newest 16. After is the exported
// method, which decodes events; frames is what the hub's replay uses.
func BenchmarkMemoryStoreAfter(b *testing.B) {
	for _, shape := range []string{"quiet", "loud"} {
		for _, topics := range []int{1, 32} {
			for _, history := range []int{1000, 4096, 100_000} {
				name := fmt.Sprintf("%s/topics=%d/history=%d", shape, topics, history)
				s, names, after := benchAfterStore(b, topics, history, shape == "quiet")
				ctx := context.Background()
				b.Run(name+"/After", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						got, err := msAfter(ctx, s, after, names, 256)
						if err != nil || len(got) != resumeEvents {
							b.Fatalf("After: %d entries, %v", len(got), err)
						}
					}
				})
				b.Run(name+"/frames", func(b *testing.B) {
					var dst []pageFrame
					b.ReportAllocs()
					for b.Loop() {
						var err error
						dst, err = s.frames(dst[:0], names, repeatSeq(after, len(names)), 256)
						if err != nil || len(dst) != resumeEvents {
							b.Fatalf("frames: %d, %v", len(dst), err)
						}
					}
				})
			}
		}
	}
}

// heapInUse returns the live heap, after collecting garbage.
func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkMemoryStoreMemory reports the heap a MemoryStore holds (the
// heap's growth from an empty store), per event kept and in all.
//
// "events": 100 000 notifications in 1000 topics, all kept. B/event is
// the heap per event, frame-B/event the part of it that is the frame (the
// event's wire form), overhead-B/event the rest.
//
// "topics=100000": five notifications for each of 100 000 topics, more
// than the default MaxBytes (64 MiB) holds. heap-MiB is what the store
// holds and heap/MaxBytes its share of the bound; counted/MaxBytes is
// what the store counts against it.
func BenchmarkMemoryStoreMemory(b *testing.B) {
	ev := Event{Type: "notification", Data: benchNotification}
	ctx := context.Background()
	fill := func(b *testing.B, opts MemoryStoreOptions, topics, events int) (s *MemoryStore, heap int64) {
		names := make([]string, topics)
		for i := range names {
			names[i] = "user/" + strconv.Itoa(i)
		}
		before := heapInUse()
		s, err := NewMemoryStore(opts)
		if err != nil {
			b.Fatal(err)
		}
		for i := range events {
			if _, err := s.Append(ctx, names[i%topics], ev); err != nil {
				b.Fatal(err)
			}
		}
		names = nil
		return s, heapInUse() - before
	}
	b.Run("events", func(b *testing.B) {
		const events = 100_000
		for b.Loop() {
			s, heap := fill(b, MemoryStoreOptions{}, 1000, events)
			s.mu.Lock()
			frames, kept := int64(0), s.events
			for _, t := range s.topics {
				for i := range int(t.n) {
					frames += int64(cap(t.at(i).frame))
				}
			}
			s.mu.Unlock()
			if kept != events {
				b.Fatalf("%d events kept, want %d", kept, events)
			}
			b.ReportMetric(float64(heap)/events, "B/event")
			b.ReportMetric(float64(frames)/events, "frame-B/event")
			b.ReportMetric(float64(heap-frames)/events, "overhead-B/event")
			runtime.KeepAlive(s)
		}
	})
	b.Run("topics=100000", func(b *testing.B) {
		for b.Loop() {
			s, heap := fill(b, MemoryStoreOptions{}, 100_000, 500_000)
			s.mu.Lock()
			counted, kept, known := s.bytes, s.events, len(s.topics)
			s.mu.Unlock()
			b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(heap)/defaultMaxBytes, "heap/MaxBytes")
			b.ReportMetric(float64(counted)/defaultMaxBytes, "counted/MaxBytes")
			b.ReportMetric(float64(kept), "events")
			b.ReportMetric(float64(known), "topics")
			if heap > defaultMaxBytes {
				b.Errorf("the store holds %d bytes, over MaxBytes %d", heap, defaultMaxBytes)
			}
			runtime.KeepAlive(s)
		}
	})
}

// BenchmarkRegisterDuringFanOut measures registering and unregistering a
// stream while events are fanned out, without pause, to 10 000 streams of
// another topic: with no lock held across a fan-out, the cost does not
// grow with the fan-out's size.
func BenchmarkRegisterDuringFanOut(b *testing.B) {
	h, err := NewHub(Options{MaxQueueEvents: 1 << 20, MaxQueueBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	hot := make([]*subscriber, 10000)
	for i := range hot {
		hot[i] = newSubscriber(h, &StreamInfo{Topics: []string{"hot"}})
		h.register(context.Background(), hot[i])
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ev := Event{Data: benchEvent.Data}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = h.Publish(context.Background(), "hot", ev)
			if i%64 == 63 {
				for _, s := range hot {
					s.take()
				}
			}
		}
	}()
	info := &StreamInfo{Topics: []string{"user/1", "hot"}}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		began := time.Now()
		s := newSubscriber(h, info)
		h.register(context.Background(), s)
		h.unregister(s)
		took = append(took, time.Since(began))
	}
	b.StopTimer()
	close(stop)
	<-done
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(took[len(took)*999/1000].Nanoseconds()), "p999-ns")
}
