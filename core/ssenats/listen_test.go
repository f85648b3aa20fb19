package ssenats_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
)

// recorder is an sse.Listener that records what it is handed; slow makes
// each Deliver take that long.
type recorder struct {
	slow time.Duration

	mu      sync.Mutex
	entries []sse.Entry
	lost    []string
	states  []error
	signals []string
	epochs  int // NewEpoch calls
}

func (r *recorder) Deliver(e sse.Entry) {
	if r.slow > 0 {
		time.Sleep(r.slow)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
}

func (r *recorder) State(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, err)
}

func (r *recorder) Lost(topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lost = append(r.lost, topic)
}

func (r *recorder) NewEpoch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epochs++
}

func (r *recorder) Signal(msg []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signals = append(r.signals, string(msg))
}

func (r *recorder) of(topic string) []sse.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sse.Entry
	for _, e := range r.entries {
		if e.Topic == topic {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// listen runs s.Listen(r) until the end of the test.
func listen(t testing.TB, s *ssenats.Store, r *recorder) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Listen(ctx, r)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestListenFollow: Listen hands over the followed topics' events from the
// position Follow gave, and nothing of other topics; after Unfollow, the
// topic's subscription is gone.
func TestListenFollow(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	nc := env.conn("")
	s := env.store(nc, ssenats.Options{})
	pub := env.store(env.conn(""), ssenats.Options{})
	ctx := context.Background()
	before, err := pub.Append(ctx, "a", sse.Event{Data: []byte("before")})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	listen(t, s, r)
	s.Follow("a", before.Seq-1) // the event before is handed over too
	waitUntil(t, "the event before", func() bool { return len(r.of("a")) == 1 })
	subs := nc.NumSubscriptions()
	var want []sse.Entry
	want = append(want, before)
	for i := range 5 {
		e, err := pub.Append(ctx, []string{"a", "b"}[i%2], sse.Event{Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		if e.Topic == "a" {
			want = append(want, e)
		}
	}
	waitUntil(t, "a's events", func() bool { return len(r.of("a")) == len(want) })
	if got := r.of("a"); ids(got) != ids(want) || string(got[0].Event.Data) != "before" || got[0].Event.ID != before.Event.ID {
		t.Errorf("handed over %s, want %s", ids(got), ids(want))
	}
	if n := len(r.of("b")); n != 0 {
		t.Errorf("%d events of b, which nobody follows", n)
	}
	s.Unfollow("a")
	waitUntil(t, "the subscription to a to end", func() bool { return nc.NumSubscriptions() == subs-1 })
	if _, err := pub.Append(ctx, "a", sse.Event{Data: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Signal(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the signal", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.signals) == 1 })
	if n := len(r.of("a")); n != len(want) {
		t.Errorf("%d events of a after Unfollow, want %d", n, len(want))
	}
}

// TestSlowConsumer: a listener far behind, whose inbox overflows so that
// NATS drops live messages, still gets every event of its topics, in
// order, once each: it reads what was dropped from the stream.
func TestSlowConsumer(t *testing.T) {
	testkit.CheckGoroutines(t)
	old := ssenats.SetInboxSize(4)
	t.Cleanup(func() { ssenats.SetInboxSize(old) })
	env := newEnv(t)
	s := env.store(env.conn(""), ssenats.Options{})
	pub := env.store(env.conn(""), ssenats.Options{})
	ctx := context.Background()
	start, err := s.Newest(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{slow: 200 * time.Microsecond}
	listen(t, s, r)
	s.Follow("a", start)
	s.Follow("b", start)
	time.Sleep(50 * time.Millisecond)
	const n = 400
	var wg sync.WaitGroup
	for _, topic := range []string{"a", "b"} {
		for range 4 {
			wg.Go(func() {
				for i := range n / 8 {
					if _, err := pub.Append(ctx, topic, sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	waitUntil(t, "every event", func() bool { return r.count() >= n })
	time.Sleep(100 * time.Millisecond) // none more
	for _, topic := range []string{"a", "b"} {
		if got, want := ids(r.of(topic)), ids(history(t, pub, topic)); got != want {
			t.Errorf("topic %s: handed over\n%s\nwant\n%s", topic, got, want)
		}
	}
	if len(r.lost) != 0 || len(r.states) != 0 {
		t.Errorf("Lost %v, State %v: nothing was lost and the connection stayed up", r.lost, r.states)
	}
}

// TestListenSharedStore: two Listens of one store (two hubs sharing it)
// each get every event of a topic either of them follows.
func TestListenSharedStore(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	s := env.store(env.conn(""), ssenats.Options{})
	ctx := context.Background()
	start, _ := s.Newest(ctx, "a")
	r1, r2 := &recorder{}, &recorder{}
	listen(t, s, r1)
	s.Follow("a", start)
	listen(t, s, r2)
	time.Sleep(50 * time.Millisecond)
	var want []sse.Entry
	for i := range 5 {
		e, err := s.Append(ctx, "a", sse.Event{Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	waitUntil(t, "both listeners", func() bool { return r1.count() == 5 && r2.count() == 5 })
	if ids(r1.of("a")) != ids(want) || ids(r2.of("a")) != ids(want) {
		t.Errorf("handed over %s and %s, want %s", ids(r1.of("a")), ids(r2.of("a")), ids(want))
	}
}

// TestListenStreamRecreated: when the stream is deleted and made anew by
// another process, a listening store learns the new epoch at once (the
// server's advisories), reports the new epoch, and delivers the new
// stream's events.
func TestListenStreamRecreated(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	a := env.store(env.conn(""), ssenats.Options{})
	b := env.store(env.conn(""), ssenats.Options{})
	ctx := context.Background()
	r := &recorder{}
	listen(t, a, r)
	start, _ := a.Newest(ctx, "t")
	a.Follow("t", start)
	waitUntil(t, "the first event", func() bool {
		if _, err := b.Append(ctx, "t", sse.Event{Data: []byte("old")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		return r.count() > 0
	})
	old := a.Epoch()
	deleteStream(t, env)
	var e sse.Entry
	waitUntil(t, "an Append into the new stream", func() bool {
		var err error
		e, err = b.Append(ctx, "t", sse.Event{Data: []byte("new")})
		return err == nil
	})
	waitUntil(t, "the new stream's event", func() bool {
		got := r.of("t")
		return string(got[len(got)-1].Event.Data) == "new"
	})
	if a.Epoch() == old || a.Epoch() != b.Epoch() {
		t.Errorf("epochs: %q before, %q and %q after; want a new one, the same in both stores", old, a.Epoch(), b.Epoch())
	}
	got := r.of("t")
	if last := got[len(got)-1]; last.Event.ID != e.Event.ID {
		t.Errorf("delivered %s, want %s", last.Event.ID, e.Event.ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.epochs == 0 {
		t.Error("the new epoch was not reported")
	}
}
