package sse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
	"unsafe"
)

// testStore returns a MemoryStore whose clock is *clock.
func testStore(t testing.TB, opts MemoryStoreOptions) (*MemoryStore, *time.Time) {
	t.Helper()
	if opts.Epoch == "" {
		opts.Epoch = "e1"
	}
	s, err := NewMemoryStore(opts)
	if err != nil {
		t.Fatalf("NewMemoryStore(%+v): %v", opts, err)
	}
	clock := s.start
	s.now = func() time.Time { return clock }
	return s, &clock
}

func storeAppend(t testing.TB, s *MemoryStore, topic, data string) uint64 {
	t.Helper()
	e, err := s.Append(context.Background(), topic, Event{Data: []byte(data)})
	if err != nil {
		t.Fatalf("Append(%q): %v", topic, err)
	}
	return e.Seq
}

// kept returns the Seqs s keeps for topic, oldest first.
func (s *MemoryStore) kept(topic string) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[topic]
	if t == nil {
		return nil
	}
	var out []uint64
	for i := 0; i < int(t.n); i++ {
		out = append(out, t.at(i).seq)
	}
	return out
}

// check fails the test unless the store's invariants hold.
func (s *MemoryStore) check(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	bytes := mapPlaceBytes * int64(s.peak)
	events, empty := 0, 0
	for name, t := range s.topics {
		if t.name != name {
			tb.Fatalf("topic %q filed under %q", t.name, name)
		}
		bytes += topicBytes + nameBytes(name) + ringBytes(cap(t.recs))
		if int(t.n) > s.perTopic || len(t.recs) > s.perTopic || int(t.n) > len(t.recs) {
			tb.Fatalf("topic %q holds %d in a ring of %d; at most %d per topic", name, t.n, len(t.recs), s.perTopic)
		}
		prev := t.dropped
		for i := 0; i < int(t.n); i++ {
			r := t.at(i)
			if r.seq <= prev {
				tb.Fatalf("topic %q: Seq %d after %d (dropped %d)", name, r.seq, prev, t.dropped)
			}
			if ev, _ := decodeFrame(string(r.frame), nil); ev.ID != msID(s, r.seq) {
				tb.Fatalf("topic %q: the frame of Seq %d has ID %q", name, r.seq, ev.ID)
			}
			prev = r.seq
			bytes += int64(cap(r.frame))
		}
		events += int(t.n)
		if t.n > 0 {
			if t.heapIdx < 0 || int(t.heapIdx) >= len(s.live) || s.live[t.heapIdx].t != t || s.live[t.heapIdx].oldest != t.oldest() {
				tb.Fatalf("topic %q with events is not at its place %d in the heap", name, t.heapIdx)
			}
			if t.oldest() <= s.forgotten {
				tb.Fatalf("topic %q keeps Seq %d, not above what forgotten topics lost (%d)", name, t.oldest(), s.forgotten)
			}
		} else {
			empty++
			if t.heapIdx != -1 || t.recs != nil {
				tb.Fatalf("topic %q without events: heap place %d, ring of %d", name, t.heapIdx, cap(t.recs))
			}
		}
	}
	if len(s.live) != len(s.topics)-empty {
		tb.Fatalf("heap of %d topics, %d have events", len(s.live), len(s.topics)-empty)
	}
	for i := 1; i < len(s.live); i++ {
		if s.live[(i-1)/2].oldest > s.live[i].oldest {
			tb.Fatalf("heap order broken at %d", i)
		}
	}
	n, prev := 0, s.forgotten
	for t := s.tombs.head; t != nil; t = t.next {
		if s.topics[t.name] != t || t.n != 0 {
			tb.Fatalf("tombstone %q is not an empty topic of the store", t.name)
		}
		if t.dropped < prev {
			tb.Fatalf("tombstone %q lost Seq %d, after one that lost %d", t.name, t.dropped, prev)
		}
		if len(s.live) > 0 && t.dropped >= s.live[0].oldest {
			tb.Fatalf("tombstone %q lost Seq %d, not older than every event kept", t.name, t.dropped)
		}
		if (t.next == nil) != (s.tombs.tail == t) || (t.next != nil && t.next.prev != t) {
			tb.Fatalf("tombstone list broken at %q", t.name)
		}
		prev = t.dropped
		n++
	}
	if n != empty {
		tb.Fatalf("%d tombstones, %d empty topics", n, empty)
	}
	if events != s.events || bytes != s.bytes {
		tb.Fatalf("counted %d events and %d bytes; the store says %d and %d", events, bytes, s.events, s.bytes)
	}
	if s.bytes > s.maxBytes || (s.maxEvents > 0 && s.events > s.maxEvents) || s.peak < len(s.topics) {
		tb.Fatalf("%d bytes, %d events, map peak %d for %d topics: over the bounds %d bytes, %d events",
			s.bytes, s.events, s.peak, len(s.topics), s.maxBytes, s.maxEvents)
	}
}

