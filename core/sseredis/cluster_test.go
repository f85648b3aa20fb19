package sseredis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest"
)

// record is an event as published, as read from the Redis stream, or as
// received by a client.
type record struct {
	id, topic, typ, data string
}

func (r record) String() string { return fmt.Sprintf("%s %s %q", r.id, r.topic, r.data) }

// history returns the events of the given topics that the Redis stream
// holds, in its order: what every client of those topics must receive.
func (e *testEnv) history(topics ...string) []record {
	e.t.Helper()
	ctx := context.Background()
	epoch, err := e.admin.Get(ctx, e.prefix+":epoch").Result()
	if err != nil {
		e.t.Fatalf("reading the epoch: %v", err)
	}
	msgs, err := e.admin.XRange(ctx, e.prefix+":stream", "-", "+").Result()
	if err != nil {
		e.t.Fatalf("reading the stream: %v", err)
	}
	var out []record
	for _, m := range msgs {
		topic, _ := m.Values["topic"].(string)
		if len(topics) > 0 && !slices.Contains(topics, topic) {
			continue
		}
		typ, _ := m.Values["type"].(string)
		if typ == "" {
			typ = "message"
		}
		data, _ := m.Values["data"].(string)
		out = append(out, record{id: epoch + "-" + strings.TrimSuffix(m.ID, "-0"), topic: topic, typ: typ, data: data})
	}
	return out
}

// publisher publishes through a hub until stop is closed, recording what
// it published.
type publisher struct {
	name string
	hub  *sse.Hub

	mu       sync.Mutex
	ok       []record
	failed   int
	errs     []error
	attempts map[string]bool // the data of every publish, failed ones too
}

var topicsABC = []string{"a", "b", "c"}

func (p *publisher) run(stop <-chan struct{}, pace time.Duration) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		topic := topicsABC[rand.N(len(topicsABC))]
		ev := sse.Event{Data: fmt.Appendf(nil, `{"pub":%q,"n":%d,"r":"%s"}`, p.name, n, randomHex(4))}
		if n%7 == 3 {
			ev.Type = "tick"
		}
		p.mu.Lock()
		if p.attempts == nil {
			p.attempts = make(map[string]bool)
		}
		p.attempts[string(ev.Data)] = true
		p.mu.Unlock()
		id, err := p.hub.Publish(context.Background(), topic, ev)
		p.mu.Lock()
		if err != nil {
			p.failed++
			if len(p.errs) < 5 {
				p.errs = append(p.errs, err)
			}
		} else {
			typ := ev.Type
			if typ == "" {
				typ = "message"
			}
			p.ok = append(p.ok, record{id: id, topic: topic, typ: typ, data: string(ev.Data)})
		}
		p.mu.Unlock()
		if pace > 0 {
			time.Sleep(rand.N(pace))
		}
	}
}

func (p *publisher) published() ([]record, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ok), p.failed
}

// publishers runs publishers until the returned stop function is called;
// stop returns what they published.
type publishers struct {
	list []*publisher
	stop chan struct{}
	wg   sync.WaitGroup
}

func startPublishers(pace time.Duration, nodes ...*node) *publishers {
	ps := &publishers{stop: make(chan struct{})}
	for i, n := range nodes {
		p := &publisher{name: fmt.Sprintf("%s%d", n.name, i), hub: n.hub}
		ps.list = append(ps.list, p)
		ps.wg.Add(1)
		go func() { defer ps.wg.Done(); p.run(ps.stop, pace) }()
	}
	return ps
}

func (ps *publishers) halt() {
	select {
	case <-ps.stop:
	default:
		close(ps.stop)
	}
	ps.wg.Wait()
}

// count returns how many events of the topics were published so far.
func (ps *publishers) count(topics ...string) int {
	n := 0
	for _, p := range ps.list {
		ok, _ := p.published()
		for _, r := range ok {
			if slices.Contains(topics, r.topic) {
				n++
			}
		}
	}
	return n
}

