package sse_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// msNew returns a MemoryStore or fails the test.
func msNew(t *testing.T, opts sse.MemoryStoreOptions) *sse.MemoryStore {
	t.Helper()
	s, err := sse.NewMemoryStore(opts)
	if err != nil {
		t.Fatalf("NewMemoryStore(%+v): %v", opts, err)
	}
	return s
}

// msAppend appends an event with data on topic or fails the test.
func msAppend(t *testing.T, s sse.Store, topic, data string) sse.Entry {
	t.Helper()
	e, err := s.Append(context.Background(), topic, sse.Event{Data: []byte(data)})
	if err != nil {
		t.Fatalf("Append(%q, %q): %v", topic, data, err)
	}
	return e
}

// msMustAfter calls After or fails the test.
func msMustAfter(t *testing.T, s sse.Store, after uint64, topics []string, limit int) []sse.Entry {
	t.Helper()
	got, err := msAfter(context.Background(), s, after, topics, limit)
	if err != nil {
		t.Fatalf("After(%d, %q, %d): %v", after, topics, limit, err)
	}
	return got
}

func msSeqs(entries []sse.Entry) []uint64 {
	out := make([]uint64, len(entries))
	for i, e := range entries {
		out[i] = e.Seq
	}
	return out
}

// msTopics is the round-robin topic of the event with seq in the fill tests.
var msTopics = []string{"red", "green", "blue"}

func msTopicOf(seq uint64) string { return msTopics[seq%uint64(len(msTopics))] }

// msFill appends n events; the event with Seq q has data "ev<q>" and topic
// msTopicOf(q).
func msFill(t *testing.T, s sse.Store, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		seq := uint64(i + 1)
		e := msAppend(t, s, msTopicOf(seq), "ev"+strconv.FormatUint(seq, 10))
		if e.Seq != seq {
			t.Fatalf("append #%d: Seq %d, want %d", i+1, e.Seq, seq)
		}
	}
}

// msCheckWindow checks that s holds exactly the events oldest..newest made
// by msFill, in order, with their topics, data and IDs intact.
func msCheckWindow(t *testing.T, s sse.Store, oldest, newest uint64) {
	t.Helper()
	got := msMustAfter(t, s, oldest-1, msTopics, int(newest)+10)
	if want := int(newest - oldest + 1); len(got) != want {
		t.Fatalf("window %d..%d: After(%d) returned %d entries, want %d", oldest, newest, oldest-1, len(got), want)
	}
	for i, e := range got {
		seq := oldest + uint64(i)
		if e.Seq != seq || e.Topic != msTopicOf(seq) || string(e.Event.Data) != "ev"+strconv.FormatUint(seq, 10) || e.Event.ID != msID(s, seq) {
			t.Fatalf("window %d..%d: entry %d = {Seq %d, Topic %q, Data %q, ID %q}, want {Seq %d, Topic %q, Data %q, ID %q}",
				oldest, newest, i, e.Seq, e.Topic, e.Event.Data, e.Event.ID, seq, msTopicOf(seq), "ev"+strconv.FormatUint(seq, 10), msID(s, seq))
		}
	}
	// One topic alone: same entries, filtered, still oldest first.
	red := msMustAfter(t, s, oldest-1, []string{"red"}, int(newest)+10)
	var want []uint64
	for q := oldest; q <= newest; q++ {
		if msTopicOf(q) == "red" {
			want = append(want, q)
		}
	}
	if !slices.Equal(msSeqs(red), want) {
		t.Fatalf("window %d..%d: After(%d, [red]) = %v, want %v", oldest, newest, oldest-1, msSeqs(red), want)
	}
	if oldest > 1 {
		if _, err := msAfter(context.Background(), s, 0, msTopics, 10); !errors.Is(err, sse.ErrEvicted) {
			t.Fatalf("window %d..%d: After(0) error %v, want ErrEvicted", oldest, newest, err)
		}
		if _, err := msAfter(context.Background(), s, oldest-2, msTopics, 10); !errors.Is(err, sse.ErrEvicted) {
			t.Fatalf("window %d..%d: After(%d) error %v, want ErrEvicted", oldest, newest, oldest-2, err)
		}
	}
}

