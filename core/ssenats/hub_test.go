package ssenats_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
	"github.com/ssekit/ssekit/core/ssetest"
)

// position parses the per-topic positions of an ID the hub gave a stream
// of n topics (one Seq stands for all, as the hub writes it).
func position(t testing.TB, id string, n int) []uint64 {
	t.Helper()
	_, rest, ok := strings.Cut(id, "-")
	if !ok {
		t.Fatalf("ID %q has no Seq", id)
	}
	var pos []uint64
	for p := range strings.SplitSeq(rest, ".") {
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			t.Fatalf("ID %q: %v", id, err)
		}
		pos = append(pos, v)
	}
	for len(pos) < n {
		pos = append(pos, pos[0])
	}
	return pos
}

// since returns the data of topic's events after pos, as the store holds
// them.
func since(t testing.TB, s *ssenats.Store, topic string, pos uint64) []string {
	t.Helper()
	var out []string
	for _, e := range history(t, s, topic) {
		if e.Seq > pos {
			out = append(out, string(e.Event.Data))
		}
	}
	return out
}

// byTopic splits what a client received by topic: data is "topic/...".
func byTopic(events []ssetest.Event) map[string][]string {
	m := map[string][]string{}
	for _, ev := range events {
		topic, _, _ := strings.Cut(ev.Data, "/")
		m[topic] = append(m[topic], ev.Data)
	}
	return m
}

func sameList(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// firstDiff describes where got departs from want.
func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d got %q, want %q (got %d, want %d)", i, got[i], want[i], len(got), len(want))
		}
	}
	return fmt.Sprintf("got %d events, want %d", len(got), len(want))
}

