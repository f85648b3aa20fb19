package sseredis_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest"
)

// listening runs s.Listen in a goroutine, collecting what it hands over.
type listening struct {
	mu      sync.Mutex
	entries []sse.Entry
	states  []error
	lost    []string
	block   chan struct{} // Deliver waits on it while it is open
	cancel  context.CancelFunc
	done    chan error
}

func (l *listening) Deliver(e sse.Entry) {
	l.mu.Lock()
	b := l.block
	l.mu.Unlock()
	if b != nil {
		<-b
	}
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
}

func (l *listening) State(err error) {
	l.mu.Lock()
	l.states = append(l.states, err)
	l.mu.Unlock()
}

func (l *listening) Lost(topic string) {
	l.mu.Lock()
	l.lost = append(l.lost, topic)
	l.mu.Unlock()
}

func (l *listening) Signal([]byte) {}

// NewEpoch is never called: a topic that Redis forgot begins again above
// every Seq it had, so the hub need not forget any.
func (l *listening) NewEpoch() {}

func listen(t *testing.T, s *sseredis.Store) *listening {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listening{cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- s.Listen(ctx, l) }()
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

func (l *listening) list() []sse.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// subscribed reports whether n connections are subscribed to the
// channels of topics ("t" when none is given).
func (l *listening) subscribed(env *testEnv, n int, topics ...string) bool {
	if len(topics) == 0 {
		topics = []string{"t"}
	}
	for _, t := range topics {
		if env.subscribers(t) != n {
			return false
		}
	}
	return true
}

// subscribers returns the number of connections subscribed to topic's
// channel.
func (e *testEnv) subscribers(topic string) int {
	ch := e.prefix + ":{" + sseredis.Escape(topic) + "}:c"
	m, err := e.admin.PubSubNumSub(context.Background(), ch).Result()
	if err != nil {
		e.t.Fatalf("PUBSUB NUMSUB: %v", err)
	}
	return int(m[ch])
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

// TestListenFallsBehind: a Listen whose Deliver is stuck while more than
// 8192 events are published drops the messages it cannot hold and reads
// them from the history: nothing is lost or repeated.
func TestListenFallsBehind(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{MaxEventsPerTopic: 20000})
	pub := env.store(env.client(""), sseredis.Options{MaxEventsPerTopic: 20000})
	after, err := s.Newest(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t, s)
	s.Follow("t", after)
	waitUntil(t, "the subscription", func() bool { return l.subscribed(env, 1) })
	block := make(chan struct{})
	l.mu.Lock()
	l.block = block
	l.mu.Unlock()
	const n = 10000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := pub.Append(context.Background(), "t", sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
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

// TestListenSkipsForeignMessages: a malformed message on a topic's channel
// is ignored; Listen reads the history instead and goes on.
func TestListenSkipsForeignMessages(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	after, _ := s.Newest(context.Background(), "t")
	l := listen(t, s)
	s.Follow("t", after)
	waitUntil(t, "the subscription", func() bool { return l.subscribed(env, 1) })
	ctx := context.Background()
	for i, junk := range []string{"hello", "sse2", "sse23:abc1:x", "sse1whatever"} {
		if _, err := s.Append(ctx, "t", sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		env.admin.Publish(ctx, env.prefix+":{t}:c", junk)
	}
	waitUntil(t, "the malformed messages to be logged", func() bool {
		return strings.Count(env.logs.String(), "ignoring a malformed message") == 4
	})
	l.checkSeqs(t, after, 4)
}

// TestFollowUnfollow: a store subscribes to the channels of the topics it
// follows and of no other, and Listen hands over only those.
func TestFollowUnfollow(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	pub := env.store(env.client(""), sseredis.Options{})
	ctx := context.Background()
	l := listen(t, s)
	aPos, _ := s.Newest(ctx, "a")
	s.Follow("a", aPos)
	waitUntil(t, "a subscribed", func() bool { return l.subscribed(env, 1, "a") })
	appendN(t, pub, func(int) string { return "b" }, 3)
	a := appendN(t, pub, func(int) string { return "a" }, 2)
	l.checkSeqs(t, aPos, 2)
	if env.subscribers("b") != 0 {
		t.Fatal("the store subscribed to a topic it does not follow")
	}
	s.Unfollow("a")
	waitUntil(t, "a unsubscribed", func() bool { return l.subscribed(env, 0, "a") })
	appendN(t, pub, func(int) string { return "a" }, 2)
	// Followed again from where it was: the two published meanwhile come
	// from the history.
	s.Follow("a", a[1].Seq)
	l.checkSeqs(t, aPos, 4)
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
	waitUntil(t, "the subscription", func() bool { return env.subscribers("t") == 1 })
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
	p := testkit.StartProxy(t, redisAddr())
	s := env.store(env.client(p.Addr), sseredis.Options{})
	base := runtime.NumGoroutine()
	l := listen(t, s)
	s.Follow("t", 0)
	waitUntil(t, "the subscription", func() bool { return l.subscribed(env, 1) })
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

// TestFollowManyTopics: a store that follows thousands of topics at once
// subscribes to them in a few commands, and delivers each.
func TestFollowManyTopics(t *testing.T) {
	env := newEnv(t)
	s := env.store(env.client(""), sseredis.Options{})
	pub := env.store(env.client(""), sseredis.Options{})
	l := listen(t, s)
	const n = 3000
	for i := range n {
		s.Follow("m"+strconv.Itoa(i), 0)
	}
	waitUntil(t, "the subscriptions", func() bool { return env.subscribers("m0") == 1 && env.subscribers("m"+strconv.Itoa(n-1)) == 1 })
	for i := range n {
		if _, err := pub.Append(context.Background(), "m"+strconv.Itoa(i), sse.Event{Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "every topic's event", func() bool { return l.count() == n })
	seen := map[string]bool{}
	for _, e := range l.list() {
		if seen[e.Topic] {
			t.Fatalf("%s delivered twice", e.Topic)
		}
		seen[e.Topic] = true
	}
}