func TestMemoryStoreAppend(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	steps := []struct {
		topic string
		ev    sse.Event
	}{
		{"a", sse.Event{Data: []byte("one")}},
		{"b", sse.Event{Type: "kind", Data: []byte("two")}},
		{"a", sse.Event{Data: []byte("three"), Comment: "note"}},
		{"c", sse.Event{ID: "caller-set", Data: []byte("four")}}, // the store replaces the ID
		{"a", sse.Event{}},
	}
	var prev time.Time
	for i, st := range steps {
		before := time.Now()
		e, err := s.Append(context.Background(), st.topic, st.ev)
		after := time.Now()
		if err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
		wantSeq := uint64(i + 1)
		wantID := "e1-" + strconv.FormatUint(wantSeq, 10)
		if e.Seq != wantSeq {
			t.Errorf("Append #%d: Seq %d, want %d", i, e.Seq, wantSeq)
		}
		if e.Topic != st.topic {
			t.Errorf("Append #%d: Topic %q, want %q", i, e.Topic, st.topic)
		}
		if e.Event.ID != wantID {
			t.Errorf("Append #%d: Event.ID %q, want %q", i, e.Event.ID, wantID)
		}
		if got := msID(s, wantSeq); got != wantID {
			t.Errorf("ID(%d) = %q, want %q", wantSeq, got, wantID)
		}
		if e.Event.Type != st.ev.Type || string(e.Event.Data) != string(st.ev.Data) || e.Event.Comment != st.ev.Comment {
			t.Errorf("Append #%d: Event %+v does not keep the fields of %+v", i, e.Event, st.ev)
		}
		if e.Time.Before(before) || e.Time.After(after) {
			t.Errorf("Append #%d: Time %v outside [%v, %v]", i, e.Time, before, after)
		}
		if e.Time.Before(prev) {
			t.Errorf("Append #%d: Time %v before the previous entry's %v", i, e.Time, prev)
		}
		prev = e.Time
		if pos, err := msPosition(s, e.Event.ID); err != nil || pos != wantSeq {
			t.Errorf("Position(%q) = %d, %v; want %d, nil", e.Event.ID, pos, err, wantSeq)
		}
	}
	// The stored entries are what Append returned.
	got := msMustAfter(t, s, 0, []string{"a", "b", "c"}, 100)
	if !slices.Equal(msSeqs(got), []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("After(0) seqs %v, want 1..5", msSeqs(got))
	}
	if got[3].Event.ID != "e1-4" || got[1].Event.Type != "kind" || got[2].Event.Comment != "note" {
		t.Errorf("stored entries lost fields: %+v", got)
	}
}

func TestMemoryStoreDefaultEpochIDs(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{})
	re := regexp.MustCompile(`^([0-9A-Za-z]{1,32})-([1-9][0-9]*)$`)
	var epoch string
	for i := 1; i <= 3; i++ {
		e := msAppend(t, s, "t", "x")
		m := re.FindStringSubmatch(e.Event.ID)
		if m == nil {
			t.Fatalf("ID %q does not look like <epoch>-<seq>", e.Event.ID)
		}
		if m[2] != strconv.Itoa(i) {
			t.Errorf("ID %q: seq part %s, want %d", e.Event.ID, m[2], i)
		}
		if epoch == "" {
			epoch = m[1]
		} else if m[1] != epoch {
			t.Errorf("ID %q: epoch changed from %q", e.Event.ID, epoch)
		}
	}
	if got := msID(s, 0); got != epoch+"-0" {
		t.Errorf("ID(0) = %q, want %q", got, epoch+"-0")
	}
}

