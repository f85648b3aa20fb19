package sse_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// reusedBuffers imitates a server that reuses its request memory after the
// handler returns (fasthttp, under Fiber): the data and the topic of an
// event live in buffers that are overwritten before the next request.
type reusedBuffers struct {
	data  []byte
	topic []byte
}

// fill writes topic and data into the buffers and returns the topic as a
// string over the buffer's memory, as fasthttp's zero-copy conversions do.
func (b *reusedBuffers) fill(topic, data string) (string, []byte) {
	b.topic = append(b.topic[:0], topic...)
	b.data = append(b.data[:0], data...)
	return unsafe.String(&b.topic[0], len(b.topic)), b.data
}

// TestPublishOwnsWhatItRecords publishes from buffers that are then
// overwritten for the next publish: a resumed client must get each event's
// own data, on its own topic only.
func TestPublishOwnsWhatItRecords(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{})
	ctx := context.Background()
	start, err := h.Publish(ctx, "room1", sse.Event{Data: []byte("start")})
	if err != nil {
		t.Fatal(err)
	}
	var buf reusedBuffers
	topic, data := buf.fill("room1", "first")
	id1, err := h.Publish(ctx, topic, sse.Event{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	topic, data = buf.fill("room2", "XXXXX") // same lengths: the same memory
	id2, err := h.Publish(ctx, topic, sse.Event{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	buf.fill("zzzzz", "ZZZZZ")

	tests := []struct {
		topic    string
		wantID   string
		wantData string
	}{
		{"room1", id1, "first"},
		{"room2", id2, "XXXXX"},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			st := connect(t, srv.URL+"?topic="+tt.topic, start)
			ev := ssetest.NextWithin(t, st, 10*time.Second)
			if ev.LastEventID != tt.wantID || ev.Data != tt.wantData {
				t.Fatalf("replayed {id %q, data %q}, want {id %q, data %q}", ev.LastEventID, ev.Data, tt.wantID, tt.wantData)
			}
			// Nothing else was replayed: the next event is a live one.
			testkit.Eventually(t, "stream registered", func() bool { return h.Subscribers(tt.topic) == 1 })
			live, err := h.Publish(ctx, tt.topic, sse.Event{Data: []byte("live")})
			if err != nil {
				t.Fatal(err)
			}
			if ev := next(t, st); ev.LastEventID != live || ev.Data != "live" {
				t.Fatalf("after the replay got {id %q, data %q}, want the live event %q", ev.LastEventID, ev.Data, live)
			}
		})
	}
}

// TestMemoryStoreOwnsWhatItRecords is TestPublishOwnsWhatItRecords on the
// store alone.
func TestMemoryStoreOwnsWhatItRecords(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	ctx := context.Background()
	var buf reusedBuffers
	topic, data := buf.fill("room1", "first")
	e1, err := s.Append(ctx, topic, sse.Event{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	topic, data = buf.fill("room2", "XXXXX")
	if _, err := s.Append(ctx, topic, sse.Event{Data: data}); err != nil {
		t.Fatal(err)
	}
	buf.fill("zzzzz", "ZZZZZ")
	if e1.Topic != "room1" {
		t.Errorf("the entry Append returned has topic %q, want room1", e1.Topic)
	}
	tests := []struct {
		topics   []string
		wantSeqs []uint64
		wantData []string
	}{
		{[]string{"room1"}, []uint64{1}, []string{"first"}},
		{[]string{"room2"}, []uint64{2}, []string{"XXXXX"}},
		{[]string{"zzzzz"}, nil, nil},
		{[]string{"room1", "room2"}, []uint64{1, 2}, []string{"first", "XXXXX"}},
	}
	for _, tt := range tests {
		got := msMustAfter(t, s, 0, tt.topics, 10)
		var data []string
		for _, e := range got {
			data = append(data, string(e.Event.Data))
			if !slices.Contains(tt.topics, e.Topic) {
				t.Errorf("After(0, %q) returned an entry of topic %q", tt.topics, e.Topic)
			}
		}
		if !slices.Equal(msSeqs(got), tt.wantSeqs) || !slices.Equal(data, tt.wantData) {
			t.Errorf("After(0, %q) = seqs %v data %q, want %v %q", tt.topics, msSeqs(got), data, tt.wantSeqs, tt.wantData)
		}
	}
}

// TestMemoryStoreAfterReturnsOwnData checks that the events After returns
// are the caller's to change: changing them changes nothing in the store,
// nor in the other events.
func TestMemoryStoreAfterReturnsOwnData(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	msAppend(t, s, "t", "data")
	msAppend(t, s, "t", "more")
	got := msMustAfter(t, s, 0, []string{"t"}, 10)
	copy(got[0].Event.Data, "XXXX")
	_ = append(got[0].Event.Data, "YYYY"...) // must not reach the next event's data
	if string(got[1].Event.Data) != "more" {
		t.Fatalf("appending to one returned event's data changed the next one's: %q", got[1].Event.Data)
	}
	if again := msMustAfter(t, s, 0, []string{"t"}, 10); string(again[0].Event.Data) != "data" {
		t.Fatalf("After after changing a returned event: data %q, want data", again[0].Event.Data)
	}
}

// TestMemoryStoreRoundTrip checks that After returns the events that were
// appended, as a client would read them: with the store's ID, line breaks
// as LF and the retry hint in whole milliseconds.
func TestMemoryStoreRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   sse.Event
		want sse.Event // ID is set by the test
	}{
		{"zero", sse.Event{}, sse.Event{Data: []byte{}}},
		{"data", sse.Event{Data: []byte("x")}, sse.Event{Data: []byte("x")}},
		{"empty data", sse.Event{Data: []byte{}}, sse.Event{Data: []byte{}}},
		{"type", sse.Event{Type: "kind", Data: []byte("x")}, sse.Event{Type: "kind", Data: []byte("x")}},
		{"LF", sse.Event{Data: []byte("a\nb")}, sse.Event{Data: []byte("a\nb")}},
		{"CRLF and CR", sse.Event{Data: []byte("a\r\nb\rc")}, sse.Event{Data: []byte("a\nb\nc")}},
		{"trailing LF", sse.Event{Data: []byte("a\n")}, sse.Event{Data: []byte("a\n")}},
		{"only LFs", sse.Event{Data: []byte("\n\n")}, sse.Event{Data: []byte("\n\n")}},
		{"leading space kept", sse.Event{Data: []byte(" a"), Comment: " c"}, sse.Event{Data: []byte(" a"), Comment: " c"}},
		{"colon in data", sse.Event{Data: []byte("data: x")}, sse.Event{Data: []byte("data: x")}},
		{"comment", sse.Event{Comment: "note", Data: []byte("x")}, sse.Event{Comment: "note", Data: []byte("x")}},
		{"empty comment", sse.Event{Flags: sse.EmptyComment, Data: []byte("x")}, sse.Event{Flags: sse.EmptyComment, Data: []byte("x")}},
		{"retry", sse.Event{Retry: 1500 * time.Millisecond, Data: []byte("x")}, sse.Event{Retry: 1500 * time.Millisecond, Data: []byte("x")}},
		{"retry truncated", sse.Event{Retry: 1500*time.Millisecond + 7, Data: []byte("x")}, sse.Event{Retry: 1500 * time.Millisecond, Data: []byte("x")}},
		{"retry zero", sse.Event{Flags: sse.RetryZero, Data: []byte("x")}, sse.Event{Flags: sse.RetryZero, Data: []byte("x")}},
		{"no data", sse.Event{Flags: sse.NoData}, sse.Event{Flags: sse.NoData}},
		{"empty id replaced", sse.Event{Flags: sse.EmptyID, Data: []byte("x")}, sse.Event{Data: []byte("x")}},
		{"id replaced", sse.Event{ID: "mine", Data: []byte("x")}, sse.Event{Data: []byte("x")}},
		{"UTF-8", sse.Event{Type: "ü", Comment: "é", Data: []byte("世界\n")}, sse.Event{Type: "ü", Comment: "é", Data: []byte("世界\n")}},
		{"everything", sse.Event{Type: "t", Comment: "c", Retry: time.Second, Data: []byte("1\r\n2"), Flags: 0},
			sse.Event{Type: "t", Comment: "c", Retry: time.Second, Data: []byte("1\n2")}},
	}
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := s.Append(context.Background(), "t", tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got := msMustAfter(t, s, e.Seq-1, []string{"t"}, 1)
			if len(got) != 1 {
				t.Fatalf("After returned %d entries, want 1", len(got))
			}
			want := tt.want
			want.ID = msID(s, e.Seq)
			if g := got[0].Event; g.ID != want.ID || g.Type != want.Type || g.Comment != want.Comment ||
				g.Retry != want.Retry || g.Flags != want.Flags || string(g.Data) != string(want.Data) || (g.Data == nil) != (want.Data == nil) {
				t.Fatalf("After returned %+v (data %q), want %+v (data %q)", g, g.Data, want, want.Data)
			}
			if got[0].Topic != "t" || got[0].Seq != e.Seq || !got[0].Time.Equal(e.Time) {
				t.Fatalf("After returned {%q %d %v}, want {t %d %v}", got[0].Topic, got[0].Seq, got[0].Time, e.Seq, e.Time)
			}
		})
	}
}

// TestMemoryStoreAppendInvalid checks that the store, which encodes what it
// records, refuses what cannot be encoded and records nothing.
func TestMemoryStoreAppendInvalid(t *testing.T) {
	s := msNew(t, sse.MemoryStoreOptions{Epoch: "e1"})
	for _, ev := range []sse.Event{
		{Type: "a\nb"},
		{Comment: "a\rb"},
		{Data: []byte{0xff}},
		{Retry: -1},
		{Flags: sse.NoData, Data: []byte("x")},
	} {
		if _, err := s.Append(context.Background(), "t", ev); !errors.Is(err, sse.ErrInvalidEvent) {
			t.Errorf("Append(%+v): %v, want ErrInvalidEvent", ev, err)
		}
	}
	if _, err := msPosition(s, "e1-1"); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("a refused event was given a Seq: Position(e1-1) = %v", err)
	}
}
