package sseredis_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest"
)

// funcListener is an sse.Listener made of functions; nil ones do nothing.
type funcListener struct {
	deliver func(sse.Entry)
	state   func(error)
	signal  func([]byte)
}

func (f funcListener) Deliver(e sse.Entry) {
	if f.deliver != nil {
		f.deliver(e)
	}
}

func (f funcListener) State(err error) {
	if f.state != nil {
		f.state(err)
	}
}

func (f funcListener) Signal(msg []byte) {
	if f.signal != nil {
		f.signal(msg)
	}
}

// listening runs s.Listen from after in a goroutine, collecting entries.
type listening struct {
	mu      sync.Mutex
	entries []sse.Entry
	states  []error
	block   chan struct{} // deliver waits on it while it is open
	cancel  context.CancelFunc
	done    chan error
}

func listen(t *testing.T, s *sseredis.Store, after uint64) *listening {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listening{cancel: cancel, done: make(chan error, 1)}
	go func() {
		l.done <- s.Listen(ctx, after, funcListener{func(e sse.Entry) {
			l.mu.Lock()
			b := l.block
			l.mu.Unlock()
			if b != nil {
				<-b
			}
			l.mu.Lock()
			l.entries = append(l.entries, e)
			l.mu.Unlock()
		}, func(err error) {
			l.mu.Lock()
			l.states = append(l.states, err)
			l.mu.Unlock()
		}, nil})
	}()
	t.Cleanup(func() { l.stop(t) })
	return l
}

func (l *listening) stop(t *testing.T) {
	l.cancel()
	select {
	case err := <-l.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Listen returned %v, want context.Canceled", err)
		}
		l.done <- err // for a second stop
	case <-time.After(10 * time.Second):
		t.Error("Listen did not return after its context was canceled")
	}
}

func (l *listening) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// checkSeqs checks that the entries are exactly after+1 .. after+n.
func (l *listening) checkSeqs(t *testing.T, after uint64, n int) {
	t.Helper()
	waitUntil(t, strconv.Itoa(n)+" entries", func() bool { return l.count() >= n })
	time.Sleep(20 * time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) != n {
		t.Fatalf("%d entries delivered, want %d", len(l.entries), n)
	}
	for i, e := range l.entries {
		if e.Seq != after+uint64(i)+1 {
			t.Fatalf("entry %d has Seq %d, want %d", i, e.Seq, after+uint64(i)+1)
		}
	}
}

// TestListenFallsBehind: a Listen whose deliver is stuck while more than
// 8192 events are published drops the notifications it cannot hold and
// reads them from the stream: nothing is lost or repeated.
func TestListenFallsBehind(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	pub := env.store(env.client(""), sseredis.Options{})
	after, err := s.Newest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t, s, after)
	block := make(chan struct{})
	l.mu.Lock()
	l.block = block
	l.mu.Unlock()
	waitUntil(t, "the subscription", func() bool { return len(env.clientIDs(true)) == 1 })
	const n = 10000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := pub.Append(context.Background(), "t", sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l.mu.Lock()
	l.block = nil
	l.mu.Unlock()
	close(block)
	l.checkSeqs(t, after, n)
	if !strings.Contains(env.logs.String(), "fell behind") {
		t.Error("the listener never fell behind: the test did not test it")
	}
}

// TestListenSkipsForeignNotifications: a malformed message on the channel
// is ignored; Listen reads the stream instead and goes on.
func TestListenSkipsForeignNotifications(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	after, _ := s.Newest(context.Background())
	l := listen(t, s, after)
	waitUntil(t, "the subscription", func() bool { return len(env.clientIDs(true)) == 1 })
	ctx := context.Background()
	for i, junk := range []string{"hello", "sse1", "sse13:abc1:x", "sse2whatever"} {
		if _, err := s.Append(ctx, "t", sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		env.admin.Publish(ctx, env.prefix+":events", junk)
	}
	waitUntil(t, "the malformed notifications to be logged", func() bool {
		return strings.Count(env.logs.String(), "ignoring a notification") == 4
	})
	l.checkSeqs(t, after, 4)
}

// TestOneSubscriptionPerStore: however many hubs share a store and however
// many clients they serve, the process holds one Redis subscription; it
// ends when the last hub shuts down, with every goroutine.
func TestOneSubscriptionPerStore(t *testing.T) {
	env := newEnv(t)
	client := env.client("")
	_ = client.Ping(context.Background()) // its pool is made before counting
	base := runtime.NumGoroutine()
	s := env.store(client, sseredis.Options{})
	var hubs []*sse.Hub
	var streams []*ssetest.Stream
	var servers []*httptest.Server
	for range 3 {
		h, err := sse.NewHub(sse.Options{Store: s, Logger: env.log})
		if err != nil {
			t.Fatal(err)
		}
		hubs = append(hubs, h)
		srv := httptest.NewServer(h.Handler(sse.HandlerOptions{Topics: sse.Topics("t")}))
		servers = append(servers, srv)
		for range 30 {
			streams = append(streams, connect(t, srv.URL, ""))
		}
	}
	id := publish(t, hubs[1], "t", "to all")
	for _, st := range streams {
		if ev := next(t, st); ev.LastEventID != id {
			t.Fatalf("got %+v", ev)
		}
	}
	if n := len(env.clientIDs(true)); n != 1 {
		t.Fatalf("%d subscriptions for one store, 3 hubs and %d clients", n, len(streams))
	}
	for _, st := range streams {
		st.Close()
	}
	for i, h := range hubs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := h.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		servers[i].Close()
	}
	http.DefaultClient.CloseIdleConnections()
	waitUntil(t, "no subscription left", func() bool { return len(env.clientIDs(true)) == 0 })
	waitUntil(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// TestListenEndsDuringOutage: Listen returns promptly when its context is
// canceled even while Redis is unreachable and it waits to retry.
func TestListenEndsDuringOutage(t *testing.T) {
	env := newEnv(t)
	p := startProxy(t, redisAddr())
	s := env.store(env.client(p.addr), sseredis.Options{})
	base := runtime.NumGoroutine()
	l := listen(t, s, 0)
	waitUntil(t, "the subscription", func() bool { return len(env.clientIDs(true)) == 1 })
	p.Down()
	waitUntil(t, "the outage to be reported", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.states) > 0
	})
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	l.stop(t)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Listen took %v to return", d)
	}
	waitUntil(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}