func TestMemoryStoreAfter(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	// Seq: 1  2  3  4  5  6
	//      a  b  a  c  a  b
	for _, topic := range []string{"a", "b", "a", "c", "a", "b"} {
		msAppend(t, s, topic, topic)
	}
	tests := []struct {
		name   string
		after  uint64
		topics []string
		limit  int
		want   []uint64
	}{
		{"one topic from start", 0, []string{"a"}, 100, []uint64{1, 3, 5}},
		{"two topics interleaved", 0, []string{"a", "b"}, 100, []uint64{1, 2, 3, 5, 6}},
		{"topic order irrelevant", 0, []string{"b", "a"}, 100, []uint64{1, 2, 3, 5, 6}},
		{"all topics", 0, []string{"a", "b", "c"}, 100, []uint64{1, 2, 3, 4, 5, 6}},
		{"duplicate topic once", 0, []string{"a", "a"}, 100, []uint64{1, 3, 5}},
		{"limit keeps oldest", 0, []string{"a", "b", "c"}, 2, []uint64{1, 2}},
		{"limit counts matches only", 0, []string{"a"}, 2, []uint64{1, 3}},
		{"limit exact", 0, []string{"a"}, 3, []uint64{1, 3, 5}},
		{"limit one", 2, []string{"a", "b", "c"}, 1, []uint64{3}},
		{"limit zero", 0, []string{"a"}, 0, nil},
		{"after middle", 3, []string{"a"}, 100, []uint64{5}},
		{"after exclusive", 1, []string{"a"}, 100, []uint64{3, 5}},
		{"after middle all", 3, []string{"a", "b", "c"}, 100, []uint64{4, 5, 6}},
		{"after newest", 6, []string{"a", "b", "c"}, 100, nil},
		{"after last of topic", 5, []string{"a"}, 100, nil},
		{"unknown topic", 0, []string{"zzz"}, 100, nil},
		{"no topics", 0, nil, 100, nil},
		{"topic prefix is not a match", 0, []string{""}, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := msMustAfter(t, s, tt.after, tt.topics, tt.limit)
			if !slices.Equal(msSeqs(got), tt.want) {
				t.Fatalf("After(%d, %q, %d) = %v, want %v", tt.after, tt.topics, tt.limit, msSeqs(got), tt.want)
			}
			for _, e := range got {
				if !slices.Contains(tt.topics, e.Topic) || e.Event.ID != msID(s, e.Seq) || string(e.Event.Data) != e.Topic {
					t.Errorf("entry %+v does not match its topic filter %q or its ID", e, tt.topics)
				}
			}
		})
	}

	for _, after := range []uint64{7, 8, 1 << 40, ^uint64(0)} {
		if got, err := msAfter(context.Background(), s, after, []string{"a"}, 10); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("After(%d) beyond newest = %v, %v; want ErrUnknownID", after, msSeqs(got), err)
		}
	}
}

func TestMemoryStoreAfterEmpty(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	if got := msMustAfter(t, s, 0, []string{"a"}, 10); len(got) != 0 {
		t.Errorf("After(0) on an empty store = %v, want none", msSeqs(got))
	}
	if _, err := msAfter(context.Background(), s, 1, []string{"a"}, 10); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("After(1) on an empty store: %v, want ErrUnknownID", err)
	}
}

// msCountOptions returns the options that make a store keep the newest kept
// events of msFill: MaxEvents, or, when perTopic is set and kept is a
// multiple of the three topics msFill takes turns on, MaxEventsPerTopic.
// ok is false when kept cannot be expressed so.
func msCountOptions(kept int, perTopic bool) (opts sse.MemoryStoreOptions, ok bool) {
	opts.Epoch = "e1"
	switch {
	case !perTopic:
		opts.MaxEvents = kept
	case kept%len(msTopics) == 0:
		opts.MaxEventsPerTopic = kept / len(msTopics)
	default:
		return opts, false
	}
	return opts, true
}

// TestMemoryStoreEvictByCount checks, for every position, what After says
// once a count bound has dropped old events: MaxEvents for all topics, or
// MaxEventsPerTopic, which for msFill's topics in turn keeps the same
// window.
func TestMemoryStoreEvictByCount(t *testing.T) {
	tests := []struct{ max, appends int }{
		{1, 1}, {1, 2}, {1, 5},
		{3, 2}, {3, 3}, {3, 4}, {3, 23},
		{5, 4}, {5, 5}, {5, 6}, {5, 7}, {5, 23},
		{6, 5}, {6, 6}, {6, 7}, {6, 8}, {6, 23},
		{63, 63}, {63, 64}, {63, 200},
		{64, 64}, {64, 65}, {64, 200},
		{65, 65}, {65, 66}, {65, 300},
		{100, 99}, {100, 100}, {100, 101}, {100, 1000},
		{300, 299}, {300, 300}, {300, 301}, {300, 1000},
	}
	for _, tt := range tests {
		for _, perTopic := range []bool{false, true} {
			opts, ok := msCountOptions(tt.max, perTopic)
			if !ok {
				continue
			}
			t.Run(fmt.Sprintf("max%d/n%d/perTopic=%v", tt.max, tt.appends, perTopic), func(t *testing.T) {
				msCheckEvictByCount(t, opts, tt.max, tt.appends)
			})
		}
	}
}

