package enginetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// Run runs every check of the suite on e, each as a subtest with buses of
// its own.
func Run(t *testing.T, e Engine) {
	if e.NewBus == nil {
		t.Fatal("enginetest: Engine.NewBus is nil")
	}
	if e.BehindEvents == 0 {
		e.BehindEvents = 10000
	}
	checks := []struct {
		name string
		run  func(*testing.T, Engine)
	}{
		{"OrderAcrossProcesses", checkOrder},
		{"ProcessDiesClientResumesElsewhere", checkProcessDies},
		{"FollowOnly", checkFollowOnly},
		{"ConnectionKilled", checkConnectionKilled},
		{"PublishDuringOutage", checkPublishDuringOutage},
		{"OutageLongerThanHistory", checkOutageLongerThanHistory},
		{"ListenerFallsBehind", checkFallsBehind},
		{"DataLost", checkDataLost},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			c.run(t, e)
		})
	}
}

var topicsABC = []string{"a", "b", "c"}

// checkOrder: events published concurrently on three processes reach the
// clients of every process, each topic's in the order of its history,
// exactly once; a stream of one topic is sent the IDs Publish returned.
func checkOrder(t *testing.T, e Engine) {
	bus := e.NewBus(t)
	procs := []*proc{newProc(t, bus, "A", 0, sse.Options{}), newProc(t, bus, "B", 0, sse.Options{}), newProc(t, bus, "C", 0, sse.Options{})}
	type client struct {
		what   string
		topics []string
		r      *reader
	}
	var clients []client
	for _, p := range procs {
		for _, topics := range [][]string{{"a", "b"}, {"c"}, {"a", "b", "c"}} {
			st := p.stream(t, "", topics...)
			for _, topic := range topics {
				probe(t, procs[0].hub, st, topic)
			}
			clients = append(clients, client{"client of " + strings.Join(topics, ",") + " on " + p.name, topics, read(st)})
		}
	}
	from := positions(t, procs[0].node.Store(), topicsABC...)
	pubs := []*publisher{
		startPublisher("A", procs[0].hub, time.Millisecond, topicsABC...),
		startPublisher("B", procs[1].hub, time.Millisecond, topicsABC...),
		startPublisher("C", procs[2].hub, time.Millisecond, topicsABC...),
		startPublisher("C2", procs[2].hub, 0, topicsABC...),
	}
	// At least 400ms and 200 events (a loaded machine publishes fewer).
	time.Sleep(400 * time.Millisecond)
	eventually(t, "200 events published", func() bool { return okCount(pubs...) >= 200 })
	for _, p := range pubs {
		p.halt()
	}
	hist := history(t, procs[1].node.Store(), from)
	checkPublished(t, hist, pubs...)
	for _, c := range clients {
		waitFor(t, c.what, c.r.events, hist, c.topics...)
		expectExactly(t, c.what, c.r.events(), hist, c.topics...)
	}
	// Streams of one topic ("c") carry the IDs Publish returned.
	ids := map[string]string{}
	for _, p := range pubs {
		ok, _, _ := p.results()
		for _, e := range ok {
			ids[e.data] = e.id
		}
	}
	for _, c := range clients {
		if len(c.topics) != 1 {
			continue
		}
		for _, ev := range c.r.events() {
			if want, ok := ids[ev.Data]; ok && ev.LastEventID != want {
				t.Fatalf("%s: %q came with id %q; Publish returned %q", c.what, ev.Data, ev.LastEventID, want)
			}
		}
	}
}

