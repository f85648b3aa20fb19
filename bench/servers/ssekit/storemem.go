package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// StoreMem is what BENCH_STOREMEM=<case> prints (one JSON line): the heap
// a MemoryStore with default options holds after Appended appends of
// DataBytes-byte events, spread round-robin over Topics topics.
//
// Only the Store interface is used, so that the same code measures an
// older core. Retained, the events the store still holds, is found from
// outside: both stores drop the oldest events first in these fills (no
// topic reaches MaxEventsPerTopic), so After(p) answers ErrEvicted exactly
// for positions p below the newest dropped event; a bisection finds that
// position. The "events" case checks the count with a full After.
type StoreMem struct {
	Case      string `json:"case"`
	Appended  int    `json:"appended"`
	Topics    int    `json:"topics"`
	DataBytes int    `json:"data_bytes"`
	Retained  int64  `json:"retained"`
	HeapBytes int64  `json:"heap_bytes"` // the heap's growth, after GC, with the store filled
	// PeakHeapBytes is the largest of HeapBytes sampled every quarter of
	// the fill ("bound" case).
	PeakHeapBytes    int64   `json:"peak_heap_bytes,omitempty"`
	BytesPerRetained float64 `json:"bytes_per_retained"`
	AppendNS         float64 `json:"append_ns"` // mean time of one Append, store full or not
	// HasMaxBytes says the core's MemoryStoreOptions has MaxBytes (whose
	// default is 64 MiB); an older store is bounded by count alone.
	HasMaxBytes bool `json:"has_max_bytes"`
}

// notification is the event data of the core's BenchmarkMemoryStoreMemory.
var notification = []byte(`{"type":"comment","post":4711,"by":"ada","text":"a short notification of the usual size"}`)

// storeMem runs one case and prints its StoreMem:
//
//	events:        100 000 notifications in 1000 topics (all fit in the per-topic store)
//	topics:        500 000 notifications in 100 000 topics (5 each: more than 64 MiB)
//	bound:         2 000 000 events of 1 KiB in 100 000 topics (far more than 64 MiB)
func storeMem(c string) {
	var appended, topics int
	data := notification
	switch c {
	case "events":
		appended, topics = 100_000, 1000
	case "topics":
		appended, topics = 500_000, 100_000
	case "bound":
		appended, topics = 2_000_000, 100_000
		data = make([]byte, 1024)
		for i := range data {
			data[i] = 'x'
		}
	default:
		log.Fatalf("BENCH_STOREMEM=%q: want events, topics or bound", c)
	}
	_, has := reflect.TypeFor[sse.MemoryStoreOptions]().FieldByName("MaxBytes")
	r := StoreMem{Case: c, Appended: appended, Topics: topics, DataBytes: len(data), HasMaxBytes: has}
	ctx := context.Background()
	before := heapInUse()
	s, err := sse.NewMemoryStore(sse.MemoryStoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	var last uint64
	var spent time.Duration
	for i := range appended {
		// A fresh topic string and data copy per event, as a server's
		// publishes give: whatever the store keeps is its own.
		ev := sse.Event{Type: "notification", Data: append([]byte(nil), data...)}
		topic := "user/" + strconv.Itoa(i%topics)
		t0 := time.Now()
		e, err := s.Append(ctx, topic, ev)
		spent += time.Since(t0)
		if err != nil {
			log.Fatal(err)
		}
		last = e.Seq
		if c == "bound" && (i+1)%(appended/4) == 0 {
			r.PeakHeapBytes = max(r.PeakHeapBytes, heapInUse()-before)
		}
	}
	r.HeapBytes = heapInUse() - before
	r.AppendNS = float64(spent.Nanoseconds()) / float64(appended)
	names := make([]string, topics)
	for i := range names {
		names[i] = "user/" + strconv.Itoa(i)
	}
	floor, err := evictedBelow(ctx, s, last, names)
	if err != nil {
		log.Fatal(err)
	}
	r.Retained = int64(last - floor)
	if c == "events" {
		all, err := after(ctx, s, floor, names, int(last)+1)
		if err != nil || int64(len(all)) != r.Retained {
			log.Fatalf("After(%d) gave %d events (%v); the bisection found %d", floor, len(all), err, r.Retained)
		}
	}
	if r.Retained > 0 {
		r.BytesPerRetained = float64(r.HeapBytes) / float64(r.Retained)
	}
	runtime.KeepAlive(s)
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		log.Fatal(err)
	}
}

// evictedBelow returns the lowest position p in 0..last from which After
// resumes topics without ErrEvicted.
func evictedBelow(ctx context.Context, s *sse.MemoryStore, last uint64, topics []string) (uint64, error) {
	lo, hi := uint64(0), last // After(hi) never answers ErrEvicted
	for lo < hi {
		m := lo + (hi-lo)/2
		_, err := after(ctx, s, m, topics, 1)
		switch {
		case errors.Is(err, sse.ErrEvicted):
			lo = m + 1
		case err != nil:
			return 0, fmt.Errorf("After(%d): %w", m, err)
		default:
			hi = m
		}
	}
	return lo, nil
}

// heapInUse returns the live heap, after collecting garbage.
func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// after asks s for the entries of topics after position p, through
// whichever After the core being measured has: older cores take one
// position for all topics, newer ones a position per topic. The
// MemoryStore numbers all topics in one sequence, so both ask the same.
func after(ctx context.Context, s *sse.MemoryStore, p uint64, topics []string, limit int) ([]sse.Entry, error) {
	switch st := any(s).(type) {
	case interface {
		After(context.Context, []string, []uint64, int) ([]sse.Entry, error)
	}:
		ps := make([]uint64, len(topics))
		for i := range ps {
			ps[i] = p
		}
		return st.After(ctx, topics, ps, limit)
	case interface {
		After(context.Context, uint64, []string, int) ([]sse.Entry, error)
	}:
		return st.After(ctx, p, topics, limit)
	}
	return nil, fmt.Errorf("this core's MemoryStore has an After of type %T, which the store-memory mode does not know", reflect.ValueOf(s).MethodByName("After").Interface())
}