// msCheckEvictByCount fills a store made with opts, which keeps the newest
// kept events, and checks what After says for every position.
func msCheckEvictByCount(t *testing.T, opts sse.MemoryStoreOptions, kept, appends int) {
	t.Helper()
	s := msNew(t, opts)
	msFill(t, s, appends)
	n := uint64(appends)
	oldest := uint64(1)
	if appends > kept {
		oldest = n - uint64(kept) + 1
	}
	msCheckWindow(t, s, oldest, n)
	for after := uint64(0); after <= n+1; after++ {
		got, err := msAfter(context.Background(), s, after, msTopics, kept+10)
		switch {
		case after > n:
			if !errors.Is(err, sse.ErrUnknownID) {
				t.Errorf("After(%d): %v, want ErrUnknownID", after, err)
			}
		case after+1 < oldest:
			if !errors.Is(err, sse.ErrEvicted) {
				t.Errorf("After(%d) with oldest %d: %v %v, want ErrEvicted", after, oldest, msSeqs(got), err)
			}
		default:
			if err != nil {
				t.Errorf("After(%d) with oldest %d: %v", after, oldest, err)
			} else if len(got) != int(n-after) || (len(got) > 0 && (got[0].Seq != after+1 || got[len(got)-1].Seq != n)) {
				t.Errorf("After(%d) = %v, want %d..%d", after, msSeqs(got), after+1, n)
			}
		}
	}
}

// TestMemoryStoreGrowth checks the contents while the topics' rings grow
// through their sizes and then wrap around.
func TestMemoryStoreGrowth(t *testing.T) {
	checkpoints := map[uint64]bool{}
	for _, c := range []uint64{1, 2, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513,
		999, 1000, 1001, 1023, 1024, 1025, 1999, 2000, 2001, 2047, 2048, 2049, 2999, 3000} {
		checkpoints[c] = true
	}
	for _, tc := range []struct {
		maxEvents int
		perTopic  bool
	}{{1000, false}, {3000, false}, {64, false}, {129, false}, {3000, true}, {129, true}, {1500, true}} {
		maxEvents := tc.maxEvents
		opts, _ := msCountOptions(maxEvents, tc.perTopic)
		t.Run(fmt.Sprintf("max%d/perTopic=%v", maxEvents, tc.perTopic), func(t *testing.T) {
			s := msNew(t, opts)
			for seq := uint64(1); seq <= 3000; seq++ {
				e := msAppend(t, s, msTopicOf(seq), "ev"+strconv.FormatUint(seq, 10))
				if e.Seq != seq {
					t.Fatalf("Seq %d, want %d", e.Seq, seq)
				}
				if checkpoints[seq] || seq%97 == 0 {
					oldest := uint64(1)
					if seq > uint64(maxEvents) {
						oldest = seq - uint64(maxEvents) + 1
					}
					msCheckWindow(t, s, oldest, seq)
				}
			}
			// Paging through the window with a small limit, as a replay
			// does, yields every entry once, in order.
			oldest := uint64(1)
			if maxEvents < 3000 {
				oldest = 3000 - uint64(maxEvents) + 1
			}
			pos, next := oldest-1, oldest
			for {
				page := msMustAfter(t, s, pos, msTopics, 100)
				for _, e := range page {
					if e.Seq != next {
						t.Fatalf("paging: got Seq %d, want %d", e.Seq, next)
					}
					next++
					pos = e.Seq
				}
				if len(page) < 100 {
					break
				}
			}
			if next != 3001 {
				t.Fatalf("paging ended before Seq %d", next)
			}
		})
	}
}

