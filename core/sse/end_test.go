package sse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// endServer serves hub's streams, authenticated by "tok-<user>" bearer
// tokens, on the topics of the query, attached or detached.
func endServer(t *testing.T, h *sse.Hub, detach bool) string {
	return serve(t, h, sse.HandlerOptions{Auth: &sse.Auth{Authenticate: tokenAuth}, Detach: detach}).URL
}

func openAs(t *testing.T, url, user, query string) *ssetest.Stream {
	t.Helper()
	return connectWith(t, url+query, "", hdr("Authorization", "Bearer tok-"+user))
}

// waitEnd reads st until it ends and returns the events it got.
func waitEnd(t *testing.T, st *ssetest.Stream) []ssetest.Event {
	t.Helper()
	var got []ssetest.Event
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatalf("the stream did not end cleanly: %v", err)
		}
		got = append(got, ev)
	}
}

func TestEndStreams(t *testing.T) {
	for _, detach := range []bool{false, true} {
		name := map[bool]string{false: "attached", true: "detached"}[detach]
		t.Run(name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			var log obsLog
			h := ssetest.NewHub(t, sse.Options{CloseRetry: 50 * time.Millisecond, Observer: log.observer()})
			url := endServer(t, h, detach)
			alice1 := openAs(t, url, "alice", "?topic=room-1&topic=news")
			alice2 := openAs(t, url, "alice", "?topic=room-2")
			bob := openAs(t, url, "bob", "?topic=room-1")
			carol := openAs(t, url, "carol", "?topic=news")
			testkit.WaitStreams(t, h, 4)
			queued := testkit.Publish(t, h, "room-1", "queued before the end")

			// alice logs out: her streams end, with a last event.
			last := &sse.Event{Type: "logout", Data: []byte(`{"why":"logged out"}`)}
			if err := h.EndStreams(context.Background(), sse.StreamMatch{Principal: "alice"}, last); err != nil {
				t.Fatal(err)
			}
			got := waitEnd(t, alice1)
			if len(got) != 2 || got[0].LastEventID != queued || got[1].Type != "logout" || got[1].Data != `{"why":"logged out"}` || got[1].LastEventID != queued {
				t.Errorf("alice's first stream got %+v, want the queued event, then the logout event without a new id", got)
			}
			if r, ok := alice1.Parser().Retry(); !ok || r < 50*time.Millisecond || r > 100*time.Millisecond {
				t.Errorf("retry hint %v (%v), want 50-100ms", r, ok)
			}
			if got := waitEnd(t, alice2); len(got) != 1 || got[0].Type != "logout" {
				t.Errorf("alice's second stream got %+v, want the logout event", got)
			}
			testkit.WaitStreams(t, h, 2)

			// room-1 is closed: bob's stream ends, carol's does not.
			if err := h.EndStreams(context.Background(), sse.StreamMatch{Topic: "room-1"}, nil); err != nil {
				t.Fatal(err)
			}
			if got := waitEnd(t, bob); len(got) != 1 || got[0].LastEventID != queued {
				t.Errorf("bob got %+v, want only the queued event", got)
			}
			testkit.WaitStreams(t, h, 1)
			news := testkit.Publish(t, h, "news", "still here")
			if ev := next(t, carol); ev.LastEventID != news {
				t.Errorf("carol got %+v, want the news", ev)
			}
			// Principal and topic together.
			dave := openAs(t, url, "dave", "?topic=news")
			daveRoom := openAs(t, url, "dave", "?topic=room-3")
			testkit.WaitStreams(t, h, 3)
			if err := h.EndStreams(context.Background(), sse.StreamMatch{Principal: "dave", Topic: "room-3"}, nil); err != nil {
				t.Fatal(err)
			}
			waitEnd(t, daveRoom)
			testkit.WaitStreams(t, h, 2)
			news = testkit.Publish(t, h, "news", "dave stays")
			if ev := next(t, dave); ev.LastEventID != news {
				t.Errorf("dave's other stream got %+v", ev)
			}
			log.mu.Lock()
			requested := 0
			for _, c := range log.closed {
				if c.reason == sse.EndRequested {
					requested++
				}
			}
			log.mu.Unlock()
			if requested != 4 {
				t.Errorf("%d streams closed with EndRequested, want 4", requested)
			}
		})
	}
}

