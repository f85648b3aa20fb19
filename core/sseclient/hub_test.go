package sseclient_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseclient"
	"github.com/ssekit/ssekit/core/ssetest"
)

// hubServer is an ssekit hub on topic "t", served by an httptest.Server.
type hubServer struct {
	hub      *sse.Hub
	srv      *httptest.Server
	requests atomic.Int64
}

func newHubServer(t *testing.T, opts sse.Options) *hubServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &hubServer{hub: ssetest.NewHub(t, opts)}
	stream := h.hub.Handler(sse.HandlerOptions{Topics: sse.Topics("t")})
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		stream.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close) // after the hub's Shutdown, which ends the streams
	return h
}

// publish publishes events "0" to total-1 on t, once a stream is open
// (a client that connects without a Last-Event-ID starts with live
// events), calling before(i) first when it is set, and sends their IDs,
// in order, on the returned channel.
func (h *hubServer) publish(ctx context.Context, t *testing.T, total int, before func(i int)) <-chan []string {
	done := make(chan []string, 1)
	go func() {
		var ids []string
		defer func() { done <- ids }()
		for h.hub.Stats().Streams == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		for i := range total {
			if before != nil {
				before(i)
			}
			id, err := h.hub.Publish(ctx, "t", sse.Event{Data: []byte(strconv.Itoa(i))})
			if err != nil {
				t.Errorf("Publish %d: %v", i, err)
				return
			}
			ids = append(ids, id)
		}
	}()
	return done
}

// exactlyOnce reads events from c until event total-1, and checks that
// they are "0" to total-1 with the IDs the hub gave them, each once, in
// order. Each received event is passed to onEvent when it is set.
func exactlyOnce(t *testing.T, ctx context.Context, c *sseclient.Client, total int, ids <-chan []string, onEvent func(n int)) {
	t.Helper()
	var got []sseclient.Event
	for ev, err := range c.Events(ctx) {
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		got = append(got, ev)
		if onEvent != nil {
			onEvent(len(got))
		}
		if ev.Data == strconv.Itoa(total-1) {
			break
		}
	}
	want := <-ids
	if len(want) != total {
		t.Fatalf("published %d events, want %d", len(want), total)
	}
	for i, ev := range got {
		if i >= total || ev != (sseclient.Event{Type: "message", Data: strconv.Itoa(i), LastEventID: want[i]}) {
			t.Fatalf("event #%d is %+v, want data %d with ID %s (got %d events)", i, ev, i, want[i], len(got))
		}
	}
	if len(got) != total {
		t.Fatalf("got %d events, want %d", len(got), total)
	}
}

