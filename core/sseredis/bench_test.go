package sseredis_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// BenchmarkPublish measures Hub.Publish through Redis: one script call
// that appends, trims and publishes. The hub also receives each event back
// from its subscription, as it would in production.
func BenchmarkPublish(b *testing.B) {
	env := newEnv(b)
	n := env.node("A", nodeConfig{direct: true})
	ev := sse.Event{Type: "update", Data: []byte(`{"id":42,"status":"shipped","note":"a payload of about a hundred bytes, typical of app events"}`)}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := n.hub.Publish(ctx, "t", ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4) // 4 publishing goroutines per CPU
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := n.hub.Publish(ctx, "t", ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
	})
}

// BenchmarkEndToEnd measures the latency from Publish on hub A to the
// event parsed by an SSE client of hub B (another process, as far as Redis
// is concerned), one event at a time: ns/op is that latency, p50-µs and
// p99-µs its percentiles.
func BenchmarkEndToEnd(b *testing.B) {
	env := newEnv(b)
	a := env.node("A", nodeConfig{direct: true})
	bn := env.node("B", nodeConfig{direct: true})
	st := connect(b, bn.url+"?topic=t", "")
	arrived := make(chan string, 1)
	go func() {
		for {
			ev, err := st.Next()
			if err != nil {
				close(arrived)
				return
			}
			arrived <- ev.LastEventID
		}
	}()
	ctx := context.Background()
	ev := sse.Event{Data: []byte(`{"id":42,"status":"shipped"}`)}
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		id, err := a.hub.Publish(ctx, "t", ev)
		if err != nil {
			b.Fatal(err)
		}
		if got, ok := <-arrived; !ok || got != id {
			b.Fatalf("got %q, want %q", got, id)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