func TestEndStreamsRejects(t *testing.T) {
	h := ssetest.NewHub(t, sse.Options{})
	ctx := context.Background()
	for name, c := range map[string]struct {
		m    sse.StreamMatch
		last *sse.Event
	}{
		"no match":        {sse.StreamMatch{}, nil},
		"last with an ID": {sse.StreamMatch{Principal: "a"}, &sse.Event{ID: "1"}},
		"last empty ID":   {sse.StreamMatch{Principal: "a"}, &sse.Event{Flags: sse.EmptyID}},
		"invalid last":    {sse.StreamMatch{Principal: "a"}, &sse.Event{Type: "a\nb"}},
		"last too large":  {sse.StreamMatch{Principal: "a"}, &sse.Event{Data: make([]byte, 20<<10)}},
		"last with retry": {sse.StreamMatch{Principal: "a"}, &sse.Event{Retry: time.Second}},
		"last retry 0":    {sse.StreamMatch{Principal: "a"}, &sse.Event{Flags: sse.RetryZero}},
	} {
		if err := h.EndStreams(ctx, c.m, c.last); err == nil {
			t.Errorf("%s: EndStreams accepted it", name)
		}
	}
}

// TestEndStreamsAcrossHubs: with a Broadcaster, ending alice's streams on
// one hub ends them on every hub that shares the store.
func TestEndStreamsAcrossHubs(t *testing.T) {
	bus := newMemBus(newTestStore(t))
	var hubs []*sse.Hub
	var urls []string
	for range 3 {
		h := ssetest.NewHub(t, sse.Options{Store: bus, CloseRetry: 10 * time.Millisecond})
		hubs = append(hubs, h)
		urls = append(urls, endServer(t, h, false))
	}
	var alice, bob []*ssetest.Stream
	for i, url := range urls {
		alice = append(alice, openAs(t, url, "alice", "?topic=t"))
		bob = append(bob, openAs(t, url, "bob", "?topic=t"))
		testkit.WaitStreams(t, hubs[i], 2)
	}
	// A signal reaches the hubs that listen when it is sent.
	testkit.Eventually(t, "every hub to listen", func() bool { return bus.listenerCount() == len(hubs) })
	if err := hubs[1].EndStreams(context.Background(), sse.StreamMatch{Principal: "alice"}, &sse.Event{Type: "logout"}); err != nil {
		t.Fatal(err)
	}
	for i, st := range alice {
		if got := waitEnd(t, st); len(got) != 1 || got[0].Type != "logout" {
			t.Errorf("hub %d: alice got %+v", i, got)
		}
	}
	id := testkit.Publish(t, hubs[0], "t", "for bob")
	for i, st := range bob {
		if ev := next(t, st); ev.LastEventID != id {
			t.Errorf("hub %d: bob got %+v", i, ev)
		}
	}
}

// TestShutdownStopsListenerWhenContextExpires: Shutdown whose context
// expires before the streams end still stops the store's Listen.
func TestShutdownStopsListenerWhenContextExpires(t *testing.T) {
	bus := newMemBus(newTestStore(t))
	h, err := sse.NewHub(sse.Options{Store: bus})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	// A stream whose handler cannot return: its client never reads, and
	// the write of the end waits for WriteTimeout (10 s).
	stalled := stalledClient(t, srv, "/")
	_ = stalled.(*net.TCPConn).SetReadBuffer(4096)
	testkit.Eventually(t, "the stream", func() bool { return h.Stats().Streams == 1 })
	for range 100 {
		testkit.Publish(t, h, "t", string(make([]byte, 64<<10)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with a stream that cannot end")
	}
	if n := bus.listenerCount(); n != 0 {
		t.Errorf("%d store listeners still running after Shutdown returned", n)
	}
}

func newTestStore(t *testing.T) *sse.MemoryStore {
	t.Helper()
	s, err := sse.NewMemoryStore(sse.MemoryStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestShutdownAfterEagerBroadcast: a store that hands the hub its own
// entry before Append returns does not leave Shutdown waiting for that
// entry: Shutdown returns at once, after the stream got it.
func TestShutdownAfterEagerBroadcast(t *testing.T) {
	bus := newMemBus(newTestStore(t))
	bus.eager = true
	h := ssetest.NewHub(t, sse.Options{Store: bus, CloseRetry: 10 * time.Millisecond})
	url := endServer(t, h, false)
	st := openAs(t, url, "alice", "?topic=t")
	testkit.WaitStreams(t, h, 1)
	id := testkit.Publish(t, h, "t", "last")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v, waiting for an entry the hub had delivered", d)
	}
	if got := waitEnd(t, st); len(got) != 1 || got[0].LastEventID != id {
		t.Errorf("the stream got %+v, want the event published before Shutdown", got)
	}
}