// checkRecorded checks the stream against what the publishers were told:
// every successful publish is in the stream, in each publisher's order.
// With exact, the stream holds nothing else (no publish pretended to fail,
// none was recorded twice).
func checkRecorded(t *testing.T, env *testEnv, ps *publishers, exact bool) {
	t.Helper()
	stream := env.history()
	at := make(map[string]int, len(stream))
	for i, r := range stream {
		at[r.id] = i
	}
	total := 0
	for _, p := range ps.list {
		ok, _ := p.published()
		total += len(ok)
		prev := -1
		for _, r := range ok {
			i, found := at[r.id]
			if !found {
				t.Fatalf("publisher %s: %v was published but is not in the stream", p.name, r)
			}
			if stream[i] != r {
				t.Fatalf("publisher %s: published %v, the stream holds %v", p.name, r, stream[i])
			}
			if i <= prev {
				t.Fatalf("publisher %s: %v is before its earlier publish in the stream", p.name, r)
			}
			prev = i
		}
	}
	if exact && total != len(stream) {
		t.Fatalf("the stream holds %d events, the publishers published %d", len(stream), total)
	}
	// Nothing in the stream was made up.
	for _, r := range stream {
		attempted := false
		for _, p := range ps.list {
			p.mu.Lock()
			attempted = attempted || p.attempts[r.data] || (p.attempts == nil && slices.ContainsFunc(p.ok, func(o record) bool { return o.data == r.data }))
			p.mu.Unlock()
		}
		if !attempted {
			t.Fatalf("the stream holds %v, which no publisher published", r)
		}
	}
}

// reader collects a stream's events in a goroutine.
type reader struct {
	mu   sync.Mutex
	got  []record
	err  error
	done chan struct{}
}

func (r *reader) add(ev ssetest.Event, topic string) {
	r.mu.Lock()
	r.got = append(r.got, record{id: ev.LastEventID, typ: ev.Type, data: ev.Data, topic: topic})
	r.mu.Unlock()
}

func (r *reader) events() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *reader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// read reads st until it ends.
func read(st *ssetest.Stream) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			ev, err := st.Next()
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				return
			}
			r.add(ev, "")
		}
	}()
	return r
}

// expectExactly waits until r has as many events as want, and checks that
// they are want: each event once, in order, no reset, nothing else.
func expectExactly(t *testing.T, what string, r *reader, want []record) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.count() < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // anything extra would show up now
	compare(t, what, r.events(), want)
}

func compare(t *testing.T, what string, got, want []record) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		var g, w record
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g.id != w.id || g.typ != w.typ || g.data != w.data {
			t.Fatalf("%s: %d events, want %d; event %d is %v, want %v", what, len(got), len(want), i, g, w)
		}
	}
}

// TestFanOutAcrossNodes: events published on one node reach the clients of
// every node, in the same order everywhere, with the same IDs.
func TestFanOutAcrossNodes(t *testing.T) {
	env := newEnv(t)
	nodes := []*node{env.node("A", nodeConfig{direct: true}), env.node("B", nodeConfig{direct: true}), env.node("C", nodeConfig{direct: true})}
	type client struct {
		what   string
		topics []string
		r      *reader
	}
	var clients []client
	for _, n := range nodes {
		for _, topics := range [][]string{{"a", "b"}, {"c"}, {"a", "b", "c"}} {
			st := connect(t, n.url+"?topic="+strings.Join(topics, "&topic="), "")
			clients = append(clients, client{fmt.Sprintf("client of %v on %s", topics, n.name), topics, read(st)})
		}
	}
	// Published on A only, one at a time.
	first := &publisher{name: "A", hub: nodes[0].hub}
	for i := range 60 {
		id := publish(t, first.hub, topicsABC[i%3], "from A "+strconv.Itoa(i))
		first.ok = append(first.ok, record{id: id, topic: topicsABC[i%3], typ: "message", data: "from A " + strconv.Itoa(i)})
	}
	// Then on every node at once.
	ps := startPublishers(time.Millisecond, nodes[0], nodes[1], nodes[2], nodes[2])
	time.Sleep(300 * time.Millisecond)
	ps.halt()
	checkRecorded(t, env, &publishers{list: append(ps.list, first)}, true)
	if ps.count(topicsABC...) < 100 {
		t.Fatalf("only %d events were published", ps.count(topicsABC...))
	}
	for _, c := range clients {
		expectExactly(t, c.what, c.r, env.history(c.topics...))
	}
}

// TestNodeDiesClientResumesElsewhere is the fail-over a load balancer
// makes: node B dies in the middle of a stream while several publishers on
// every node keep publishing; its client reconnects to node C with its
// Last-Event-ID and gets every event of its topics exactly once, in order.
// Clients of A and C, connected throughout, get the same sequence.
//
// What makes it hard to fake: the kill point is random; events are
// published on all nodes concurrently (B's publishers die with B); the
// client is disconnected until several events of its topics were
// published, so C must replay them from Redis; and every event's ID,
// type and data must be exactly what the Redis stream holds, which in
// turn must be exactly what the publishers were told they published.
func TestNodeDiesClientResumesElsewhere(t *testing.T) {
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) { nodeDies(t) })
	}
}

