package sse

import (
	"context"
	"strconv"
	"testing"
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
				h.register(subs[i])
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