// TestMemoryStoreMaxAge uses real time: the clock cannot be set from outside
// the package. Only "not expired too early" and "eventually expired" are
// asserted strictly; the check that a fresh event is still there is retried
// when the machine was too slow to make it meaningful.
func TestMemoryStoreMaxAge(t *testing.T) {
	const maxAge = 100 * time.Millisecond
	ctx := context.Background()
	all := []string{"t"}
	for attempt := 1; ; attempt++ {
		s := msNew(t, sse.MemoryStoreOptions{MaxAge: maxAge, Epoch: "e1"})
		tA := time.Now()
		msAppend(t, s, "t", "A")
		got, err := msAfter(ctx, s, 0, all, 10)
		if time.Since(tA) < maxAge {
			if err != nil || !slices.Equal(msSeqs(got), []uint64{1}) {
				t.Fatalf("fresh event: After(0) = %v, %v; want [1]", msSeqs(got), err)
			}
		}

		// Wait for A to expire.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err = msAfter(ctx, s, 0, all, 10)
			if errors.Is(err, sse.ErrEvicted) {
				break
			}
			if err != nil {
				t.Fatalf("After(0) while waiting for expiry: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("event older than MaxAge %v never expired", maxAge)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if age := time.Since(tA); age < maxAge {
			t.Fatalf("event expired after %v, before MaxAge %v", age, maxAge)
		}
		// Everything expired: resuming at the newest position is fine and
		// yields nothing; its ID is still known.
		if got := msMustAfter(t, s, 1, all, 10); len(got) != 0 {
			t.Fatalf("After(1) with all expired = %v, want none", msSeqs(got))
		}
		if pos, err := msPosition(s, "e1-1"); err != nil || pos != 1 {
			t.Fatalf("Position of an expired event's ID = %d, %v; want 1, nil", pos, err)
		}

		// A new event is kept while the old one stays evicted.
		tB := time.Now()
		msAppend(t, s, "t", "B")
		got, errB := msAfter(ctx, s, 1, all, 10)
		_, err0 := msAfter(ctx, s, 0, all, 10)
		if time.Since(tB) >= maxAge {
			if attempt < 3 {
				t.Logf("attempt %d: too slow (%v) to check the fresh event; retrying", attempt, time.Since(tB))
				continue
			}
			t.Skipf("machine too slow to check MaxAge expiry (%v per step)", time.Since(tB))
		}
		if errB != nil || !slices.Equal(msSeqs(got), []uint64{2}) || string(got[0].Event.Data) != "B" {
			t.Fatalf("After(1) after the old event expired = %v, %v; want [2]", msSeqs(got), errB)
		}
		if !errors.Is(err0, sse.ErrEvicted) {
			t.Fatalf("After(0) with the first event expired: %v, want ErrEvicted", err0)
		}
		return
	}
}

// TestMemoryStoreGrowthAfterExpiry refills topics that expiry emptied:
// their rings are given back, then grow again from nothing.
func TestMemoryStoreGrowthAfterExpiry(t *testing.T) {
	const maxAge = 300 * time.Millisecond
	for attempt := 1; ; attempt++ {
		s := msNew(t, sse.MemoryStoreOptions{MaxAge: maxAge, MaxEvents: 1000, Epoch: "e1"})
		msFill(t, s, 10)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := msAfter(context.Background(), s, 0, msTopics, 1); errors.Is(err, sse.ErrEvicted) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("events older than MaxAge never expired")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Seq 11..300, the first 64 of them wrapping around the initial
		// array from index 10, then growing it twice.
		start := time.Now()
		for seq := uint64(11); seq <= 300; seq++ {
			e := msAppend(t, s, msTopicOf(seq), "ev"+strconv.FormatUint(seq, 10))
			if e.Seq != seq {
				t.Fatalf("Seq %d, want %d", e.Seq, seq)
			}
		}
		got, err := msAfter(context.Background(), s, 10, msTopics, 1000)
		if time.Since(start) >= maxAge {
			if attempt < 3 {
				continue
			}
			t.Skipf("machine too slow: 290 appends took %v", time.Since(start))
		}
		if err != nil || len(got) != 290 {
			t.Fatalf("After(10) = %d entries, %v; want 290", len(got), err)
		}
		for i, e := range got {
			seq := uint64(11 + i)
			if e.Seq != seq || string(e.Event.Data) != "ev"+strconv.FormatUint(seq, 10) || e.Topic != msTopicOf(seq) {
				t.Fatalf("entry %d = {Seq %d, Data %q, Topic %q}, want Seq %d", i, e.Seq, e.Event.Data, e.Topic, seq)
			}
		}
		return
	}
}

func TestMemoryStorePosition(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	if pos, err := msPosition(s, msID(s, 0)); err != nil || pos != 0 {
		t.Errorf("empty store: Position(ID(0)=%q) = %d, %v; want 0, nil", msID(s, 0), pos, err)
	}
	if _, err := msPosition(s, "e1-1"); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("empty store: Position(e1-1): %v, want ErrUnknownID", err)
	}
	for i := 0; i < 12; i++ {
		msAppend(t, s, "t", "x")
	}

	for _, seq := range []uint64{0, 1, 2, 10, 12} {
		id := msID(s, seq)
		if pos, err := msPosition(s, id); err != nil || pos != seq {
			t.Errorf("Position(ID(%d)=%q) = %d, %v; want %d, nil", seq, id, pos, err, seq)
		}
	}
	if id := msID(s, 0); id != "e1-0" {
		t.Errorf("ID(0) = %q, want e1-0", id)
	}

	bad := []string{
		"",
		"-",
		"--",
		"abc",
		"e1",
		"1",
		"-1",
		"deadbeef-1",
		"E1-1",
		"e-1",
		"e11-1",
		"xe1-1",
		"e1-",
		"e1-+1",
		"e1--1",
		"e1-01",
		"e1-00",
		"e1-012",
		"e1-1.5",
		"e1-1e1",
		"e1-0x1",
		"e1-1_0",
		"e1-1-1",
		"e1- 1",
		"e1-1 ",
		" e1-1",
		"e1-1\n",
		"e1-1\x00",
		"e1-\u0661", // ARABIC-INDIC DIGIT ONE
		"e1-１",      // FULLWIDTH DIGIT ONE
		"e1-13",     // one past the newest
		"e1-100",
		"e1-18446744073709551615",    // max uint64
		"e1-18446744073709551616",    // max uint64 + 1
		"e1-99999999999999999999999", // overflow
		"\x00\xff",
		"e1-\xff",
		"\xff-1",
		strings.Repeat("z", 10<<10),
		"e1-" + strings.Repeat("1", 10<<10),
		strings.Repeat("e1-1", 10<<8),
	}
	for _, id := range bad {
		name := id
		if len(name) > 40 {
			name = name[:40] + fmt.Sprintf("...(%d bytes)", len(id))
		}
		if pos, err := msPosition(s, id); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("Position(%q) = %d, %v; want ErrUnknownID", name, pos, err)
		}
	}
}

func TestMemoryStoreOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    sse.MemoryStoreOptions
		wantErr string // a substring of the error; "" for success
	}{
		{"zero value", sse.MemoryStoreOptions{}, ""},
		{"all set", sse.MemoryStoreOptions{MaxEventsPerTopic: 10, MaxBytes: 1 << 20, MaxEvents: 10, MaxAge: time.Minute, Epoch: "A1z9"}, ""},
		{"tiny bounds", sse.MemoryStoreOptions{MaxEventsPerTopic: 1, MaxBytes: 1, MaxEvents: 1, MaxAge: time.Nanosecond}, ""},
		{"per topic at most MaxInt32", sse.MemoryStoreOptions{MaxEventsPerTopic: math.MaxInt32}, ""},
		{"negative MaxEventsPerTopic", sse.MemoryStoreOptions{MaxEventsPerTopic: -1}, "MaxEventsPerTopic"},
		{"MaxEventsPerTopic over MaxInt32", sse.MemoryStoreOptions{MaxEventsPerTopic: math.MaxInt32 + 1}, "MaxEventsPerTopic"},
		{"negative MaxBytes", sse.MemoryStoreOptions{MaxBytes: -1}, "MaxBytes"},
		{"epoch 1 char", sse.MemoryStoreOptions{Epoch: "x"}, ""},
		{"epoch 32 chars", sse.MemoryStoreOptions{Epoch: strings.Repeat("a", 32)}, ""},
		{"empty epoch means default", sse.MemoryStoreOptions{Epoch: ""}, ""},
		{"negative MaxEvents", sse.MemoryStoreOptions{MaxEvents: -1}, "MaxEvents"},
		{"very negative MaxEvents", sse.MemoryStoreOptions{MaxEvents: -1 << 40}, "MaxEvents"},
		{"negative MaxAge", sse.MemoryStoreOptions{MaxAge: -time.Nanosecond}, "MaxAge"},
		{"epoch with hyphen", sse.MemoryStoreOptions{Epoch: "a-b"}, "Epoch"},
		{"epoch hyphen only", sse.MemoryStoreOptions{Epoch: "-"}, "Epoch"},
		{"epoch 33 chars", sse.MemoryStoreOptions{Epoch: strings.Repeat("a", 33)}, "Epoch"},
		{"epoch non-ASCII letter", sse.MemoryStoreOptions{Epoch: "é"}, "Epoch"},
		{"epoch with space", sse.MemoryStoreOptions{Epoch: "a b"}, "Epoch"},
		{"epoch with LF", sse.MemoryStoreOptions{Epoch: "a\nb"}, "Epoch"},
		{"epoch with NUL", sse.MemoryStoreOptions{Epoch: "a\x00"}, "Epoch"},
		{"epoch invalid UTF-8", sse.MemoryStoreOptions{Epoch: "\xff"}, "Epoch"},
		{"epoch underscore", sse.MemoryStoreOptions{Epoch: "a_b"}, "Epoch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sse.NewMemoryStore(tt.opts)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("NewMemoryStore(%+v) = %v, %v; want a store", tt.opts, s, err)
				}
				if tt.opts.Epoch != "" && msID(s, 7) != tt.opts.Epoch+"-7" {
					t.Errorf("ID(7) = %q, want %q", msID(s, 7), tt.opts.Epoch+"-7")
				}
				msAppend(t, s, "t", "x") // usable
				return
			}
			if err == nil {
				t.Fatalf("NewMemoryStore(%+v) succeeded, want an error mentioning %s", tt.opts, tt.wantErr)
			}
			if s != nil {
				t.Errorf("NewMemoryStore returned a store with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %s", err, tt.wantErr)
			}
		})
	}
}