// TestHubResumeAfterServerDrops cuts the connection from the server side,
// mid-stream, several times while events are being published: the client
// must resume each time and get every event exactly once, in order.
func TestHubResumeAfterServerDrops(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := newHubServer(t, sse.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const total = 2000
	var received atomic.Int64
	// The publisher pauses at each drop point until the client got there,
	// so that every drop happens mid-stream with events still to come.
	drops := map[int]bool{300: true, 700: true, 701: true, 1200: true, 1900: true}
	ids := h.publish(ctx, t, total, func(i int) {
		if drops[i] {
			for received.Load() < int64(i) && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			h.srv.CloseClientConnections()
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	var sent []string
	opts := fast()
	opts.OnConnect = func(ci sseclient.ConnectInfo) { sent = append(sent, ci.LastEventID) }
	c := sseclient.New(h.srv.URL, opts)
	exactlyOnce(t, ctx, c, total, ids, func(n int) { received.Store(int64(n)) })
	if len(sent) != 1+len(drops) || sent[0] != "" {
		t.Errorf("connected %d times, with Last-Event-ID %q; want %d times", len(sent), sent, 1+len(drops))
	}
	for i, id := range sent[1:] {
		if id == "" {
			t.Errorf("reconnection %d sent no Last-Event-ID", i+1)
		}
	}
}

// TestHubResumeAcrossMaxStreamAge lets the hub end every stream after
// MaxStreamAge while events are published: the client comes back after
// the retry hint each time, and gets every event exactly once, in order.
func TestHubResumeAcrossMaxStreamAge(t *testing.T) {
	testkit.CheckGoroutines(t)
	h := newHubServer(t, sse.Options{MaxStreamAge: 100 * time.Millisecond, CloseRetry: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const total = 1500
	ids := h.publish(ctx, t, total, func(i int) {
		if i%3 == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	var ends []error
	opts := fast()
	opts.OnDisconnect = func(di sseclient.DisconnectInfo) { ends = append(ends, di.Err) }
	exactlyOnce(t, ctx, sseclient.New(h.srv.URL, opts), total, ids, nil)
	if len(ends) < 4 {
		t.Errorf("streams ended %d times; want the hub to have rotated several", len(ends))
	}
	t.Logf("%d streams for %d events", h.requests.Load(), total)
}

// TestHubReset resumes from an ID of another store: the hub cannot replay,
// so the client gets a *ResetError first, then live events, and does not
// get another reset when it reconnects.
func TestHubReset(t *testing.T) {
	testkit.CheckGoroutines(t)
	store, err := sse.NewMemoryStore(sse.MemoryStoreOptions{Epoch: "now"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHubServer(t, sse.Options{Store: store})
	testkit.Publish(t, h.hub, "t", "old")
	opts := fast()
	opts.LastEventID = "earlier-7"
	c := sseclient.New(h.srv.URL, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for ev, err := range c.Events(ctx) {
		n++
		switch n {
		case 1:
			reset, ok := err.(*sseclient.ResetError)
			if !ok || reset.Reason != "unknown-id" || ev.Type != "sse-reset" || ev.LastEventID != store.Epoch()+"-1" {
				t.Fatalf("first: %+v, %v; want the reset", ev, err)
			}
			testkit.Publish(t, h.hub, "t", "live")
		case 2:
			if err != nil || ev.Data != "live" {
				t.Fatalf("second: %+v, %v", ev, err)
			}
			h.srv.CloseClientConnections()
			testkit.Publish(t, h.hub, "t", "after drop")
		case 3:
			if err != nil || ev.Data != "after drop" || ev.LastEventID != store.Epoch()+"-3" {
				t.Fatalf("third: %+v, %v", ev, err)
			}
		}
		if n == 3 {
			break
		}
	}
}

// TestHubReconnectCycles makes the client reconnect 1000 times, with
// MaxStreamAge at its least, while events are published, and checks that
// it got every event exactly once and left nothing behind: no goroutine,
// no stream on the hub.
func TestHubReconnectCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 reconnections")
	}
	testkit.CheckGoroutines(t)
	h := newHubServer(t, sse.Options{MaxStreamAge: time.Millisecond, CloseRetry: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const cycles = 1000
	var connects atomic.Int64
	opts := &sseclient.Options{InitialDelay: time.Microsecond, MaxDelay: time.Microsecond,
		OnConnect: func(sseclient.ConnectInfo) { connects.Add(1) }}
	c := sseclient.New(h.srv.URL, opts)
	// Once the client's first stream is open, an event every 2 ms until
	// the client has connected 1000 times, then "end".
	var published []string
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for connects.Load() == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		for ctx.Err() == nil {
			data := strconv.Itoa(len(published))
			if connects.Load() >= cycles {
				data = "end"
			}
			id, err := h.hub.Publish(ctx, "t", sse.Event{Data: []byte(data)})
			if err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
			published = append(published, id)
			if data == "end" {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var got []sseclient.Event
	for ev, err := range c.Events(ctx) {
		if err != nil {
			t.Fatalf("after %d events and %d connections: %v", len(got), connects.Load(), err)
		}
		if ev.Data == "end" {
			break
		}
		got = append(got, ev)
	}
	<-pubDone
	if len(got) != len(published)-1 {
		t.Fatalf("got %d events, want %d", len(got), len(published)-1)
	}
	for i, ev := range got {
		if ev.Data != strconv.Itoa(i) || ev.LastEventID != published[i] {
			t.Fatalf("event #%d is %+v, want data %d, ID %s", i, ev, i, published[i])
		}
	}
	t.Logf("%d connections, %d events", connects.Load(), len(got))
	testkit.WaitStreams(t, h.hub, 0)
}