func TestMemoryStoreRecordSize(t *testing.T) {
	if got := unsafe.Sizeof(record{}); int64(got) != recordBytes && unsafe.Sizeof(uintptr(0)) == 8 {
		t.Fatalf("a record takes %d bytes; recordBytes says %d", got, recordBytes)
	}
}

// TestMemoryStoreRetention checks, step by step, what each bound drops and
// what After then answers for each topic.
func TestMemoryStoreRetention(t *testing.T) {
	type step struct {
		topic   string        // append an event to topic; "" for none
		advance time.Duration // move the clock first
	}
	type query struct {
		after   uint64
		topics  []string
		want    []uint64 // nil with evicted
		evicted bool
	}
	ev := func(topics ...string) []step {
		var out []step
		for _, t := range topics {
			out = append(out, step{topic: t})
		}
		return out
	}
	repeat := func(topic string, n int) []step {
		out := make([]step, n)
		for i := range out {
			out[i].topic = topic
		}
		return out
	}
	cat := func(parts ...[]step) []step { return slices.Concat(parts...) }
	tests := []struct {
		name    string
		opts    MemoryStoreOptions
		steps   []step
		queries []query
	}{
		{
			name:  "per-topic count drops only the full topic's oldest",
			opts:  MemoryStoreOptions{MaxEventsPerTopic: 3},
			steps: ev("a", "b", "a", "a", "a", "a"), // a: 1 3 4 5 6, b: 2
			queries: []query{
				{0, []string{"b"}, []uint64{2}, false},
				{0, []string{"a"}, nil, true},
				{2, []string{"a"}, nil, true},
				{3, []string{"a"}, []uint64{4, 5, 6}, false}, // 1 and 3 were dropped, but the client had them
				{4, []string{"a"}, []uint64{5, 6}, false},
				{3, []string{"b"}, []uint64{}, false},
				{0, []string{"a", "b"}, nil, true},
				{4, []string{"a", "b"}, []uint64{5, 6}, false},
				{0, []string{"b", "unknown"}, []uint64{2}, false},
			},
		},
		{
			name:  "a quiet topic survives a loud one",
			opts:  MemoryStoreOptions{MaxEventsPerTopic: 10},
			steps: cat(ev("quiet"), repeat("loud", 5000), ev("quiet")),
			queries: []query{
				{0, []string{"quiet"}, []uint64{1, 5002}, false},
				{0, []string{"loud"}, nil, true},
				{4990, []string{"loud"}, nil, true},
				{4991, []string{"loud", "quiet"}, []uint64{4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999, 5000, 5001, 5002}, false},
			},
		},
		{
			name:  "global count drops the oldest of all topics",
			opts:  MemoryStoreOptions{MaxEvents: 4},
			steps: ev("a", "b", "c", "a", "b", "b"), // keeps 3 4 5 6
			queries: []query{
				{0, []string{"c"}, []uint64{3}, false}, // c lost nothing
				{0, []string{"a"}, nil, true},
				{1, []string{"a"}, []uint64{4}, false},
				{1, []string{"b"}, nil, true},
				{2, []string{"b", "c"}, []uint64{3, 5, 6}, false},
			},
		},
		{
			name: "age drops the oldest of all topics",
			opts: MemoryStoreOptions{MaxAge: time.Hour},
			steps: []step{
				{topic: "a"}, {topic: "b", advance: 30 * time.Minute}, {topic: "a", advance: 20 * time.Minute},
				{advance: 11 * time.Minute}, // the first a is 61 minutes old
			},
			queries: []query{
				{0, []string{"b"}, []uint64{2}, false},
				{0, []string{"a"}, nil, true},
				{1, []string{"a", "b"}, []uint64{2, 3}, false},
			},
		},
		{
			name: "age empties a topic: it remembers what it lost",
			opts: MemoryStoreOptions{MaxAge: time.Hour},
			steps: []step{
				{topic: "a"}, {topic: "a"}, {topic: "b", advance: 59 * time.Minute},
				{advance: 2 * time.Minute},
			},
			queries: []query{
				{0, []string{"a"}, nil, true},
				{1, []string{"a"}, nil, true},
				{2, []string{"a"}, []uint64{}, false},
				{0, []string{"b"}, []uint64{3}, false},
				{0, []string{"never"}, []uint64{}, false}, // nothing was forgotten
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := testStore(t, tt.opts)
			for _, st := range tt.steps {
				*clock = clock.Add(st.advance)
				if st.topic != "" {
					storeAppend(t, s, st.topic, "x")
				}
				s.check(t)
			}
			for _, q := range tt.queries {
				got, err := msAfter(context.Background(), s, q.after, q.topics, 100)
				if q.evicted {
					if !errors.Is(err, ErrEvicted) {
						t.Errorf("After(%d, %q) = %v, %v; want ErrEvicted", q.after, q.topics, seqsOf(got), err)
					}
					continue
				}
				if err != nil || !slices.Equal(seqsOf(got), q.want) {
					t.Errorf("After(%d, %q) = %v, %v; want %v", q.after, q.topics, seqsOf(got), err, q.want)
				}
			}
			s.check(t)
		})
	}
}

