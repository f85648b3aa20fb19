package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	gosse "github.com/tmaxmax/go-sse"
)

// topic is the only topic the test servers stream.
const topic = "t"

// fixture is a hub served by an httptest.Server that records every stream
// request and can cut the server side of its open connections, plus the
// go-sse clients connected to it. Its teardown checks that nothing is left
// running.
type fixture struct {
	t     *testing.T
	store *sse.MemoryStore
	hub   *sse.Hub
	srv   *httptest.Server
	tr    *http.Transport // shared by the fixture's clients, closed on teardown

	connTracker

	mu       sync.Mutex
	lastIDs  []string // Last-Event-ID header of each stream request, in arrival order
	onStream func()   // when set, called on each stream request; guarded by mu
	stops    []func() // stop the clients
	closing  sync.Once
	baseline int // goroutines before the fixture started
}

// newFixture starts a hub whose MemoryStore has the given epoch, served on
// topic t in the given mode. Teardown runs as a cleanup, or earlier through
// close.
func newFixture(t *testing.T, epoch string, mode streamMode) *fixture {
	t.Helper()
	f := &fixture{t: t, baseline: runtime.NumGoroutine()}
	var err error
	f.store, err = sse.NewMemoryStore(sse.MemoryStoreOptions{Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	f.hub, err = sse.NewHub(sse.Options{Store: f.store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	stream := f.hub.Handler(sse.HandlerOptions{Topics: sse.Topics(topic), Detach: mode.detach})
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-ID"))
		if f.onStream != nil {
			f.onStream()
		}
		f.mu.Unlock()
		stream.ServeHTTP(w, r)
	}))
	f.srv.Config.ConnState = f.track
	f.srv.Start()
	f.tr = &http.Transport{}
	t.Cleanup(f.close)
	return f
}

// requestLastIDs returns the Last-Event-ID header of every stream request so
// far ("" when there was none).
func (f *fixture) requestLastIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lastIDs)
}

// client is a go-sse connection to the fixture's server.
type client struct {
	events <-chan gosse.Event
	// retries receives, each time the client is about to reconnect, the
	// LastEventID of the last event it dispatched: what it will send as
	// Last-Event-ID.
	retries <-chan string
}

// connect starts a go-sse connection, with lastEventID as the Last-Event-ID
// of its first request when it is not empty. The client reconnects by
// itself, quickly, for as long as the fixture lives.
func (f *fixture) connect(lastEventID string) *client {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL, nil)
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}

	events := make(chan gosse.Event, 1024)
	retries := make(chan string, 64)
	var last string // touched only by the goroutine that runs Connect
	c := &gosse.Client{
		HTTPClient: &http.Client{Transport: f.tr},
		OnRetry: func(err error, wait time.Duration) {
			f.t.Logf("go-sse reconnects in %v after: %v", wait, err)
			select {
			case retries <- last:
			default:
				f.t.Error("too many reconnections")
			}
		},
		Backoff: gosse.Backoff{
			InitialInterval: 10 * time.Millisecond,
			Multiplier:      1.5,
			Jitter:          0.5,
			MaxInterval:     100 * time.Millisecond,
			MaxRetries:      20,
		},
	}
	conn := c.NewConnection(req)
	conn.SubscribeToAll(func(ev gosse.Event) {
		last = ev.LastEventID
		if ev.Data == "" && ev.Type == "" {
			// go-sse v0.12.0 dispatches a frame without a data field, which
			// browsers do not (WHATWG "dispatch the event", step 2). The hub
			// sends such a frame, "id: <position>", when a stream opens, so
			// that a client has a position before its first event. The tests
			// never publish empty messages, so these are only those frames.
			return
		}
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	})
	done := make(chan error, 1)
	go func() { done <- conn.Connect() }()

	f.mu.Lock()
	f.stops = append(f.stops, func() {
		cancel()
		select {
		case err := <-done:
			if ctx.Err() == nil {
				f.t.Errorf("go-sse Connect returned before the test ended it: %v", err)
			}
		case <-time.After(5 * time.Second):
			f.t.Error("go-sse Connect did not return within 5s of its context being cancelled")
		}
	})
	f.mu.Unlock()
	return &client{events: events, retries: retries}
}

// next returns the client's next event, failing the test if none comes
// before ctx is done.
func (c *client) next(ctx context.Context, t *testing.T) gosse.Event {
	t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-ctx.Done():
		t.Fatalf("no event received: %v", ctx.Err())
		return gosse.Event{}
	}
}