func nodeDies(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{})
	b := env.node("B", nodeConfig{})
	c := env.node("C", nodeConfig{})
	const query = "?topic=a&topic=b"
	watchA := read(connect(t, a.url+"?topic=a&topic=b&topic=c", ""))
	watchC := read(connect(t, c.url+"?topic=a&topic=b&topic=c", ""))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stB, err := ssetest.Connect(ctx, nil, b.url+query, "")
	if err != nil {
		t.Fatal(err)
	}
	defer stB.Close()

	onA := startPublishers(2*time.Millisecond, a, a)
	onC := startPublishers(2*time.Millisecond, c, c)
	onB := startPublishers(2*time.Millisecond, b, b)
	defer onA.halt()
	defer onC.halt()
	defer onB.halt()

	killAt := 50 + rand.N(250)
	var killed atomic.Bool
	killDone := make(chan struct{})
	kill := func() {
		defer close(killDone)
		killed.Store(true)
		b.srv.CloseClientConnections() // mid-stream, possibly mid-event
		onB.halt()                     // B's publishers die with it
		b.stop(t)
		b.client.Close()
	}

	var got []record
	for {
		ev, err := stB.Next()
		if err != nil {
			if !killed.Load() {
				t.Fatalf("the stream on B broke before B was killed: %v", err)
			}
			break
		}
		got = append(got, record{id: ev.LastEventID, typ: ev.Type, data: ev.Data})
		if len(got) == killAt {
			go kill()
		}
	}
	lastID := stB.Parser().LastEventID()
	onBStream := len(got)
	// Stay away until the stream of a and b moved on, so that C must
	// replay from Redis what the client missed.
	missed := onA.count("a", "b") + onC.count("a", "b") + 5 + rand.N(20)
	waitUntil(t, "events to be published while the client is away", func() bool {
		return onA.count("a", "b")+onC.count("a", "b") >= missed
	})
	stC, err := ssetest.Connect(ctx, nil, c.url+query, lastID)
	if err != nil {
		t.Fatal(err)
	}
	defer stC.Close()
	onC2 := read(stC)
	waitUntil(t, "live events on C", func() bool { return onC2.count() > 150 })
	onA.halt()
	onC.halt()
	<-killDone
	checkRecorded(t, env, &publishers{list: slices.Concat(onA.list, onB.list, onC.list)}, true)

	want := env.history("a", "b")
	expectExactly(t, "the client, on B then on C", &reader{got: slices.Concat(got, waitFor(onC2, len(want)-len(got)))}, want)
	all := env.history()
	expectExactly(t, "the client of A", watchA, all)
	expectExactly(t, "the client of C", watchC, all)
	t.Logf("killed B after %d events (%d read from B); %d events in all, %d of a and b, %d published by B",
		killAt, onBStream, len(all), len(want), onB.count(topicsABC...))
}

// waitFor waits until r has n events (or a while), and returns them.
func waitFor(r *reader, n int) []record {
	deadline := time.Now().Add(30 * time.Second)
	for r.count() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	return r.events()
}

