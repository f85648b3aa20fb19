package sse_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestPositionPerTopic: with a store that is not ordered (a Broadcaster,
// which delivers each topic in its own order), a stream of several topics
// is given IDs that name a Seq per topic, and resumes from one on another
// hub with exactly the events of each topic that it missed.
func TestPositionPerTopic(t *testing.T) {
	bus := newMemBus(newTestStore(t))
	a := ssetest.NewHub(t, sse.Options{Store: bus})
	b := ssetest.NewHub(t, sse.Options{Store: bus})
	opts := sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}
	srvA, srvB := serve(t, a, opts), serve(t, b, opts)

	st := connect(t, srvA.URL+"?topic=y&topic=x", "")
	testkit.WaitStreams(t, a, 1)
	want := map[string][]string{}
	pub := func(topic, data string) {
		testkit.Publish(t, b, topic, data)
		want[topic] = append(want[topic], data)
	}
	pub("x", "x1")
	pub("z", "z1") // no stream follows it
	pub("y", "y1")
	var last string
	for range 2 {
		ev := next(t, st)
		last = ev.LastEventID
		if !strings.Contains(last, ".") {
			t.Fatalf("a stream of two topics got the ID %q, want one Seq per topic", last)
		}
	}
	st.Close()
	pub("y", "y2")
	pub("x", "x2")
	pub("y", "y3")

	// Resume on the other hub: the events missed, each topic's in order.
	resumed := connect(t, srvB.URL+"?topic=x&topic=y", last)
	got := map[string][]string{}
	for range 3 {
		ev := next(t, resumed)
		topic := ev.Data[:1]
		got[topic] = append(got[topic], ev.Data)
	}
	if strings.Join(got["x"], ",") != "x2" || strings.Join(got["y"], ",") != "y2,y3" {
		t.Fatalf("resumed with %v, want x2 and y2,y3", got)
	}
	// Live events follow, without duplicates.
	pub("x", "x3")
	if ev := next(t, resumed); ev.Data != "x3" {
		t.Fatalf("then got %+v, want x3", ev)
	}
	// One Seq, as a stream of one topic is sent, names a place in that
	// topic alone: a stream of two topics of this store is reset, not
	// resumed from it.
	epoch, seqs, _ := strings.Cut(last, "-")
	oneSeq := epoch + "-" + strings.Split(seqs, ".")[0]
	crossed := connect(t, srvB.URL+"?topic=x&topic=y", oneSeq)
	if ev := next(t, crossed); ev.Type != "sse-reset" || ev.Data != `{"reason":"unknown-id"}` {
		t.Fatalf("the one-Seq ID %q on a stream of two topics: %+v, want a reset", oneSeq, ev)
	}
	// An ID with the wrong number of topics is unknown: the stream is reset.
	other := connect(t, srvB.URL+"?topic=x&topic=y&topic=z", last)
	if ev := next(t, other); ev.Type != "sse-reset" || ev.Data != `{"reason":"unknown-id"}` {
		t.Fatalf("an ID of two topics for three: %+v, want a reset", ev)
	}
}

// TestOrderedStoreIDsAreOneSeq: with the MemoryStore, a stream of several
// topics is given the events' own IDs, one Seq each.
func TestOrderedStoreIDsAreOneSeq(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")})
	st := connect(t, srv.URL+"?topic=a&topic=b", "")
	ids := []string{testkit.Publish(t, h, "b", "1"), testkit.Publish(t, h, "a", "2")}
	for _, id := range ids {
		if ev := next(t, st); ev.LastEventID != id {
			t.Fatalf("got %+v, want the event's own ID %s", ev, id)
		}
	}
	_ = context.Background
}

// TestLongIDsResume: the ID of a stream of as many topics as a stream may
// have, each at a long Seq, is one the hub takes back by default.
func TestLongIDsResume(t *testing.T) {
	bus := newMemBus(newTestStore(t))
	bus.offset = 1e15 // 16 digits per topic
	h := ssetest.NewHub(t, sse.Options{Store: bus})
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")})
	const n = 32 // the default MaxTopics
	url := srv.URL + "?"
	for i := range n {
		url += fmt.Sprintf("topic=t%02d&", i)
	}
	st := connect(t, url, "")
	testkit.WaitStreams(t, h, 1)
	testkit.Publish(t, h, "t00", "first")
	first := next(t, st)
	if n := strings.Count(first.LastEventID, ".") + 1; n != 32 || len(first.LastEventID) <= 256 {
		t.Fatalf("got the ID %q, want 32 long positions", first.LastEventID)
	}
	st.Close()
	testkit.Publish(t, h, "t31", "second")

	resumed := connect(t, url, first.LastEventID)
	if ev := next(t, resumed); ev.Type != "" && ev.Type != "message" || ev.Data != "second" {
		t.Fatalf("resumed with %+v, want the event after the ID it was given", ev)
	}
}