// close stops the clients, checks that the hub noticed every stream end,
// shuts the hub and the server down and checks that every goroutine the
// fixture and its clients started has returned.
func (f *fixture) close() {
	f.closing.Do(func() {
		t := f.t
		f.mu.Lock()
		stops := f.stops
		f.mu.Unlock()
		for _, stop := range stops {
			stop()
		}
		f.tr.CloseIdleConnections()
		waitFor(t, 3*time.Second, "the hub to count no open stream", func() bool {
			return f.hub.Stats().Streams == 0
		})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := f.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub.Shutdown: %v", err)
		}
		f.srv.Close()
		f.tr.CloseIdleConnections()
		if st := f.hub.Stats(); st.Streams != 0 || st.Topics != 0 || st.QueuedBytes != 0 {
			t.Errorf("hub.Stats() after teardown = %+v, want no streams, topics or queued bytes", st)
		}
		if !waitFor(t, 3*time.Second, "goroutines to return to the baseline of "+strconv.Itoa(f.baseline), func() bool {
			return runtime.NumGoroutine() <= f.baseline
		}) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Logf("%d goroutines left:\n%s", runtime.NumGoroutine(), buf.String())
		}
	})
}

// waitFor polls cond until it holds or timeout passes, which fails the test.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out after %v waiting for %s", timeout, what)
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// TestGoSSEClientResumesAfterServerDrop cuts a go-sse client's connection
// three times while 500 events are being published, and checks that the
// client resumes by itself with Last-Event-ID and ends up with every event
// exactly once, in order. Like the other go-sse tests, it runs with attached
// and with detached streams.
func TestGoSSEClientResumesAfterServerDrop(t *testing.T) {
	forEachMode(t, testGoSSEClientResumesAfterServerDrop)
}