// TestMemoryStoreBytes checks MaxBytes: a store is given the bytes that
// steps take in a store without the bound, less some, and must drop the
// oldest events of all topics to keep within it.
func TestMemoryStoreBytes(t *testing.T) {
	var quietThenLoud []string
	quietThenLoud = append(quietThenLoud, "quiet")
	for range 5000 {
		quietThenLoud = append(quietThenLoud, "loud")
	}
	tests := []struct {
		name     string
		perTopic int
		steps    []string
		measure  int // the bound is what this many of the first steps take
		less     int64
		want     map[string][]uint64 // what each topic keeps
		evicted  map[string]uint64   // After(0..this-1, topic) gives ErrEvicted
	}{
		{
			name: "the oldest event of all goes first", perTopic: 100,
			steps: []string{"q1", "q2", "q1", "q1", "q3"}, less: 1,
			want:    map[string][]uint64{"q1": {3, 4}, "q2": {2}, "q3": {5}},
			evicted: map[string]uint64{"q1": 1, "q2": 0, "q3": 0},
		},
		{
			name: "then the next, emptying a topic", perTopic: 100,
			steps: []string{"q1", "q2", "q1", "q1", "q3"}, less: 30,
			want:    map[string][]uint64{"q1": {3, 4}, "q2": nil, "q3": {5}},
			evicted: map[string]uint64{"q1": 1, "q2": 2, "q3": 0},
		},
		{
			name: "a loud topic keeps within its count: the quiet one survives", perTopic: 10,
			steps: quietThenLoud, measure: 11,
			want:    map[string][]uint64{"quiet": {1}, "loud": {4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999, 5000, 5001}},
			evicted: map[string]uint64{"quiet": 0, "loud": 4991},
		},
		{
			name: "without a count per topic, the loud one pushes the quiet one out", perTopic: 1 << 20,
			steps: quietThenLoud, measure: 11,
			want:    map[string][]uint64{"quiet": nil},
			evicted: map[string]uint64{"quiet": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			measure := tt.measure
			if measure == 0 {
				measure = len(tt.steps)
			}
			free, _ := testStore(t, MemoryStoreOptions{MaxEventsPerTopic: min(tt.perTopic, 10)})
			for _, topic := range tt.steps[:measure] {
				storeAppend(t, free, topic, "x")
			}
			s, _ := testStore(t, MemoryStoreOptions{MaxEventsPerTopic: tt.perTopic, MaxBytes: int(free.bytes - tt.less)})
			for _, topic := range tt.steps {
				storeAppend(t, s, topic, "x")
				s.check(t)
			}
			for topic, want := range tt.want {
				if got := s.kept(topic); !slices.Equal(got, want) {
					t.Errorf("%s keeps %v, want %v", topic, got, want)
				}
			}
			for topic, upTo := range tt.evicted {
				for after := uint64(0); after <= upTo; after++ {
					_, err := msAfter(context.Background(), s, after, []string{topic}, 10)
					if wantEvicted := after < upTo; errors.Is(err, ErrEvicted) != wantEvicted || (!wantEvicted && err != nil) {
						t.Errorf("After(%d, [%s]): %v; want evicted %v", after, topic, err, wantEvicted)
					}
				}
			}
		})
	}
}

func seqsOf(entries []Entry) []uint64 {
	out := []uint64{}
	for _, e := range entries {
		out = append(out, e.Seq)
	}
	return out
}