// checkProcessDies is the fail-over a load balancer makes: process B dies
// at a random point while publishers on every process keep publishing;
// its client reconnects to C with its Last-Event-ID and gets every event
// of its topics exactly once, in order. Clients of A and C, connected
// throughout, get the same.
func checkProcessDies(t *testing.T, e Engine) {
	bus := e.NewBus(t)
	a, b, c := newProc(t, bus, "A", 0, sse.Options{}), newProc(t, bus, "B", 0, sse.Options{}), newProc(t, bus, "C", 0, sse.Options{})
	onB := b.stream(t, "", topicsABC...)
	watchers := map[string]*ssetest.Stream{"A": a.stream(t, "", topicsABC...), "C": c.stream(t, "", topicsABC...)}
	for _, topic := range topicsABC {
		probe(t, a.hub, onB, topic)
		for _, st := range watchers {
			probe(t, a.hub, st, topic)
		}
	}
	readers := map[string]*reader{}
	for name, st := range watchers {
		readers[name] = read(st)
	}
	fromB := read(onB)
	from := positions(t, a.node.Store(), topicsABC...)
	pubA := startPublisher("A", a.hub, time.Millisecond, topicsABC...)
	pubB := startPublisher("B", b.hub, time.Millisecond, topicsABC...)
	pubC := startPublisher("C", c.hub, time.Millisecond, topicsABC...)
	time.Sleep(100*time.Millisecond + rand.N(300*time.Millisecond))
	pubB.halt() // B's publishers die with it
	b.crash(t)
	eventually(t, "the stream on B to break", func() bool { done, _ := fromB.ended(); return done })
	before := fromB.events()
	lastID := onB.Parser().LastEventID()
	time.Sleep(100 * time.Millisecond) // the client is away while events are published
	resumed := read(c.stream(t, lastID, topicsABC...))
	time.Sleep(200 * time.Millisecond)
	pubA.halt()
	pubC.halt()
	hist := history(t, a.node.Store(), from)
	checkPublished(t, hist, pubA, pubB, pubC)
	got := func() []ssetest.Event { return append(slices.Clone(before), resumed.events()...) }
	waitFor(t, "the client of B, resumed on C", got, hist, topicsABC...)
	expectExactly(t, "the client of B, resumed on C", got(), hist, topicsABC...)
	if len(byTopic(before)["a"])+len(byTopic(before)["b"])+len(byTopic(before)["c"]) == 0 {
		t.Error("B died before its client got any event: the check did not check resuming")
	}
	for name, r := range readers {
		waitFor(t, "the client of "+name, r.events, hist, topicsABC...)
		expectExactly(t, "the client of "+name, r.events(), hist, topicsABC...)
	}
}

// checkFollowOnly: a store hands its listener the topics it follows and no
// other, and stops handing over a topic it unfollowed.
func checkFollowOnly(t *testing.T, e Engine) {
	bus := e.NewBus(t)
	pub := newProc(t, bus, "P", 0, sse.Options{})
	node := bus.NewNode(t, 0)
	s := node.Store()
	r := &recorder{}
	listen(t, s, r)
	ctx := context.Background()
	follow := func(topic string) {
		t.Helper()
		n, err := s.Newest(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		s.Follow(topic, n)
	}
	// mark publishes on topic until the listener has one of them.
	mark := func(topic string) {
		t.Helper()
		eventually(t, "an event of "+topic, func() bool {
			data := eventData(topic, "mark", 0)
			testkit.Publish(t, pub.hub, topic, data)
			time.Sleep(5 * time.Millisecond)
			return slices.ContainsFunc(r.list(), func(e sse.Entry) bool { return string(e.Event.Data) == data })
		})
	}
	follow("a")
	mark("a")
	for i := range 20 {
		testkit.Publish(t, pub.hub, []string{"a", "b"}[i%2], strconv.Itoa(i))
	}
	mark("a")
	for _, e := range r.list() {
		if e.Topic != "a" {
			t.Fatalf("the listener got an entry of %s, which it does not follow", e.Topic)
		}
	}
	s.Unfollow("a")
	follow("z")
	mark("z")
	n := len(r.list())
	for i := range 10 {
		testkit.Publish(t, pub.hub, "a", strconv.Itoa(i))
	}
	mark("z")
	for _, e := range r.list()[n:] {
		if e.Topic == "a" {
			t.Fatalf("the listener still gets entries of a topic it unfollowed")
		}
	}
}

// checkConnectionKilled: the bus kills a process's connections several
// times while events are published elsewhere; its clients get every event
// exactly once, with no reset.
func checkConnectionKilled(t *testing.T, e Engine) {
	bus := e.NewBus(t)
	a, b := newProc(t, bus, "A", 0, sse.Options{}), newProc(t, bus, "B", 0, sse.Options{})
	st := a.stream(t, "", "a", "b")
	probe(t, b.hub, st, "a")
	probe(t, b.hub, st, "b")
	r := read(st)
	from := positions(t, b.node.Store(), "a", "b")
	pub := startPublisher("B", b.hub, time.Millisecond, "a", "b")
	for range 3 {
		time.Sleep(50*time.Millisecond + rand.N(100*time.Millisecond))
		a.node.Kill(t)
	}
	time.Sleep(100 * time.Millisecond)
	pub.halt()
	hist := history(t, b.node.Store(), from)
	checkPublished(t, hist, pub)
	waitFor(t, "the client of A", r.events, hist, "a", "b")
	expectExactly(t, "the client of A", r.events(), hist, "a", "b")
}

// checkPublishDuringOutage: while the bus is unreachable from a process,
// its Publish fails within the caller's deadline; once it is back, Publish
// works, and the process's clients get what was published elsewhere
// meanwhile, with no reset (the history covers the outage).
func checkPublishDuringOutage(t *testing.T, e Engine) {
	const keep = 1 << 16 // more than is published during the outage
	bus := e.NewBus(t)
	a, b := newProc(t, bus, "A", keep, sse.Options{}), newProc(t, bus, "B", keep, sse.Options{})
	st := a.stream(t, "", "t")
	probe(t, b.hub, st, "t")
	r := read(st)
	from := positions(t, b.node.Store(), "t")
	pub := startPublisher("B", b.hub, 2*time.Millisecond, "t")
	a.node.Down(t)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		_, err := a.hub.Publish(ctx, "t", sse.Event{Data: []byte(eventData("t", "A-down", i))})
		cancel()
		if err == nil {
			t.Fatal("Publish succeeded while the bus was unreachable")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Publish took %v to fail, with a 2s deadline", d)
		}
	}
	eventually(t, "the outage to be reported", func() bool { downs, _ := a.states.counts(); return downs > 0 })
	a.node.Up(t)
	var ok published
	eventually(t, "Publish to work again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		data := eventData("t", "A-up", 0)
		id, err := a.hub.Publish(ctx, "t", sse.Event{Data: []byte(data)})
		ok = published{"t", data, id}
		return err == nil
	})
	time.Sleep(100 * time.Millisecond)
	pub.halt()
	eventually(t, "delivery to resume", func() bool { downs, ups := a.states.counts(); return ups >= downs })
	hist := history(t, b.node.Store(), from)
	if !slices.Contains(hist["t"], ok.data) {
		t.Errorf("the publish after the outage is not in the history")
	}
	waitFor(t, "the client of A", r.events, hist, "t")
	// What A failed to publish is not in the history, unless the bus got
	// it before the connection broke: only the order is checked then.
	expectExactly(t, "the client of A", r.events(), hist, "t")
}