func testGoSSEClientResumesAfterServerDrop(t *testing.T, mode streamMode) {
	const total = 500
	// Each drop happens when the client has received `at` events; the
	// publisher stops before event `gate` until that drop is done, so every
	// drop happens mid-stream and events from `gate` on can only reach the
	// client over a new connection.
	drops := []struct{ at, gate int }{{100, 150}, {300, 350}, {450, 480}}

	f := newFixture(t, "resume", mode)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := f.connect("")
	waitFor(t, 2*time.Second, "the client's stream to open", func() bool { return f.hub.Stats().Streams == 1 })
	checkStreamsDetached(t, f.hub, mode.detach)

	dropped := make([]chan struct{}, len(drops))
	for i := range dropped {
		dropped[i] = make(chan struct{})
	}
	var published atomic.Int64
	var publishedAtRequest []int64 // guarded by f.mu
	f.mu.Lock()
	f.onStream = func() { publishedAtRequest = append(publishedAtRequest, published.Load()) }
	f.mu.Unlock()
	pubErr := make(chan error, 1)
	go func() {
		pubErr <- func() error {
			d := 0
			for i := range total {
				if d < len(drops) && i == drops[d].gate {
					select {
					case <-dropped[d]:
					case <-ctx.Done():
						return ctx.Err()
					}
					d++
				}
				if _, err := f.hub.Publish(ctx, topic, sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
					return err
				}
				published.Add(1)
				time.Sleep(time.Millisecond)
			}
			return nil
		}()
	}()

	var got []gosse.Event
	publishedAtDrop := make([]int64, len(drops))
	for d := 0; ; {
		ev := c.next(ctx, t)
		got = append(got, ev)
		if d < len(drops) && len(got) == drops[d].at {
			// The stream being cut is the reconnection's.
			checkStreamsDetached(t, f.hub, mode.detach)
			publishedAtDrop[d] = published.Load()
			if n := f.dropConns(); n != 1 {
				t.Errorf("drop %d closed %d connections, want 1", d+1, n)
			}
			close(dropped[d])
			d++
		}
		if ev.Type == "" && ev.Data == strconv.Itoa(total-1) {
			break
		}
	}
	select {
	case err := <-pubErr:
		if err != nil {
			t.Fatalf("publisher: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("publisher did not finish")
	}

	if publishedAtDrop[0] >= total {
		t.Errorf("first drop happened after all %d events were published", total)
	}
	f.mu.Lock()
	t.Logf("events published when the connection was dropped: %v; when each reconnection came: %v", publishedAtDrop, publishedAtRequest)
	f.mu.Unlock()
	for i, ev := range got {
		want := gosse.Event{LastEventID: f.store.Epoch() + "-" + strconv.Itoa(i+1), Data: strconv.Itoa(i)}
		if i >= total || ev != want {
			t.Fatalf("event #%d is %+v, want %+v (got %d events; every event must arrive once, in order)", i, ev, want, len(got))
		}
	}
	if len(got) != total {
		t.Fatalf("got %d events, want %d", len(got), total)
	}

	// Every reconnection carried the ID of the last event the client had.
	lastIDs := f.requestLastIDs()
	var retries []string
	for len(retries) < len(lastIDs)-1 {
		select {
		case id := <-c.retries:
			retries = append(retries, id)
		case <-ctx.Done():
			t.Fatalf("server saw %d stream requests but the client reported only %d reconnections", len(lastIDs), len(retries))
		}
	}
	if len(lastIDs) != 1+len(drops) {
		t.Errorf("server saw %d stream requests, want %d (one plus one per drop)", len(lastIDs), 1+len(drops))
	}
	if lastIDs[0] != "" {
		t.Errorf("first request has Last-Event-ID %q, want none", lastIDs[0])
	}
	for i, id := range lastIDs[1:] {
		if id == "" || id != retries[i] {
			t.Errorf("reconnection %d sent Last-Event-ID %q, want %q (the last ID the client received)", i+1, id, retries[i])
		}
	}
}

// TestGoSSEClientReceivesResetForUnknownID connects a go-sse client with a
// Last-Event-ID from another store's epoch: the client must first get the
// reset event, whose ID lets it resume from there, and then live events.
func TestGoSSEClientReceivesResetForUnknownID(t *testing.T) {
	forEachMode(t, testGoSSEClientReceivesResetForUnknownID)
}

func testGoSSEClientReceivesResetForUnknownID(t *testing.T, mode streamMode) {
	f := newFixture(t, "current", mode)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Events from before the client connects are not replayed to it.
	for i := range 3 {
		if _, err := f.hub.Publish(ctx, topic, sse.Event{Data: []byte("old-" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	// An ID of a fresh store with another epoch: the same sequence number
	// as an event the hub holds, but not one of its IDs.
	other, err := sse.NewMemoryStore(sse.MemoryStoreOptions{Epoch: "previous"})
	if err != nil {
		t.Fatal(err)
	}
	entry, err := other.Append(ctx, topic, sse.Event{Data: []byte("elsewhere")})
	if err != nil {
		t.Fatal(err)
	}
	foreign := entry.Event.ID

	c := f.connect(foreign)
	waitFor(t, 2*time.Second, "the client's stream to open", func() bool { return f.hub.Stats().Streams == 1 })
	checkStreamsDetached(t, f.hub, mode.detach)
	// Published while the stream may still be writing the reset: they
	// must come after it.
	var ids []string
	for i := range 5 {
		id, err := f.hub.Publish(ctx, topic, sse.Event{Data: []byte("live-" + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	ev := c.next(ctx, t)
	wantReset := gosse.Event{LastEventID: f.store.Epoch() + "-3", Type: "sse-reset", Data: `{"reason":"unknown-id"}`}
	if ev != wantReset {
		t.Fatalf("first event is %+v, want %+v", ev, wantReset)
	}
	for i, id := range ids {
		want := gosse.Event{LastEventID: id, Data: "live-" + strconv.Itoa(i)}
		if ev := c.next(ctx, t); ev != want {
			t.Fatalf("event after the reset #%d is %+v, want %+v", i, ev, want)
		}
	}

	// After a drop the client resumes from the last live event, without a
	// second reset.
	if n := f.dropConns(); n != 1 {
		t.Fatalf("dropped %d connections, want 1", n)
	}
	id, err := f.hub.Publish(ctx, topic, sse.Event{Data: []byte("after-drop")})
	if err != nil {
		t.Fatal(err)
	}
	if ev, want := c.next(ctx, t), (gosse.Event{LastEventID: id, Data: "after-drop"}); ev != want {
		t.Fatalf("event after the reconnection is %+v, want %+v", ev, want)
	}
	if got, want := f.requestLastIDs(), []string{foreign, ids[len(ids)-1]}; !slices.Equal(got, want) {
		t.Errorf("stream requests had Last-Event-ID %q, want %q", got, want)
	}
}

// TestGoSSEClientsLeaveNothingBehind runs several go-sse clients through a
// drop and a reconnection, stops them, and checks that the hub counts no
// stream and that every goroutine of the clients, the server and the hub
// has returned (detached, the hub's workers and poller too: they stop with
// the last detached stream).
func TestGoSSEClientsLeaveNothingBehind(t *testing.T) {
	forEachMode(t, testGoSSEClientsLeaveNothingBehind)
}

func testGoSSEClientsLeaveNothingBehind(t *testing.T, mode streamMode) {
	const clients = 4
	f := newFixture(t, "leaks", mode)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var cs []*client
	for range clients {
		cs = append(cs, f.connect(""))
	}
	waitFor(t, 2*time.Second, "every client's stream to open", func() bool { return f.hub.Stats().Streams == clients })
	checkStreamsDetached(t, f.hub, mode.detach)
	for round, data := range []string{"before-drop", "after-drop"} {
		if round == 1 {
			if n := f.dropConns(); n != clients {
				t.Fatalf("dropped %d connections, want %d", n, clients)
			}
		}
		id, err := f.hub.Publish(ctx, topic, sse.Event{Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			if ev, want := c.next(ctx, t), (gosse.Event{LastEventID: id, Data: data}); ev != want {
				t.Fatalf("client %d: got %+v, want %+v", i, ev, want)
			}
		}
	}
	waitFor(t, 2*time.Second, "the hub to drop the cut streams", func() bool { return f.hub.Stats().Streams == clients })
	checkStreamsDetached(t, f.hub, mode.detach)
	if n := f.hub.Subscribers(topic); n != clients {
		t.Errorf("hub.Subscribers(%q) = %d, want %d", topic, n, clients)
	}

	// Stops the clients, waits for the hub to count no stream, closes the
	// server and waits for the goroutines to return to the baseline.
	f.close()
}