// TestMemoryStoreForgottenTopic follows a topic whose every event is
// dropped and which is then forgotten: a client that resumes on it from
// before its loss must get ErrEvicted, never a silent gap, also once the
// topic has events again.
func TestMemoryStoreForgottenTopic(t *testing.T) {
	// Room for the events of about three topics.
	s, _ := testStore(t, MemoryStoreOptions{MaxBytes: 3*(24+48+topicBytes+16+mapPlaceBytes) + 50})
	x := storeAppend(t, s, "x1", "x") // Seq 1
	if got := s.kept("x1"); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("x1 keeps %v", got)
	}
	for i := 2; i <= 10; i++ {
		storeAppend(t, s, "t"+strconv.Itoa(i%10), "x")
		s.check(t)
	}
	s.mu.Lock()
	_, known := s.topics["x1"]
	forgotten := s.forgotten
	s.mu.Unlock()
	if known || forgotten < x {
		t.Fatalf("x1 known %v, forgotten %d: the test did not make the store forget x1", known, forgotten)
	}
	check := func(when string, after uint64, wantEvicted bool) {
		t.Helper()
		got, err := msAfter(context.Background(), s, after, []string{"x1"}, 10)
		if wantEvicted != errors.Is(err, ErrEvicted) {
			t.Errorf("%s: After(%d, [x1]) = %v, %v; want evicted %v", when, after, seqsOf(got), err, wantEvicted)
		}
	}
	check("forgotten", 0, true)
	check("forgotten", forgotten-1, true)
	check("forgotten", forgotten, false)
	// Never seen: the store cannot tell it from a forgotten topic.
	if _, err := msAfter(context.Background(), s, 0, []string{"never"}, 10); !errors.Is(err, ErrEvicted) {
		t.Errorf("After(0, [never]) = %v; want ErrEvicted, as for a forgotten topic", err)
	}
	newest := storeAppend(t, s, "x1", "again")
	s.check(t)
	check("back", 0, true)
	check("back", forgotten-1, true)
	got, err := msAfter(context.Background(), s, forgotten, []string{"x1"}, 10)
	if err != nil || !slices.Equal(seqsOf(got), []uint64{newest}) {
		t.Errorf("back: After(%d, [x1]) = %v, %v; want [%d]", forgotten, seqsOf(got), err, newest)
	}
}

// TestMemoryStoreModel runs random appends and resumes against a model
// that remembers every event: After must return exactly the events of its
// topics after the position, in Seq order, or ErrEvicted when one of them
// is gone (or the store cannot tell, for a topic it forgot).
func TestMemoryStoreModel(t *testing.T) {
	tests := []struct {
		name    string
		opts    MemoryStoreOptions
		topics  int
		appends int
		advance time.Duration // the clock moves up to this before each append
	}{
		{"per topic", MemoryStoreOptions{MaxEventsPerTopic: 7}, 40, 3000, 0},
		{"bytes", MemoryStoreOptions{MaxEventsPerTopic: 50, MaxBytes: 16 << 10}, 60, 3000, 0},
		{"bytes, topics forgotten", MemoryStoreOptions{MaxEventsPerTopic: 4, MaxBytes: 12 << 10}, 400, 4000, 0},
		{"global count", MemoryStoreOptions{MaxEvents: 100}, 40, 3000, 0},
		{"age", MemoryStoreOptions{MaxAge: time.Minute}, 40, 3000, time.Second},
		{"all bounds", MemoryStoreOptions{MaxEventsPerTopic: 20, MaxBytes: 24 << 10, MaxEvents: 150, MaxAge: time.Minute}, 100, 4000, time.Second},
		{"many topics, map rebuilt", MemoryStoreOptions{MaxEventsPerTopic: 2, MaxBytes: 600 << 10}, 20000, 12000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tt.name))))
			s, clock := testStore(t, tt.opts)
			type modelEvent struct {
				topic, data string
			}
			var model []modelEvent // model[seq-1]
			// A few loud topics, many quiet ones.
			pick := func() string {
				if rng.IntN(2) == 0 {
					return "loud" + strconv.Itoa(rng.IntN(3))
				}
				return "q" + strconv.Itoa(rng.IntN(tt.topics))
			}
			for i := 0; i < tt.appends; i++ {
				if tt.advance > 0 {
					*clock = clock.Add(time.Duration(rng.Int64N(int64(tt.advance))))
				}
				topic := pick()
				data := fmt.Sprintf("%s/%d%s", topic, i, make([]byte, rng.IntN(40)))
				if seq := storeAppend(t, s, topic, data); seq != uint64(len(model)+1) {
					t.Fatalf("Seq %d, want %d", seq, len(model)+1)
				}
				model = append(model, modelEvent{topic, data})
				if i%97 == 0 || i == tt.appends-1 {
					s.check(t)
				}
				if i%5 != 0 {
					continue
				}
				// A resume on 1 to 32 topics, some named twice or unknown.
				topics := make([]string, 1+rng.IntN(32))
				for j := range topics {
					topics[j] = pick()
				}
				if rng.IntN(4) == 0 {
					topics = append(topics, topics[0], "unknown")
				}
				after := uint64(rng.IntN(len(model) + 1))
				if rng.IntN(2) == 0 {
					after = uint64(max(0, len(model)-rng.IntN(200)))
				}
				limit := 1 + rng.IntN(300)
				got, err := msAfter(context.Background(), s, after, topics, limit)
				var want []uint64
				lost := false
				for seq := after + 1; seq <= uint64(len(model)); seq++ {
					if !slices.Contains(topics, model[seq-1].topic) {
						continue
					}
					if !slices.Contains(s.kept(model[seq-1].topic), seq) {
						lost = true
					}
					if len(want) < limit {
						want = append(want, seq)
					}
				}
				switch {
				case errors.Is(err, ErrEvicted):
					if !lost && !s.mayHaveForgotten(after, topics) {
						t.Fatalf("After(%d, %q): ErrEvicted, but every event of those topics after it is kept", after, topics)
					}
				case err != nil:
					t.Fatalf("After(%d, %q): %v", after, topics, err)
				case lost:
					t.Fatalf("After(%d, %q) = %v: a silent gap, events of those topics were dropped", after, topics, seqsOf(got))
				case !slices.Equal(seqsOf(got), want):
					t.Fatalf("After(%d, %q, %d) = %v, want %v", after, topics, limit, seqsOf(got), want)
				default:
					for _, e := range got {
						if m := model[e.Seq-1]; e.Topic != m.topic || string(e.Event.Data) != m.data {
							t.Fatalf("Seq %d: {%q %q}, want {%q %q}", e.Seq, e.Topic, e.Event.Data, m.topic, m.data)
						}
					}
				}
			}
		})
	}
}

