package sse_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// eagerBus is a memBus whose Append returns only once every Listen has
// delivered the entry, as a fast shared store may: the hub gets its own
// publish back before Publish has returned.
type eagerBus struct {
	*memBus
	delivered chan struct{}
}

func (b *eagerBus) Listen(ctx context.Context, l sse.Listener) error {
	return b.memBus.Listen(ctx, eagerListener{l, b.delivered})
}

func (b *eagerBus) Append(ctx context.Context, topic string, ev sse.Event) (sse.Entry, error) {
	e, err := b.memBus.Append(ctx, topic, ev)
	if err == nil {
		<-b.delivered
	}
	return e, err
}

type eagerListener struct {
	sse.Listener
	delivered chan struct{}
}

func (l eagerListener) Deliver(e sse.Entry) {
	l.Listener.Deliver(e)
	l.delivered <- struct{}{}
}

// TestShutdownAfterEagerDelivery: Shutdown waits for the hub's own
// publishes to come back, and must not wait for one that came back before
// Publish returned.
func TestShutdownAfterEagerDelivery(t *testing.T) {
	bus := &eagerBus{memBus: newMemBus(newTestStore(t)), delivered: make(chan struct{})}
	h, err := sse.NewHub(sse.Options{Store: bus})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
	st := ssetest.Open(t, srv.URL, "", http.Header{})
	testkit.Eventually(t, "the stream", func() bool { return h.Stats().Streams == 1 })
	id := testkit.Publish(t, h, "t", "x")
	if ev, err := st.Next(); err != nil || ev.LastEventID != id {
		t.Fatalf("got %+v, %v", ev, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v: it waited for an event the hub had delivered", d)
	}
}

// TestShutdownDuringFanOut: Publish returns while the store's listener is
// still fanning the entry out to a topic's many streams; Shutdown right
// after must still let every stream have it before the stream ends.
func TestShutdownDuringFanOut(t *testing.T) {
	for round := range 10 {
		bus := newMemBus(newTestStore(t))
		h, err := sse.NewHub(sse.Options{Store: bus})
		if err != nil {
			t.Fatal(err)
		}
		srv := serve(t, h, sse.HandlerOptions{Topics: sse.Topics("t")})
		streams := make([]*ssetest.Stream, 200)
		for i := range streams {
			streams[i] = connect(t, srv.URL, "")
		}
		id := testkit.Publish(t, h, "t", "before shutdown")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := h.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		for i, st := range streams {
			if ev, err := st.Next(); err != nil || ev.LastEventID != id {
				t.Fatalf("round %d, stream %d: got %+v, %v before the end, want the event published before Shutdown", round, i, ev, err)
			}
			st.Close()
		}
	}
}