func TestMemoryStoreDefaultEpochsDiffer(t *testing.T) {
	s1 := msNew(t, sse.MemoryStoreOptions{})
	s2 := msNew(t, sse.MemoryStoreOptions{})
	for i := 0; i < 3; i++ {
		msAppend(t, s1, "t", "x")
		msAppend(t, s2, "t", "x")
	}
	if msID(s1, 1) == msID(s2, 1) {
		t.Fatalf("two stores with default epochs issue the same ID %q", msID(s1, 1))
	}
	for seq := uint64(0); seq <= 3; seq++ {
		if pos, err := msPosition(s2, msID(s1, seq)); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("store 2 Position(store 1's %q) = %d, %v; want ErrUnknownID", msID(s1, seq), pos, err)
		}
		if pos, err := msPosition(s1, msID(s2, seq)); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("store 1 Position(store 2's %q) = %d, %v; want ErrUnknownID", msID(s2, seq), pos, err)
		}
	}
	// Same explicit epoch: IDs are interchangeable, by design.
	a := msNew(t, sse.MemoryStoreOptions{Epoch: "same"})
	b := msNew(t, sse.MemoryStoreOptions{Epoch: "same"})
	msAppend(t, a, "t", "x")
	msAppend(t, b, "t", "x")
	if pos, err := msPosition(b, msID(a, 1)); err != nil || pos != 1 {
		t.Errorf("same epoch: Position = %d, %v; want 1, nil", pos, err)
	}
}

func TestMemoryStoreConcurrentAppend(t *testing.T) {
	const writers, each = 4, 1000
	s := msNew(t, sse.MemoryStoreOptions{MaxEvents: writers * each, Epoch: "e1"})
	ctx := context.Background()
	seqs := make([][]uint64, writers)
	errs := make(chan error, writers+1)
	stop := make(chan struct{})
	var wg, readers sync.WaitGroup

	// A reader runs alongside, for the race detector.
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := msAfter(ctx, s, 0, []string{"w0", "w1", "w2", "w3"}, 50)
			if err != nil {
				errs <- fmt.Errorf("concurrent After: %w", err)
				return
			}
			for i := 1; i < len(got); i++ {
				if got[i].Seq != got[i-1].Seq+1 {
					errs <- fmt.Errorf("concurrent After: Seq %d after %d", got[i].Seq, got[i-1].Seq)
					return
				}
			}
			if len(got) > 0 {
				if _, err := msPosition(s, got[len(got)-1].Event.ID); err != nil {
					errs <- fmt.Errorf("concurrent Position: %w", err)
					return
				}
			}
		}
	}()

	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := "w" + strconv.Itoa(w)
			for i := 0; i < each; i++ {
				e, err := s.Append(ctx, topic, sse.Event{Data: []byte(strconv.Itoa(i))})
				if err != nil {
					errs <- err
					return
				}
				if e.Event.ID != msID(s, e.Seq) {
					errs <- fmt.Errorf("Append: ID %q for Seq %d", e.Event.ID, e.Seq)
					return
				}
				seqs[w] = append(seqs[w], e.Seq)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var all []uint64
	for w, ws := range seqs {
		if !slices.IsSorted(ws) {
			t.Errorf("writer %d: its Seqs are not increasing", w)
		}
		all = append(all, ws...)
	}
	slices.Sort(all)
	if len(all) != writers*each {
		t.Fatalf("%d Seqs, want %d", len(all), writers*each)
	}
	for i, q := range all {
		if q != uint64(i+1) {
			t.Fatalf("Seqs are not exactly 1..%d: position %d holds %d", writers*each, i, q)
		}
	}

	// The store holds them all in Seq order, each writer's events in the
	// order it appended them.
	got := msMustAfter(t, s, 0, []string{"w0", "w1", "w2", "w3"}, writers*each+1)
	if len(got) != writers*each {
		t.Fatalf("After(0) returned %d entries, want %d", len(got), writers*each)
	}
	next := map[string]int{}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("After(0)[%d].Seq = %d", i, e.Seq)
		}
		if string(e.Event.Data) != strconv.Itoa(next[e.Topic]) {
			t.Fatalf("topic %s: event %q out of order, want %d", e.Topic, e.Event.Data, next[e.Topic])
		}
		next[e.Topic]++
	}
}