// mayHaveForgotten reports whether one of topics may have lost an event
// after Seq after that the store no longer knows of: it does not know the
// topic, or knows it only since it forgot topics that lost up to a Seq
// after after.
func (s *MemoryStore) mayHaveForgotten(after uint64, topics []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if after >= s.forgotten {
		return false
	}
	for _, name := range topics {
		if t := s.topics[name]; t == nil || t.dropped <= s.forgotten {
			return true
		}
	}
	return false
}

// TestMemoryStoreMemoryBound fills a store with 100 000 topics, far past
// MaxBytes, and checks that the heap it holds stays within MaxBytes: what
// the store counts against it must stand for all it holds.
func TestMemoryStoreMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates some 500 MB")
	}
	small := []byte(`{"type":"comment","post":4711,"by":"ada","text":"a short notification of the usual size"}`)
	large := bytes.Repeat([]byte("x"), 1024)
	for _, tc := range []struct {
		name  string
		data  []byte
		each  int
		slack int64 // of MaxBytes, in thousandths
	}{
		{"notifications", small, 5, 5},
		// Topics come and go: the map of topics and the rings of one
		// record are where counts fell short.
		{"churn", large, 4, 5},
	} {
		t.Run(tc.name, func(t *testing.T) { testMemoryBound(t, tc.data, tc.each, tc.slack) })
	}
}

func testMemoryBound(t *testing.T, data []byte, each int, slack int64) {
	const maxBytes = 32 << 20
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	s, _ := testStore(t, MemoryStoreOptions{MaxBytes: maxBytes})
	const topics = 100_000
	for i := range topics * each {
		topic := "user/" + strconv.Itoa(i%topics)
		if _, err := s.Append(context.Background(), topic, Event{Type: "notification", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	s.check(t)
	held := int64(heap()) - int64(before)
	s.mu.Lock()
	counted, events, known := s.bytes, s.events, len(s.topics)
	s.mu.Unlock()
	t.Logf("%d events of %d topics kept (%d known): heap %d bytes, counted %d, MaxBytes %d", events, topics, known, held, counted, maxBytes)
	// The counts stand for sizes that vary a little (the map's load,
	// allocation size classes).
	if held > maxBytes+maxBytes*slack/1000 {
		t.Errorf("the store holds %d bytes of heap, over MaxBytes %d (it counts %d)", held, maxBytes, counted)
	}
	runtime.KeepAlive(s)
}