// checkOutageLongerThanHistory: a process cut off from the bus while more
// events are published elsewhere than the history keeps must tell its
// clients (the reset event, "evicted"), then deliver what follows; it must
// never leave a silent gap.
func checkOutageLongerThanHistory(t *testing.T, e Engine) {
	const keep = 20
	bus := e.NewBus(t)
	a, b := newProc(t, bus, "A", keep, sse.Options{}), newProc(t, bus, "B", keep, sse.Options{})
	st := a.stream(t, "", "t")
	probe(t, b.hub, st, "t")
	before := st.Parser().LastEventID()
	r := read(st)
	a.node.Down(t)
	for i := range 3 * keep {
		testkit.Publish(t, b.hub, "t", eventData("t", "B", i))
	}
	a.node.Up(t)
	eventually(t, "delivery to resume", func() bool { downs, ups := a.states.counts(); return downs > 0 && ups >= downs })
	last := eventData("t", "B", 3*keep)
	testkit.Publish(t, b.hub, "t", last)
	eventually(t, "the event published after the outage", func() bool {
		evs := r.events()
		return len(evs) > 0 && evs[len(evs)-1].Data == last
	})
	evs := slices.DeleteFunc(r.events(), func(ev ssetest.Event) bool { return isProbe(ev.Data) })
	reset := slices.IndexFunc(evs, func(ev ssetest.Event) bool { return ev.Type == "sse-reset" })
	if reset < 0 {
		t.Fatalf("A's client missed %d events with no reset: got %d events", 3*keep, len(evs))
	}
	if evs[reset].Data != `{"reason":"evicted"}` {
		t.Errorf("reset %q, want reason evicted", evs[reset].Data)
	}
	// Before the reset, the first events in order; after it, the last
	// ones, in order, to the end.
	for i, ev := range evs[:reset] {
		if want := eventData("t", "B", i); !samePublish(ev.Data, want) {
			t.Fatalf("event %d before the reset is %q, want %q", i, ev.Data, want)
		}
	}
	after := evs[reset+1:]
	if len(after) == 0 || len(after) > keep+1 {
		t.Fatalf("%d events after the reset; the history holds %d", len(after), keep)
	}
	for i, ev := range after {
		if want := eventData("t", "B", 3*keep+1-len(after)+i); !samePublish(ev.Data, want) {
			t.Fatalf("event %d after the reset is %q, want %q", i, ev.Data, want)
		}
	}
	// A client that resumes from before the outage is reset too.
	st2 := a.stream(t, before, "t")
	if ev := ssetest.NextWithin(t, st2, 10*time.Second); ev.Type != "sse-reset" {
		t.Errorf("resuming from before the outage gave %+v, want the reset event", ev)
	}
}

