package sseredis_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestReset: a client whose missed events are no longer in Redis, or whose
// ID Redis never issued, gets the reset event and then live events.
func TestReset(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{store: sseredis.Options{MaxEventsPerTopic: 3}, direct: true})
	// The watcher makes sure the hub has delivered all six before the
	// resets: a reset is followed by what the hub delivers after it.
	watcher := connect(t, a.url+"?topic=t", "")
	// A's listener subscribes to the topic when its first stream opens;
	// until then, what is published reaches A from the history, which
	// holds 3 events only.
	waitUntil(t, "the subscription", func() bool { return env.subscribers("t") == 1 })
	first := publish(t, a.hub, "t", "0")
	for i := 1; i < 6; i++ {
		publish(t, a.hub, "t", strconv.Itoa(i))
	}
	for range 6 {
		next(t, watcher)
	}
	other := newEnv(t).store(env.client(""), sseredis.Options{}) // another namespace
	foreign, err := other.Append(context.Background(), "t", sse.Event{Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ lastID, reason string }{
		{first, "evicted"},
		{foreign.Event.ID, "unknown-id"},
		{a.store.Epoch() + "-99999999999999999", "unknown-id"}, // beyond the newest
		{"elsewhere-1", "unknown-id"},
		{strings.Repeat("7", 1000), "unknown-id"},
	} {
		st := connect(t, a.url+"?topic=t", c.lastID)
		ev := next(t, st)
		if ev.Type != "sse-reset" || ev.Data != `{"reason":"`+c.reason+`"}` || ev.LastEventID == "" {
			t.Errorf("Last-Event-ID %.40q: first event %+v, want an sse-reset with reason %s", c.lastID, ev, c.reason)
		}
		id := publish(t, a.hub, "t", "live")
		if ev := next(t, st); ev.Data != "live" || ev.LastEventID != id {
			t.Errorf("after the reset got %+v, want the live event", ev)
		}
	}
}

// TestResumeOnAnotherNode: a client resumes on another node from an ID of
// the first, with the Last-Event-ID header or the lastEventId query, and
// from the opening position of a stream that broke before its first event.
func TestResumeOnAnotherNode(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{direct: true})
	b := env.node("B", nodeConfig{direct: true})
	// The IDs of a stream of two topics name a place in each.
	watcher := connect(t, a.url+"?topic=x&topic=y", "")
	var ids []string
	for i := range 20 {
		publish(t, a.hub, []string{"x", "y"}[i%2], strconv.Itoa(i))
		ids = append(ids, next(t, watcher).LastEventID)
	}
	viaHeader := connect(t, b.url+"?topic=x&topic=y", ids[4])
	viaQuery := connect(t, b.url+"?topic=x&topic=y&lastEventId="+url.QueryEscape(ids[9]), "")
	for _, c := range []struct {
		st   *ssetest.Stream
		from int
	}{{viaHeader, 5}, {viaQuery, 10}} {
		for i := c.from; i < 20; i++ {
			if ev := next(t, c.st); ev.Data != strconv.Itoa(i) || ev.LastEventID != ids[i] {
				t.Fatalf("got %+v, want %d with id %s", ev, i, ids[i])
			}
		}
	}
	// The opening position that A gives a new client is valid on B.
	pos := openingPosition(t, a.url+"?topic=x")
	missed := publish(t, b.hub, "x", "missed")
	resumed := connect(t, b.url+"?topic=x", pos)
	if ev := next(t, resumed); ev.Data != "missed" || ev.LastEventID != missed {
		t.Fatalf("resuming on B from A's opening position %q gave %+v", pos, ev)
	}
}

// openingPosition opens a stream, reads its opening frame only, closes it
// and returns the Last-Event-ID a browser would then hold.
func openingPosition(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var frame []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading the opening frame: %v", err)
		}
		frame = append(frame, line...)
		if len(line) == 1 {
			break
		}
	}
	p := ssetest.NewParser(bytes.NewReader(frame))
	if _, err := p.Next(); err != io.EOF || p.LastEventID() == "" {
		t.Fatalf("the opening frame %q gives no position", frame)
	}
	return p.LastEventID()
}

// TestShutdownHandsOver is a rolling deploy: node A shuts down while events
// are published on B; A's clients are told to come back, reconnect to B,
// and get every event of their topics exactly once, in order.
func TestShutdownHandsOver(t *testing.T) {
	env := newEnv(t)
	a := env.node("A", nodeConfig{direct: true, hub: sse.Options{CloseRetry: 20 * time.Millisecond}})
	b := env.node("B", nodeConfig{direct: true})
	topics := []string{"a", "b"}
	from := map[string]uint64{}
	for _, topic := range topics {
		from[topic], _ = b.store.Newest(context.Background(), topic)
	}
	const clients = 10
	streams := make([]*ssetest.Stream, clients)
	for i := range streams {
		streams[i] = connect(t, a.url+"?topic=a&topic=b", "")
	}
	waitUntil(t, "A's subscriptions", func() bool { return env.subscribers("a") == 1 && env.subscribers("b") == 1 })
	stop := make(chan struct{})
	published := make(chan int)
	go func() {
		n := 0
		for ; ; n++ {
			select {
			case <-stop:
				published <- n
				return
			default:
			}
			topic := topics[n%2]
			if _, err := b.hub.Publish(context.Background(), topic, sse.Event{Data: []byte(topic + "|" + strconv.Itoa(n))}); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	results := make(chan []ssetest.Event, clients)
	for _, st := range streams {
		go func() {
			var got []ssetest.Event
			for {
				ev, err := st.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Errorf("the stream on A did not end cleanly: %v", err)
					}
					break
				}
				got = append(got, ev)
			}
			if _, ok := st.Parser().Retry(); !ok {
				t.Error("the stream on A ended without a retry hint")
			}
			onB := connect(t, b.url+"?topic=a&topic=b", st.Parser().LastEventID())
			for {
				ev, err := onB.Next()
				if err != nil {
					break // closed at the end
				}
				got = append(got, ev)
				if ev.Data == "end" {
					break
				}
			}
			results <- got
		}()
	}
	time.Sleep(150 * time.Millisecond)
	a.stop(t)
	time.Sleep(150 * time.Millisecond)
	close(stop)
	n := <-published
	// The last event, on both topics' streams: "end" on topic b.
	publish(t, b.hub, "b", "end")
	var want []string
	for _, topic := range topics {
		for pos := from[topic]; ; {
			entries, err := b.store.After(context.Background(), []string{topic}, []uint64{pos}, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				want = append(want, string(e.Event.Data))
				pos = e.Seq
			}
			if len(entries) < 1000 {
				break
			}
		}
	}
	if len(want) < n {
		t.Fatalf("the histories hold %d events; %d were published", len(want), n+1)
	}
	for range clients {
		got := <-results
		per := map[string][]string{}
		for _, ev := range got {
			topic, _, _ := strings.Cut(ev.Data, "|")
			if ev.Data == "end" {
				topic = "b"
			}
			per[topic] = append(per[topic], ev.Data)
		}
		i := 0
		for _, topic := range topics {
			for _, d := range per[topic] {
				if i >= len(want) || d != want[i] {
					t.Fatalf("a client of A, then of B, got %q where the history holds %q", d, want[min(i, len(want)-1)])
				}
				i++
			}
		}
		if i != len(want) {
			t.Fatalf("a client of A, then of B, got %d events of %d", i, len(want))
		}
	}
}