// collect reads events from st until it has n or the stream fails.
func collect(st interface{ Next() (ssetest.Event, error) }, n int) ([]ssetest.Event, error) {
	var out []ssetest.Event
	for len(out) < n {
		ev, err := st.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// TestOrderAcrossHubs: three hubs share the stream, each with clients of
// two topics; publishers on all three publish at once. Every client gets
// each topic's events exactly in the stream's order, none missing, none
// twice.
func TestOrderAcrossHubs(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	nodes := []*node{env.node("A", nodeConfig{direct: true}), env.node("B", nodeConfig{direct: true}), env.node("C", nodeConfig{direct: true})}
	type reader struct {
		st     *client
		topics []string
		pos    []uint64
	}
	var clients []reader
	for _, n := range nodes {
		for _, topics := range [][]string{{"x", "y"}, {"x"}, {"y"}} {
			st := open(t, n.url+"?topic="+strings.Join(topics, "&topic="), "")
			clients = append(clients, reader{st, topics, position(t, st.last, len(topics))})
		}
	}
	const per = 100
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			for j := range per {
				topic := []string{"x", "y"}[(i+j)%2]
				if _, err := n.hub.Publish(context.Background(), topic, sse.Event{Data: fmt.Appendf(nil, "%s/%d/%d", topic, i, j)}); err != nil {
					t.Errorf("node %d: Publish: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := map[string][]string{}
	for _, topic := range []string{"x", "y"} {
		want[topic] = since(t, nodes[0].store, topic, 0)
	}
	for ci, c := range clients {
		total := 0
		for i, topic := range c.topics {
			total += len(since(t, nodes[0].store, topic, c.pos[i]))
		}
		got, err := collect(c.st, total)
		if err != nil {
			t.Fatalf("client %d: after %d of %d events: %v", ci, len(got), total, err)
		}
		gotBy := byTopic(got)
		for i, topic := range c.topics {
			w := since(t, nodes[0].store, topic, c.pos[i])
			if !sameList(gotBy[topic], w) {
				t.Errorf("client %d (%v), topic %s: %s", ci, c.topics, topic, firstDiff(gotBy[topic], w))
			}
		}
	}
	if len(want["x"])+len(want["y"]) != 3*per {
		t.Errorf("the stream holds %d events, %d were published", len(want["x"])+len(want["y"]), 3*per)
	}
}

// TestResumeOnAnotherNode: a client resumes on another node from an ID of
// the first, and gets exactly what it missed, then live events.
func TestResumeOnAnotherNode(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	a, b := env.node("A", nodeConfig{direct: true}), env.node("B", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t&topic=u", "")
	publish(t, a.hub, "t", "t/1")
	publish(t, b.hub, "u", "u/1")
	got, err := collect(st, 2)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	last := got[1].LastEventID
	for i := 2; i <= 6; i++ {
		publish(t, b.hub, []string{"t", "u"}[i%2], fmt.Sprintf("%s/%d", []string{"t", "u"}[i%2], i))
	}
	st2 := connect(t, b.url+"?topic=t&topic=u", last)
	missed, err := collect(st2, 5)
	if err != nil {
		t.Fatal(err)
	}
	var data []string
	for _, ev := range missed {
		data = append(data, ev.Data)
	}
	if w := []string{"t/2", "u/3", "t/4", "u/5", "t/6"}; !sameList(data, w) {
		t.Errorf("resumed with %v, want %v", data, w)
	}
	id := publish(t, a.hub, "t", "t/live")
	if ev := next(t, st2); ev.Data != "t/live" || !strings.HasPrefix(id, strings.SplitN(ev.LastEventID, ".", 2)[0][:len(b.store.Epoch())]) {
		t.Errorf("live after resume: %+v", ev)
	}
}

// TestNodeKill is the flagship: publishers on three nodes keep publishing
// while a client of two topics reads from node A; node A is killed at a
// random point; the client resumes on node B with its last ID and, by the
// end, has exactly the stream's events of its topics after its first
// position: none lost, none twice, each topic in order.
func TestNodeKill(t *testing.T) {
	testkit.CheckGoroutines(t)
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			env := newEnv(t)
			nodes := []*node{env.node("A", nodeConfig{direct: true}), env.node("B", nodeConfig{direct: true}), env.node("C", nodeConfig{direct: true})}
			topics := []string{"p", "q"}
			st := open(t, nodes[0].url+"?topic=p&topic=q", "")
			start := position(t, st.last, 2)
			const per = 150
			var wg sync.WaitGroup
			for i, n := range nodes {
				wg.Go(func() {
					for j := range per {
						topic := topics[rand.N(2)]
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						_, err := n.hub.Publish(ctx, topic, sse.Event{Data: fmt.Appendf(nil, "%s/%d/%d", topic, i, j)})
						cancel()
						if err != nil && i != 0 { // node A's fail once it is killed
							t.Errorf("node %d: Publish: %v", i, err)
							return
						}
						time.Sleep(time.Duration(rand.N(500)) * time.Microsecond)
					}
				})
			}
			killAt := 20 + rand.N(200)
			got, err := collect(st, killAt)
			if err != nil {
				t.Fatalf("before the kill, after %d events: %v", len(got), err)
			}
			nodes[0].kill(t)
			for { // what was on its way when the node died
				ev, err := st.Next()
				if err != nil {
					break
				}
				got = append(got, ev)
			}
			last := st.last
			wg.Wait()
			st2 := connect(t, nodes[1].url+"?topic=p&topic=q", last)
			resumeAt := position(t, last, 2)
			n := 0
			for i, topic := range topics {
				n += len(since(t, nodes[1].store, topic, resumeAt[i]))
			}
			rest, err := collect(st2, n)
			if err != nil {
				t.Fatalf("after the resume, %d of %d events: %v", len(rest), n, err)
			}
			// What the client got before the kill and after the resume is,
			// topic by topic, the stream's history after its first
			// position.
			before, after := byTopic(got), byTopic(rest)
			for i, topic := range topics {
				all := since(t, nodes[1].store, topic, start[i])
				seen := append(before[topic], after[topic]...)
				if !sameList(seen, all) {
					t.Errorf("topic %s, killed after %d events: %s", topic, len(got), firstDiff(seen, all))
				}
			}
			if len(rest) != n {
				t.Errorf("resumed with %d events, want %d", len(rest), n)
			}
		})
	}
}

// TestServerRestart: the NATS server (one of the test's own, keeping the
// stream on disk) is killed and started again. Hubs report the outage,
// publishing fails while it lasts, and a client gets every event
// published before and after, in order, without a reset.
func TestServerRestart(t *testing.T) {
	testkit.CheckGoroutines(t)
	srv := startServer(t)
	env := newEnv(t, srv.url())
	a := env.node("A", nodeConfig{direct: true})
	b := env.node("B", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	var want []string
	for i := range 5 {
		want = append(want, "t/"+strconv.Itoa(i))
		publish(t, b.hub, "t", want[i])
	}
	got, err := collect(st, 5)
	if err != nil {
		t.Fatal(err)
	}
	srv.stop()
	waitUntil(t, "both hubs to report the outage", func() bool { return !a.states.delivering() && !b.states.delivering() })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = b.hub.Publish(ctx, "t", sse.Event{Data: []byte("lost")})
	cancel()
	if err == nil {
		t.Error("Publish during the outage: no error")
	}
	srv.start()
	// Published as soon as the server is back, perhaps before A's
	// connection is: A reads them from the stream.
	for i := 5; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for {
			_, err := b.hub.Publish(ctx, "t", sse.Event{Data: []byte("t/" + strconv.Itoa(i))})
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		want = append(want, "t/"+strconv.Itoa(i))
	}
	rest, err := collect(st, 5)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rest...)
	var data []string
	for _, ev := range got {
		data = append(data, ev.Data)
	}
	if !sameList(data, want) {
		t.Errorf("%s", firstDiff(data, want))
	}
	waitUntil(t, "both hubs to deliver again", func() bool { return a.states.delivering() && b.states.delivering() })
	if downs, ups := a.states.counts(); downs == 0 || ups == 0 {
		t.Errorf("node A reported %d outages and %d recoveries", downs, ups)
	}
}

// TestConnectionLoss: node A's connection is cut (a proxy closes it and
// refuses new ones) while node B publishes. When it is back, A reads what
// it missed from the stream: its client gets every event, in order.
func TestConnectionLoss(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	a := env.node("A", nodeConfig{})
	b := env.node("B", nodeConfig{direct: true})
	st := connect(t, a.url+"?topic=t", "")
	publish(t, b.hub, "t", "t/0")
	want := []string{"t/0"}
	if ev := next(t, st); ev.Data != "t/0" {
		t.Fatalf("got %+v", ev)
	}
	for round := range 3 {
		a.proxy.Down()
		waitUntil(t, "node A to report the outage", func() bool { return !a.states.delivering() })
		for i := range 20 {
			d := fmt.Sprintf("t/%d/%d", round, i)
			publish(t, b.hub, "t", d)
			want = append(want, d)
		}
		a.proxy.Up()
		waitUntil(t, "node A to deliver again", a.states.delivering)
	}
	got, err := collect(st, len(want)-1)
	if err != nil {
		t.Fatal(err)
	}
	data := []string{"t/0"}
	for _, ev := range got {
		data = append(data, ev.Data)
	}
	if !sameList(data, want) {
		t.Errorf("%s", firstDiff(data, want))
	}
}

// TestOutageLongerThanHistory: events the stream dropped during node A's
// outage cannot be delivered: A's client gets the reset event, then the
// events the stream still holds; never a silent gap.
func TestOutageLongerThanHistory(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	opts := ssenats.Options{MaxEventsPerTopic: 3}
	a := env.node("A", nodeConfig{store: opts})
	b := env.node("B", nodeConfig{store: opts, direct: true})
	st := connect(t, a.url+"?topic=t", "")
	publish(t, b.hub, "t", "before")
	if ev := next(t, st); ev.Data != "before" {
		t.Fatalf("got %+v", ev)
	}
	a.proxy.Down()
	waitUntil(t, "node A to report the outage", func() bool { return !a.states.delivering() })
	for i := range 10 {
		publish(t, b.hub, "t", strconv.Itoa(i))
	}
	a.proxy.Up()
	ev := next(t, st)
	if ev.Type != "sse-reset" || ev.Data != `{"reason":"evicted"}` {
		t.Fatalf("after the outage, first event %+v; want the reset", ev)
	}
	var data []string
	for len(data) == 0 || data[len(data)-1] != "9" {
		ev := next(t, st)
		if ev.Type == "sse-reset" {
			continue
		}
		data = append(data, ev.Data)
	}
	if w := []string{"7", "8", "9"}; !sameList(data, w) {
		t.Errorf("after the reset got %v, want the events the stream holds, %v", data, w)
	}
	// A client resuming from before the outage is reset too.
	st2 := connect(t, a.url+"?topic=t", st.LastEventID())
	id := publish(t, b.hub, "t", "live")
	if ev := next(t, st2); ev.Data != "live" || ev.LastEventID != id {
		t.Errorf("resume from the newest: %+v", ev)
	}
}

// TestEndStreamsAcrossNodes: ending alice's streams on one node ends them
// on every node that shares the stream (signals); bob's stay.
func TestEndStreamsAcrossNodes(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	auth := &sse.Auth{Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
		user, ok := strings.CutPrefix(token, "tok-")
		if !ok {
			return sse.Principal{}, errors.New("bad token")
		}
		return sse.Principal{ID: user}, nil
	}}
	cfg := nodeConfig{direct: true, http: sse.HandlerOptions{Auth: auth}}
	nodes := []*node{env.node("A", cfg), env.node("B", cfg), env.node("C", cfg)}
	open := func(n *node, user string) *ssetest.Stream {
		t.Helper()
		return ssetest.Open(t, n.url+"?topic=t", "", http.Header{"Authorization": {"Bearer tok-" + user}})
	}
	var alice, bob []*ssetest.Stream
	for _, n := range nodes {
		alice = append(alice, open(n, "alice"))
		bob = append(bob, open(n, "bob"))
	}
	if err := nodes[1].hub.EndStreams(context.Background(), sse.StreamMatch{Principal: "alice"}, &sse.Event{Type: "logout"}); err != nil {
		t.Fatal(err)
	}
	for i, st := range alice {
		ev, err := st.Next()
		if err != nil || ev.Type != "logout" {
			t.Fatalf("node %d: alice got %+v, %v; want the logout event", i, ev, err)
		}
		if _, err := st.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("node %d: alice's stream did not end: %v", i, err)
		}
	}
	id := publish(t, nodes[2].hub, "t", "for bob")
	for i, st := range bob {
		if ev := next(t, st); ev.LastEventID != id {
			t.Errorf("node %d: bob got %+v", i, ev)
		}
	}
}

// TestResume: a stream of two topics resumes from any ID it was sent with
// exactly the events after it, in the stream's order. An ID of one Seq
// (a single topic's) is no place in a stream of two: it is reset.
func TestResume(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	a := env.node("A", nodeConfig{direct: true})
	st := open(t, a.url+"?topic=a&topic=b", "")
	type pub struct {
		ti   int
		seq  uint64
		data string
	}
	var pubs []pub
	for i := range 12 {
		ti := i % 3 % 2
		topic := []string{"a", "b"}[ti]
		id := publish(t, a.hub, topic, topic+"/"+strconv.Itoa(i))
		pubs = append(pubs, pub{ti, position(t, id, 1)[0], topic + "/" + strconv.Itoa(i)})
	}
	got, err := collect(st, 12)
	if err != nil {
		t.Fatal(err)
	}
	single := open(t, a.url+"?topic=a&topic=b", a.store.Epoch()+"-"+strconv.FormatUint(pubs[3].seq, 10))
	if ev, err := single.Next(); err != nil || ev.Type != "sse-reset" || ev.Data != `{"reason":"unknown-id"}` {
		t.Errorf("resuming two topics from one Seq gave %+v, %v; want the reset", ev, err)
	}
	single.Close()
	var lasts []string
	for i := range 12 {
		lasts = append(lasts, got[i].LastEventID)
	}
	for _, last := range lasts {
		pos := position(t, last, 2)
		var want []string
		for _, p := range pubs {
			if p.seq > pos[p.ti] {
				want = append(want, p.data)
			}
		}
		st := open(t, a.url+"?topic=a&topic=b", last)
		rest, err := collect(st, len(want))
		if err != nil {
			t.Fatal(err)
		}
		var d []string
		for _, ev := range rest {
			d = append(d, ev.Data)
		}
		if !sameList(d, want) {
			t.Errorf("from %s: %s", last, firstDiff(d, want))
		}
		st.Close()
	}
}

// TestInterestBased: three processes each serve a third of the topics;
// events are published evenly on all. Each process receives about a third
// of the bytes that NATS carries to them together: only the topics its
// clients follow.
func TestInterestBased(t *testing.T) {
	testkit.CheckGoroutines(t)
	env := newEnv(t)
	nodes := []*node{env.node("A", nodeConfig{direct: true}), env.node("B", nodeConfig{direct: true}), env.node("C", nodeConfig{direct: true})}
	const topics = 30
	var streams []*ssetest.Stream
	for i := range topics {
		streams = append(streams, connect(t, nodes[i%3].url+"?topic=topic-"+strconv.Itoa(i), ""))
	}
	pub := env.store(env.conn(""), ssenats.Options{}) // a publisher of its own, so that acks do not count
	before := make([]uint64, 3)
	for i, n := range nodes {
		before[i] = n.conn.Stats().InBytes
	}
	payload := strings.Repeat("x", 512)
	const rounds = 20
	for range rounds {
		for i := range topics {
			if _, err := pub.Append(context.Background(), "topic-"+strconv.Itoa(i), sse.Event{Data: []byte(payload)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, st := range streams {
		if _, err := collect(st, rounds); err != nil {
			t.Fatal(err)
		}
	}
	var got [3]uint64
	var total uint64
	for i, n := range nodes {
		got[i] = n.conn.Stats().InBytes - before[i]
		total += got[i]
	}
	for i := range nodes {
		share := float64(got[i]) / float64(total)
		t.Logf("node %s received %d bytes, %.1f%% of %d", nodes[i].name, got[i], 100*share, total)
		if share < 0.28 || share > 0.39 {
			t.Errorf("node %s received %.1f%% of the traffic, want about a third", nodes[i].name, 100*share)
		}
	}
	if min := uint64(rounds * topics / 3 * len(payload)); got[0] < min {
		t.Errorf("node A received %d bytes, less than its events' payloads (%d)", got[0], min)
	}
}