// samePublish compares event data but for the random part.
func samePublish(got, want string) bool {
	i := strings.LastIndexByte(want, '|')
	return i > 0 && strings.HasPrefix(got, want[:i+1])
}

// checkFallsBehind: a listener whose Deliver is stuck while many events
// are published gets every one of them, once, in order, when it goes on.
func checkFallsBehind(t *testing.T, e Engine) {
	bus := e.NewBus(t)
	n := e.BehindEvents
	pub := newProc(t, bus, "P", 2*n, sse.Options{})
	node := bus.NewNode(t, 2*n)
	s := node.Store()
	r := &recorder{}
	listen(t, s, r)
	from := positions(t, s, "t")
	s.Follow("t", from["t"])
	eventually(t, "the listener to follow", func() bool {
		testkit.Publish(t, pub.hub, "t", eventData("t", "probe", 0))
		time.Sleep(5 * time.Millisecond)
		return len(r.list()) > 0
	})
	block := make(chan struct{})
	r.mu.Lock()
	r.block = block
	r.mu.Unlock()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := pub.hub.Publish(context.Background(), "t", sse.Event{Data: []byte(eventData("t", "P", i))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	r.mu.Lock()
	r.block = nil
	r.mu.Unlock()
	close(block)
	hist := history(t, s, from)
	eventually(t, "every event", func() bool { return len(r.list()) >= len(hist["t"]) })
	time.Sleep(50 * time.Millisecond)
	var got []string
	for _, e := range r.list() {
		if !isProbe(string(e.Event.Data)) {
			got = append(got, string(e.Event.Data))
		}
	}
	if !slices.Equal(got, hist["t"]) {
		t.Errorf("the listener that fell behind: %s", diff(got, hist["t"]))
	}
	if len(hist["t"]) != n {
		t.Errorf("the history holds %d events, want %d", len(hist["t"]), n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lost) > 0 {
		t.Errorf("Lost(%v): nothing was lost", r.lost)
	}
}

// checkDataLost: when the bus loses its data, a client that resumes with
// an ID from before is reset, never sent events as if nothing happened;
// live delivery goes on.
func checkDataLost(t *testing.T, e Engine) {
	bus := e.NewBus(t)
	a, b := newProc(t, bus, "A", 0, sse.Options{}), newProc(t, bus, "B", 0, sse.Options{})
	st := a.stream(t, "", "t")
	probe(t, b.hub, st, "t")
	for i := range 5 {
		testkit.Publish(t, b.hub, "t", eventData("t", "B", i))
		if ev := nextEvent(t, st); !samePublish(ev.Data, eventData("t", "B", i)) {
			t.Fatalf("got %+v", ev)
		}
	}
	old := st.Parser().LastEventID()
	if !bus.LoseData(t) {
		t.Skip("the engine cannot lose its data on purpose")
	}
	// Live delivery goes on: new events reach A's client, after a reset if
	// A noticed the loss.
	r := read(st)
	for i := 0; ; i++ {
		data := eventData("t", "B", 100+i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := b.hub.Publish(ctx, "t", sse.Event{Data: []byte(data)})
		cancel()
		if err == nil {
			eventually(t, "live delivery after the loss", func() bool {
				return slices.ContainsFunc(r.events(), func(ev ssetest.Event) bool { return ev.Data == data })
			})
			break
		}
		if i == 100 {
			t.Fatalf("Publish fails since the loss: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []*proc{a, b} {
		resumed := p.stream(t, old, "t")
		if ev := ssetest.NextWithin(t, resumed, 10*time.Second); ev.Type != "sse-reset" {
			t.Errorf("resuming on %s with an ID from before the loss gave %+v, want the reset event", p.name, ev)
		}
	}
}

// nextEvent returns st's next event that is not a probe's.
func nextEvent(t *testing.T, st *ssetest.Stream) ssetest.Event {
	t.Helper()
	for {
		if ev := ssetest.NextWithin(t, st, 10*time.Second); !isProbe(ev.Data) {
			return ev
		}
	}
}
