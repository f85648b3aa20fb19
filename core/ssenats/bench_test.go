package ssenats_test

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// BenchmarkPublish measures Hub.Publish through JetStream: one publish
// that waits for the server's acknowledgement. The hub follows the topic,
// so it also receives each event back, as it would in production.
// "parallel" publishes one topic from 4 goroutines per CPU (Appends of a
// topic wait for one another in a process: each names the one before);
// "parallel-topics" spreads them over 64 topics.
func BenchmarkPublish(b *testing.B) {
	env := newEnv(b)
	n := env.node("A", nodeConfig{direct: true})
	connect(b, n.url+"?topic=t", "")
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
	for _, topics := range []int{1, 64} {
		name := "parallel"
		if topics > 1 {
			name = "parallel-topics"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				topic := "t" + strconv.Itoa(int(next.Add(1))%topics)
				if topics == 1 {
					topic = "t"
				}
				for pb.Next() {
					if _, err := n.hub.Publish(ctx, topic, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
		})
	}
}

// BenchmarkEndToEnd measures the latency from Publish on hub A to the
// event parsed by an SSE client of hub B (another process, as far as NATS
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