// TestNewEpoch: when a Broadcaster's store begins a new lifetime (a Redis
// that lost its keys, a recreated stream), its Seqs start over. Streams
// that were open get a reset naming the start of the new lifetime, then its
// events: none is dropped for being "older" than what the old lifetime
// delivered, and an ID of the new lifetime resumes on any hub.
func TestNewEpoch(t *testing.T) {
	bus := newMemBus(newTestStore(t))
	a := ssetest.NewHub(t, sse.Options{Store: bus})
	b := ssetest.NewHub(t, sse.Options{Store: bus})
	opts := sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}
	srvA, srvB := serve(t, a, opts), serve(t, b, opts)

	st := connect(t, srvA.URL+"?topic=x&topic=y", "")
	testkit.WaitStreams(t, a, 1)
	for i := range 3 {
		testkit.Publish(t, b, "x", fmt.Sprint("old", i))
		if ev := ssetest.NextWithin(t, st, 10*time.Second); ev.Data != fmt.Sprint("old", i) {
			t.Fatalf("got %+v, want old%d", ev, i)
		}
	}

	fresh := newTestStore(t)
	for fresh.Epoch() == bus.Epoch() {
		fresh = newTestStore(t)
	}
	bus.restart(fresh)
	testkit.Publish(t, b, "x", "new0")
	ev := ssetest.NextWithin(t, st, 10*time.Second)
	if ev.Type != "sse-reset" || ev.Data != `{"reason":"new-epoch"}` {
		t.Fatalf("after the store's restart got %+v, want a reset for the new epoch", ev)
	}
	if want := fresh.Epoch() + "-0.0"; ev.LastEventID != want {
		t.Fatalf("the reset's ID is %q, want %q: the start of the new lifetime", ev.LastEventID, want)
	}
	ev = ssetest.NextWithin(t, st, 10*time.Second)
	if ev.Data != "new0" {
		t.Fatalf("then got %+v, want new0", ev)
	}
	st.Close()

	// The ID of the new lifetime resumes on the other hub.
	testkit.Publish(t, b, "y", "new1")
	resumed := connect(t, srvB.URL+"?topic=x&topic=y", ev.LastEventID)
	if ev := ssetest.NextWithin(t, resumed, 10*time.Second); ev.Data != "new1" {
		t.Fatalf("resumed with %+v, want new1", ev)
	}
}

// TestShutdownAfterNewEpoch: an event published in a store's new lifetime,
// whose Seq is below what the old one delivered, still reaches its
// streams before Shutdown ends them, however slow the store is to hand it
// over.
func TestShutdownAfterNewEpoch(t *testing.T) {
	bus := newMemBus(newTestStore(t))
	h, err := sse.NewHub(sse.Options{Store: bus, CloseRetry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")})
	st := connect(t, srv.URL+"?topic=x", "")
	testkit.WaitStreams(t, h, 1)
	for i := range 3 {
		testkit.Publish(t, h, "x", fmt.Sprint("old", i))
		ssetest.NextWithin(t, st, 10*time.Second)
	}
	fresh := newTestStore(t)
	for fresh.Epoch() == bus.Epoch() {
		fresh = newTestStore(t)
	}
	bus.restart(fresh)
	if ev := ssetest.NextWithin(t, st, 10*time.Second); ev.Type != "sse-reset" {
		t.Fatalf("got %+v, want the reset of the new epoch", ev)
	}
	bus.delay.Store(int64(300 * time.Millisecond))
	id := testkit.Publish(t, h, "x", "new0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var got []string
	for {
		ev, err := st.Next()
		if err != nil {
			break
		}
		got = append(got, ev.LastEventID+" "+ev.Data)
	}
	if len(got) != 1 || got[0] != id+" new0" {
		t.Errorf("before its end the stream got %q, want the event published before Shutdown (%s)", got, id)
	}
}
