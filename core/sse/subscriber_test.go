package sse

import (
	"context"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newTestHub(t *testing.T, opts Options) *Hub {
	t.Helper()
	h, err := NewHub(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func seqs(batch []queued) string {
	var s []string
	for _, q := range batch {
		s = append(s, strconv.FormatUint(q.seq, 10))
	}
	return strings.Join(s, ",")
}

func TestQueueLimits(t *testing.T) {
	data := make([]byte, 100)
	tests := []struct {
		name        string
		opts        Options
		frames      int
		wantSeqs    string
		wantDropped bool
		wantEnded   EndReason
	}{
		{"under both bounds", Options{MaxQueueEvents: 5, MaxQueueBytes: 1000}, 5, "1,2,3,4,5", false, 0},
		{"disconnect on events", Options{MaxQueueEvents: 3}, 5, "1,2,3", false, EndSlowConsumer},
		{"disconnect on bytes", Options{MaxQueueBytes: 250}, 5, "1,2", false, EndSlowConsumer},
		{"drop oldest on events", Options{MaxQueueEvents: 3, SlowConsumer: SlowConsumerDropOldest}, 5, "3,4,5", true, 0},
		{"drop oldest on bytes", Options{MaxQueueBytes: 250, SlowConsumer: SlowConsumerDropOldest}, 5, "4,5", true, 0},
		{"frame larger than the byte bound, disconnect", Options{MaxQueueBytes: 50}, 1, "1", false, 0},
		{"frame larger than the byte bound, drop oldest", Options{MaxQueueBytes: 50, SlowConsumer: SlowConsumerDropOldest}, 1, "1", false, 0},
		{"frames larger than the byte bound, drop oldest", Options{MaxQueueBytes: 50, SlowConsumer: SlowConsumerDropOldest}, 2, "2", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSubscriber(newTestHub(t, tt.opts), &StreamInfo{Topics: []string{"t"}})
			for i := 1; i <= tt.frames; i++ {
				s.enqueue(uint64(i), 0, &frame{b: data})
			}
			batch, reset, ended, _ := s.take()
			if dropped := reset == "dropped"; seqs(batch) != tt.wantSeqs || dropped != tt.wantDropped || ended != tt.wantEnded {
				t.Errorf("take() = [%s], reset %q, ended %v; want [%s], dropped %v, %v",
					seqs(batch), reset, ended, tt.wantSeqs, tt.wantDropped, tt.wantEnded)
			}
			if tt.wantEnded == 0 {
				if s.enqueue(99, 0, &frame{b: data}); s.queuedBytes() != len(data) {
					t.Errorf("after take, queue holds %d bytes, want %d", s.queuedBytes(), len(data))
				}
			}
		})
	}
}

func TestEnqueueWakesOncePerBatch(t *testing.T) {
	s := newSubscriber(newTestHub(t, Options{}), &StreamInfo{Topics: []string{"t"}})
	for i := range 10 {
		s.enqueue(uint64(i+1), 0, &frame{b: []byte("x")})
	}
	<-s.notify
	select {
	case <-s.notify:
		t.Fatal("a second wake-up for the same batch")
	default:
	}
	s.take()
	s.enqueue(11, 0, &frame{b: []byte("x")})
	select {
	case <-s.notify:
	default:
		t.Fatal("no wake-up for a new batch")
	}
}

// recorder is a StreamWriter that keeps every write.
type recorder struct{ writes []string }

func (r *recorder) Start() error { return nil }
func (r *recorder) Write(p []byte, _ time.Duration) error {
	r.writes = append(r.writes, string(p))
	return nil
}

// TestDropOldestSendsReset checks the bytes a SlowConsumerDropOldest stream writes: the
// reset event first, then the surviving events.
func TestDropOldestSendsReset(t *testing.T) {
	h := newTestHub(t, Options{MaxQueueEvents: 2, SlowConsumer: SlowConsumerDropOldest, Store: mustMemoryStore(t, "e")})
	s := newSubscriber(h, &StreamInfo{Topics: []string{"t"}})
	s.after = []uint64{7}
	for i := uint64(8); i <= 10; i++ {
		s.enqueue(i, 0, &frame{b: []byte("data: " + strconv.FormatUint(i, 10) + "\n\n")})
	}
	batch, reset, _, _ := s.take()
	var rec recorder
	if n, _, err := h.sendBatch(&rec, s, batch, reset, false, nil); n != 2 || err != nil {
		t.Fatalf("sendBatch = %d, %v", n, err)
	}
	want := "id: e-7\nevent: sse-reset\ndata: {\"reason\":\"dropped\"}\n\ndata: 9\n\ndata: 10\n\n"
	if got := strings.Join(rec.writes, ""); got != want || len(rec.writes) != 1 {
		t.Errorf("wrote %q in %d writes, want %q in one", got, len(rec.writes), want)
	}
}

func mustMemoryStore(t *testing.T, epoch string) *MemoryStore {
	s, err := NewMemoryStore(MemoryStoreOptions{Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHeartbeatSkipsActiveStreams drives the hub's ticker by hand.
func TestHeartbeatSkipsActiveStreams(t *testing.T) {
	h := newTestHub(t, Options{})
	active, idle := newSubscriber(h, &StreamInfo{Topics: []string{"t"}}), newSubscriber(h, &StreamInfo{Topics: []string{"t"}})
	h.register(context.Background(), active)
	h.register(context.Background(), idle)
	defer h.unregister(active)
	defer h.unregister(idle)

	active.wrote.Store(true)
	h.tick(time.Now())
	if active.beat.Load() || !idle.beat.Load() {
		t.Fatalf("after one tick: active beat %v, idle beat %v; want false, true", active.beat.Load(), idle.beat.Load())
	}
	select {
	case <-idle.notify:
	default:
		t.Fatal("idle stream not woken for its heartbeat")
	}
	h.tick(time.Now()) // nothing written since the last tick: now the active one is due too
	if !active.beat.Load() {
		t.Fatal("a stream silent for a whole tick got no heartbeat")
	}
}

func TestSendBatchSkipsReplayedEvents(t *testing.T) {
	h := newTestHub(t, Options{})
	s := newSubscriber(h, &StreamInfo{Topics: []string{"t"}})
	s.after = []uint64{5} // replay sent up to 5
	batch := []queued{{4, 0, &frame{b: []byte("4")}}, {5, 0, &frame{b: []byte("5")}}, {6, 0, &frame{b: []byte("6")}}, {7, 0, &frame{b: []byte("7")}}}
	var rec recorder
	if n, _, _ := h.sendBatch(&rec, s, batch, "", false, nil); n != 2 || strings.Join(rec.writes, "|") != "67" || s.after[0] != 7 {
		t.Errorf("sent %d as %q, after %d; want 2 as \"67\", 7", n, rec.writes, s.after)
	}
}

// TestSendBatchWrites checks how a batch is cut into writes: small frames
// gathered up to 64 KiB, large frames written as they are.
func TestSendBatchWrites(t *testing.T) {
	small := []byte(strings.Repeat("s", 1000))
	large := []byte(strings.Repeat("L", 40<<10))
	tests := []struct {
		name   string
		frames [][]byte
		want   []int // lengths of the writes
	}{
		{"one small frame", [][]byte{small}, []int{1000}},
		{"small frames gathered", [][]byte{small, small, small}, []int{3000}},
		{"gathered up to 64 KiB", repeat(small, 70), []int{65000, 5000}},
		{"large frame alone", [][]byte{small, large, small}, []int{1000, 40 << 10, 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, Options{})
			s := newSubscriber(h, &StreamInfo{Topics: []string{"t"}})
			var batch []queued
			for i, f := range tt.frames {
				batch = append(batch, queued{uint64(i + 1), 0, &frame{b: f}})
			}
			var rec recorder
			n, wrote, err := h.sendBatch(&rec, s, batch, "", false, nil)
			var lens []int
			for _, w := range rec.writes {
				lens = append(lens, len(w))
			}
			if n != len(tt.frames) || !wrote || err != nil || fmtInts(lens) != fmtInts(tt.want) {
				t.Errorf("sendBatch = %d, %v, %v; writes %v, want %v", n, wrote, err, lens, tt.want)
			}
		})
	}
}

func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func fmtInts(v []int) string {
	var s []string
	for _, x := range v {
		s = append(s, strconv.Itoa(x))
	}
	return strings.Join(s, ",")
}

// TestRegistry registers and unregisters subscribers of a few topics in
// random order, enough to span several chunks, and checks the registry's
// lists against a model after every step.
func TestRegistry(t *testing.T) {
	h := newTestHub(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]map[*subscriber]bool{}
	var live []*subscriber
	check := func(step int) {
		t.Helper()
		r := h.reg
		for topic, want := range model {
			ts := r.topics[topic]
			if len(want) == 0 {
				if ts != nil {
					t.Fatalf("step %d: topic %s has %d subscribers, want none", step, topic, ts.n)
				}
				continue
			}
			n := 0
			for ci, c := range *ts.chunks.Load() {
				if len(c.subs) != chunkSlots(ci) {
					t.Fatalf("step %d: %s chunk %d has %d slots, want %d", step, topic, ci, len(c.subs), chunkSlots(ci))
				}
				for i, m := range c.subs {
					s := m.s
					if s == nil {
						continue
					}
					n++
					if !want[s] {
						t.Fatalf("step %d: %s lists a subscriber it should not", step, topic)
					}
					j := slices.Index(s.topics, topic)
					if m.ti != j || s.slots[j] != (slot{c, i}) {
						t.Fatalf("step %d: subscriber at %s[%d][%d] thinks it is elsewhere", step, topic, ci, i)
					}
				}
			}
			slots := 0
			for _, c := range *ts.chunks.Load() {
				slots += len(c.subs)
			}
			if n != len(want) || ts.n != n || len(ts.free) != slots-n {
				t.Fatalf("step %d: %s lists %d (n %d, %d free of %d), want %d", step, topic, n, ts.n, len(ts.free), slots, len(want))
			}
		}
		if st := h.Stats(); st.Streams != len(live) {
			t.Fatalf("step %d: Stats %+v, want %d streams", step, st, len(live))
		}
	}
	topics := []string{"hot", "a", "b", "c"}
	for step := range 3000 {
		if len(live) == 0 || (rng.IntN(10) < 6 && len(live) < 1500) {
			ts := []string{"hot", topics[1+rng.IntN(3)]}
			s := newSubscriber(h, &StreamInfo{Topics: ts})
			h.register(context.Background(), s)
			live = append(live, s)
			for _, t := range ts {
				if model[t] == nil {
					model[t] = map[*subscriber]bool{}
				}
				model[t][s] = true
			}
		} else {
			i := rng.IntN(len(live))
			s := live[i]
			live = slices.Delete(live, i, i+1)
			h.unregister(s)
			for _, t := range s.topics {
				delete(model[t], s)
			}
		}
		check(step)
	}
	for _, s := range live {
		h.unregister(s)
	}
	if len(h.reg.topics) != 0 || h.Stats().Streams != 0 || h.Stats().Topics != 0 || h.stopBeat != nil {
		t.Fatalf("hub not empty: %d topics, Stats %+v, heartbeat running %v", len(h.reg.topics), h.Stats(), h.stopBeat != nil)
	}
}

// TestParallelFanOut: a hot topic's fan-out, spread over goroutines,
// queues every event for every subscriber once, in order.
func TestParallelFanOut(t *testing.T) {
	saved := fanOutWorkers
	fanOutWorkers = func() int { return 3 }
	t.Cleanup(func() { fanOutWorkers = saved })
	h := newTestHub(t, Options{Store: mustMemoryStore(t, "e")})
	const n = 3*parallelFanOut + 17
	subs := make([]*subscriber, n)
	for i := range subs {
		subs[i] = newSubscriber(h, &StreamInfo{Topics: []string{"hot"}})
		h.register(context.Background(), subs[i])
	}
	for i := range 5 {
		e, err := h.store.Append(context.Background(), "hot", Event{Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		if q, _, _, _ := h.fanOut(e); q != n {
			t.Fatalf("event %d queued for %d streams, want %d", i, q, n)
		}
	}
	for i, s := range subs {
		batch, _, _, _ := s.take()
		if got := seqs(batch); got != "1,2,3,4,5" {
			t.Fatalf("subscriber %d got [%s]", i, got)
		}
	}
	if got := h.Stats().QueuedBytes; got != 0 {
		t.Errorf("every queue taken: QueuedBytes %d", got)
	}
}

// TestSetStreamHeaders: a stream's headers, and no Content-Length.
func TestSetStreamHeaders(t *testing.T) {
	hdr := http.Header{"Content-Length": {"12"}, "X-Other": {"kept"}}
	setStreamHeaders(hdr)
	want := http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}, "X-Accel-Buffering": {"no"}, "X-Other": {"kept"}}
	if !reflect.DeepEqual(hdr, want) {
		t.Fatalf("got %v, want %v", hdr, want)
	}
}

// TestStatsQueuedBytesCountsSharedFramesOnce: an event queued for many
// streams is held once, and Stats says so.
func TestStatsQueuedBytesCountsSharedFramesOnce(t *testing.T) {
	h := newTestHub(t, Options{Store: mustMemoryStore(t, "e")})
	var subs []*subscriber
	for range 10 {
		s := newSubscriber(h, &StreamInfo{Topics: []string{"t"}})
		h.register(context.Background(), s)
		defer h.unregister(s)
		subs = append(subs, s)
	}
	size := 0
	for i := range 5 {
		e, err := h.store.Append(context.Background(), "t", Event{Data: make([]byte, 1000)})
		if err != nil {
			t.Fatal(err)
		}
		if q, _, _, _ := h.fanOut(e); q != 10 {
			t.Fatalf("event %d queued for %d streams, want 10", i, q)
		}
		size += len(appendValid(nil, &e.Event))
	}
	if st := h.Stats(); st.QueuedBytes != size || st.Streams != 10 || st.Topics != 1 {
		t.Errorf("Stats %+v, want QueuedBytes %d (5 shared events), 10 streams, 1 topic", st, size)
	}
	for _, s := range subs[:9] {
		s.take()
	}
	if got := h.Stats().QueuedBytes; got != size {
		t.Errorf("with one stream left holding the events: QueuedBytes %d, want %d", got, size)
	}
	subs[9].take()
	if got := h.Stats().QueuedBytes; got != 0 {
		t.Errorf("every queue taken: QueuedBytes %d, want 0", got)
	}
}