// TestMemoryStoreAfterMergesTopics checks the order of a resume on many
// topics: every event of those topics after the position, in Seq order,
// whatever the number of topics and the page size.
func TestMemoryStoreAfterMergesTopics(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	rng := rand.New(rand.NewPCG(7, 7))
	var topicOf []string // topicOf[seq-1]
	for i := range 3000 {
		topic := "t" + strconv.Itoa(rng.IntN(40))
		if i%7 == 0 {
			topic = "t0" // one louder topic
		}
		msAppend(t, s, topic, topic)
		topicOf = append(topicOf, topic)
	}
	all := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "t" + strconv.Itoa(i)
		}
		return out
	}
	reversed := all(32)
	slices.Reverse(reversed)
	tests := []struct {
		name   string
		after  uint64
		topics []string
		limit  int
	}{
		{"32 topics from the start", 0, all(32), 5000},
		{"32 topics, a page", 0, all(32), 256},
		{"32 topics from the middle", 1500, all(32), 256},
		{"32 topics near the end", 2990, all(32), 256},
		{"32 topics at the end", 3000, all(32), 256},
		{"32 topics, one event", 1234, all(32), 1},
		{"32 topics in reverse", 700, reversed, 300},
		{"2 topics", 100, []string{"t3", "t0"}, 300},
		{"40 topics and unknown ones", 0, append(all(40), "x", "y"), 5000},
		{"a topic twice among others", 10, []string{"t1", "t2", "t1", "t5"}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []uint64
			for seq := tt.after + 1; seq <= uint64(len(topicOf)) && len(want) < tt.limit; seq++ {
				if slices.Contains(tt.topics, topicOf[seq-1]) {
					want = append(want, seq)
				}
			}
			got := msMustAfter(t, s, tt.after, tt.topics, tt.limit)
			if !slices.Equal(msSeqs(got), want) {
				t.Fatalf("After(%d, %d topics, %d) = %d entries %v..., want %d %v...", tt.after, len(tt.topics), tt.limit,
					len(got), msSeqs(got)[:min(len(got), 8)], len(want), want[:min(len(want), 8)])
			}
			for _, e := range got {
				if e.Topic != topicOf[e.Seq-1] || string(e.Event.Data) != e.Topic {
					t.Fatalf("Seq %d: topic %q data %q, want %q", e.Seq, e.Topic, e.Event.Data, topicOf[e.Seq-1])
				}
			}
		})
	}
}

// TestMemoryStoreConcurrentEviction runs appends that keep evicting, by
// count per topic and by bytes, alongside resumes on 32 topics: for the
// race detector, and to check that every answer is in Seq order, of the
// topics asked for, or ErrEvicted.
func TestMemoryStoreConcurrentEviction(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{MaxEventsPerTopic: 8, MaxBytes: 64 << 10, Epoch: "e1"})
	ctx := context.Background()
	const writers, each, topics = 4, 3000, 100
	errs := make(chan error, writers+2)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				topic := "t" + strconv.Itoa((w*each+i*7)%topics)
				if _, err := s.Append(ctx, topic, sse.Event{Data: []byte(topic)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			sub := make([]string, 32)
			for i := range sub {
				sub[i] = "t" + strconv.Itoa((r*50+i*3)%topics)
			}
			var after uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := msAfter(ctx, s, after, sub, 64)
				if errors.Is(err, sse.ErrEvicted) {
					after += 50 // a client would reload and resume later
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("After(%d): %w", after, err)
					return
				}
				for i, e := range got {
					if !slices.Contains(sub, e.Topic) || string(e.Event.Data) != e.Topic || (i > 0 && e.Seq <= got[i-1].Seq) || e.Seq <= after {
						errs <- fmt.Errorf("After(%d): entry %d {Seq %d, Topic %q} out of order or of another topic", after, i, e.Seq, e.Topic)
						return
					}
				}
				if len(got) > 0 {
					after = got[len(got)-1].Seq
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