// TestConnectionLoss drops the connections to Redis while events are
// published: the subscriptions (CLIENT KILL TYPE pubsub), the pooled
// connections (CLIENT KILL TYPE normal), and whole nodes' reachability
// (a proxy that goes down and comes back). Connected clients lose nothing,
// and the hubs report the outages and recoveries.
func TestConnectionLoss(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{})
	b := env.node("B", nodeConfig{})
	p := env.node("P", nodeConfig{direct: true})
	nodes := []*node{a, b, p}
	readers := map[*node]*reader{}
	for _, n := range nodes {
		readers[n] = read(connect(t, n.url+"?topic=a&topic=b", ""))
	}
	ps := startPublishers(time.Millisecond, a, b, p, p)
	defer ps.halt()
	downs := func(n *node) int { d, _ := n.states.counts(); return d }
	// outage runs cut, waits until every node of ns reported an outage,
	// runs restore, and waits until they all reported their recovery.
	outage := func(what string, ns []*node, cut, restore func()) {
		t.Helper()
		before := map[*node]int{}
		for _, n := range ns {
			before[n] = downs(n)
		}
		cut()
		for _, n := range ns {
			waitUntil(t, n.name+" to report "+what, func() bool { return downs(n) > before[n] })
		}
		restore()
		for _, n := range ns {
			waitUntil(t, n.name+" to recover from "+what, func() bool {
				d, u := n.states.counts()
				return u >= d && n.states.delivering()
			})
		}
	}

	time.Sleep(100 * time.Millisecond)
	outage("the subscriptions killed", nodes, func() {
		if k := env.killClients("pubsub"); k != len(nodes) {
			t.Errorf("killed %d subscriptions, want one per node (%d)", k, len(nodes))
		}
	}, func() {})

	time.Sleep(100 * time.Millisecond)
	if k := env.killClients("normal"); k == 0 {
		t.Error("no pooled connection to kill")
	}

	time.Sleep(100 * time.Millisecond)
	outage("Redis unreachable", []*node{a}, a.proxy.Down, func() {
		time.Sleep(300 * time.Millisecond) // B and P publish meanwhile
		a.proxy.Up()
	})

	time.Sleep(100 * time.Millisecond)
	outage("Redis unreachable", []*node{a, b}, func() { a.proxy.Down(); b.proxy.Down() }, func() {
		time.Sleep(300 * time.Millisecond)
		a.proxy.Up()
		b.proxy.Up()
	})
	time.Sleep(100 * time.Millisecond)
	ps.halt()

	// Publishes in flight when a connection broke failed, or (go-redis
	// retries after a broken connection) may have been recorded twice;
	// either way every client gets exactly what the stream holds.
	checkRecorded(t, env, ps, false)
	want := env.history("a", "b")
	for _, n := range nodes {
		expectExactly(t, "the client of "+n.name, readers[n], want)
	}
	ok, failed := 0, 0
	for _, p := range ps.list {
		o, f := p.published()
		ok += len(o)
		failed += f
		if f > 0 {
			t.Logf("publisher %s: %d failed, e.g. %v", p.name, f, p.errs[0])
		}
	}
	for _, n := range nodes {
		d, u := n.states.counts()
		t.Logf("node %s: %d outages reported, %d recoveries", n.name, d, u)
	}
	t.Logf("%d publishes succeeded, %d failed; the stream holds %d events, %d of a and b", ok, failed, len(env.history()), len(want))
}

// TestPublishWhileUnreachable: while Redis cannot be reached, Publish
// returns an error, never an ID, and nothing is recorded.
func TestPublishWhileUnreachable(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{})
	st := connect(t, a.url+"?topic=t", "")
	before := publish(t, a.hub, "t", "before")
	if ev := next(t, st); ev.LastEventID != before {
		t.Fatalf("got %+v", ev)
	}
	ctx := context.Background()
	a.proxy.Down()
	start := time.Now()
	id, err := a.hub.Publish(ctx, "t", sse.Event{Data: []byte("lost")})
	if err == nil || id != "" {
		t.Fatalf("Publish with Redis unreachable = %q, %v; want an error", id, err)
	}
	t.Logf("Publish failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := a.store.Append(ctx, "t", sse.Event{Data: []byte("lost")}); err == nil {
		t.Fatal("Append with Redis unreachable succeeded")
	}
	if _, err := a.store.Newest(ctx); err == nil {
		t.Fatal("Newest with Redis unreachable succeeded")
	}
	if _, err := sse.NewHub(sse.Options{Store: a.store}); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("NewHub with Redis unreachable: %v", err)
	}
	waitUntil(t, "the hub to report the outage", func() bool { return !a.states.delivering() })
	// A client that resumes now cannot be given what it missed: it is told.
	resumed := connect(t, a.url+"?topic=t", before)
	if ev := next(t, resumed); ev.Type != "sse-reset" || ev.Data != `{"reason":"unavailable"}` {
		t.Fatalf("resuming during the outage gave %+v, want a reset (unavailable)", ev)
	}
	if n := len(env.history()); n != 1 {
		t.Fatalf("the stream holds %d events, want only the one published before the outage", n)
	}

	a.proxy.Up()
	waitUntil(t, "the hub to recover", func() bool { return a.states.delivering() })
	// go-redis's pool fails fast with the last dial error after repeated
	// ones, until a background dial succeeds (about a second): Publish
	// says so until then.
	var after string
	waitUntil(t, "Publish to work again", func() bool {
		after, err = a.hub.Publish(ctx, "t", sse.Event{Data: []byte("after")})
		if err != nil {
			time.Sleep(50 * time.Millisecond)
		}
		return err == nil
	})
	if ev := next(t, st); ev.LastEventID != after || ev.Data != "after" {
		t.Fatalf("after the outage the client got %+v, want the event published after it", ev)
	}

	t.Run("ClientPause", func(t *testing.T) {
		// Redis holds scripts while writes are paused: Publish gives up
		// after the client's ReadTimeout, with an error. (The paused
		// script runs when the pause ends, so the event may be recorded
		// then: an error means "not confirmed", never "done".)
		c := env.client("", func(o *redis.Options) { o.ReadTimeout = 300 * time.Millisecond; o.MaxRetries = -1 })
		s := env.store(c, sseredis.Options{})
		c2 := env.client("", func(o *redis.Options) { o.ContextTimeoutEnabled = true; o.MaxRetries = -1 })
		s2 := env.store(c2, sseredis.Options{})
		if err := env.admin.Do(ctx, "CLIENT", "PAUSE", 1500, "WRITE").Err(); err != nil {
			t.Fatal(err)
		}
		defer env.admin.Do(ctx, "CLIENT", "UNPAUSE")
		start := time.Now()
		if _, err := s.Append(ctx, "t", sse.Event{Data: []byte("paused")}); err == nil {
			t.Fatal("Append while Redis pauses writes succeeded")
		} else if d := time.Since(start); d > time.Second {
			t.Fatalf("Append failed only after %v: %v", d, err)
		} else {
			t.Logf("Append failed after %v: %v", d.Round(time.Millisecond), err)
		}
		// With ContextTimeoutEnabled, the caller's deadline counts.
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start = time.Now()
		if _, err := s2.Append(short, "t", sse.Event{Data: []byte("paused")}); err == nil {
			t.Fatal("Append with a deadline while Redis pauses writes succeeded")
		} else if d := time.Since(start); d > time.Second {
			t.Fatalf("Append with a 200ms deadline failed only after %v: %v", d, err)
		}
	})
}

// TestOutageLongerThanHistory: a node cut off from Redis while more events
// than the history holds are published delivers, once back, what the
// history still holds, and tells its hub (an error matching
// sse.ErrEvicted) that its open streams missed the rest: each gets the
// reset event before the events the history still holds.
func TestOutageLongerThanHistory(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{store: sseredis.Options{MaxEvents: 20}})
	b := env.node("B", nodeConfig{store: sseredis.Options{MaxEvents: 20}, direct: true})
	r := read(connect(t, a.url+"?topic=t", ""))
	publish(t, b.hub, "t", "before")
	waitUntil(t, "the first event", func() bool { return r.count() == 1 })
	a.proxy.Down()
	waitUntil(t, "A to report the outage", func() bool { return !a.states.delivering() })
	for i := range 50 {
		publish(t, b.hub, "t", strconv.Itoa(i))
	}
	a.proxy.Up()
	waitUntil(t, "A to recover", func() bool { return a.states.delivering() })
	// The hub owes every open stream a reset for the events the history
	// lost; it comes before the ones it still holds.
	// Its ID is the position it follows, that of "before".
	first := r.events()[0].id
	want := append([]record{
		{id: first, typ: "message", data: "before"},
		{id: first, typ: "sse-reset", data: `{"reason":"evicted"}`},
	}, env.history("t")...)
	expectExactly(t, "A's client", r, want)
	a.states.mu.Lock()
	defer a.states.mu.Unlock()
	evicted := 0
	for _, err := range a.states.states {
		if errors.Is(err, sse.ErrEvicted) {
			evicted++
		}
	}
	if evicted != 1 {
		t.Errorf("states %v: want one error matching sse.ErrEvicted", a.states.states)
	}
}

// TestFrozenConnection: a network that stops passing bytes without closing
// the connection (a dead peer, a dropped route) is found by pinging the
// subscription; the hub reports it, and once the network is back the
// client gets what was published meanwhile.
func TestFrozenConnection(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{})
	b := env.node("B", nodeConfig{direct: true})
	r := read(connect(t, a.url+"?topic=t", ""))
	publish(t, b.hub, "t", "before")
	waitUntil(t, "the first event", func() bool { return r.count() == 1 })
	a.proxy.Freeze()
	start := time.Now()
	waitUntil(t, "A to report the frozen connection", func() bool { return !a.states.delivering() })
	t.Logf("found after %v", time.Since(start).Round(10*time.Millisecond))
	for i := range 10 {
		publish(t, b.hub, "t", strconv.Itoa(i))
	}
	a.proxy.Thaw()
	waitUntil(t, "A to recover", func() bool { return a.states.delivering() })
	expectExactly(t, "A's client", r, env.history("t"))
}
