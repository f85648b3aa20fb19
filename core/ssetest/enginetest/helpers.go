package enginetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// proc is one simulated process: a node of the bus, a hub on its store
// and an HTTP server whose streams take their topics from the query.
type proc struct {
	name   string
	node   Node
	hub    *sse.Hub
	srv    *httptest.Server
	url    string
	states *stateLog
	once   sync.Once
}

func newProc(t *testing.T, bus Bus, name string, history int, opts sse.Options) *proc {
	t.Helper()
	p := &proc{name: name, node: bus.NewNode(t, history), states: &stateLog{}}
	opts.Store = p.node.Store()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Observer.BroadcastState = p.states.add
	hub, err := sse.NewHub(opts)
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	p.hub = hub
	p.srv = httptest.NewServer(hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}))
	p.url = p.srv.URL
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop shuts the process down; it is safe to call twice.
func (p *proc) stop(t *testing.T) {
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := p.hub.Shutdown(ctx); err != nil {
			t.Errorf("process %s: hub Shutdown: %v", p.name, err)
		}
		p.srv.Close()
	})
}

// crash ends the process as a crash would: its streams break mid-stream,
// with no retry hint.
func (p *proc) crash(t *testing.T) {
	p.srv.CloseClientConnections()
	p.stop(t)
}

// stream opens a stream of topics on p.
func (p *proc) stream(t *testing.T, lastID string, topics ...string) *ssetest.Stream {
	t.Helper()
	return ssetest.Open(t, p.url+"?topic="+strings.Join(topics, "&topic="), lastID, nil)
}

// stateLog records a hub's BroadcastState calls.
type stateLog struct {
	mu     sync.Mutex
	states []error
}

func (l *stateLog) add(err error) {
	l.mu.Lock()
	l.states = append(l.states, err)
	l.mu.Unlock()
}

// counts returns the outages reported and the recoveries.
func (l *stateLog) counts() (downs, ups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.states {
		if err != nil {
			downs++
		} else {
			ups++
		}
	}
	return downs, ups
}

// reader collects a stream's events in a goroutine.
type reader struct {
	st   *ssetest.Stream
	mu   sync.Mutex
	evs  []ssetest.Event
	err  error
	done chan struct{}
}

func read(st *ssetest.Stream) *reader {
	r := &reader{st: st, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			ev, err := st.Next()
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *reader) events() []ssetest.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// ended reports whether the stream ended, and how.
func (r *reader) ended() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}

// Event data: "<topic>|<publisher>|<n>|<random>", so that what a client
// receives tells which topic each event is of.

func eventData(topic, pub string, n int) string {
	return fmt.Sprintf("%s|%s|%d|%08x", topic, pub, n, rand.Uint32())
}

// isProbe reports whether data is of an event probe published.
func isProbe(data string) bool { return strings.Contains(data, "|probe|") }

func topicOf(data string) string {
	t, _, _ := strings.Cut(data, "|")
	return t
}

// byTopic splits the data of events by topic; resets are kept under "".
func byTopic(evs []ssetest.Event) map[string][]string {
	m := map[string][]string{}
	for _, ev := range evs {
		if isProbe(ev.Data) {
			continue
		}
		if ev.Type != "message" {
			m[""] = append(m[""], ev.Type+" "+ev.Data)
			continue
		}
		m[topicOf(ev.Data)] = append(m[topicOf(ev.Data)], ev.Data)
	}
	return m
}

// published is an event a publisher was told it published.
type published struct {
	topic, data, id string
}

// publisher publishes through a hub until stopped, recording what it
// published.
type publisher struct {
	name   string
	hub    *sse.Hub
	topics []string

	mu       sync.Mutex
	ok       []published
	errs     []error
	attempts map[string]bool // the data of every publish, failed ones too
	stop     chan struct{}
	done     chan struct{}
}

// startPublisher publishes on topics through hub, an event every pace or
// so, until stopped.
func startPublisher(name string, hub *sse.Hub, pace time.Duration, topics ...string) *publisher {
	p := &publisher{name: name, hub: hub, topics: topics, attempts: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for n := 0; ; n++ {
			select {
			case <-p.stop:
				return
			default:
			}
			topic := p.topics[rand.N(len(p.topics))]
			data := eventData(topic, p.name, n)
			p.mu.Lock()
			p.attempts[data] = true
			p.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			id, err := hub.Publish(ctx, topic, sse.Event{Data: []byte(data)})
			cancel()
			p.mu.Lock()
			if err != nil {
				p.errs = append(p.errs, err)
			} else {
				p.ok = append(p.ok, published{topic, data, id})
			}
			p.mu.Unlock()
			if pace > 0 {
				time.Sleep(rand.N(2 * pace))
			}
		}
	}()
	return p
}

func (p *publisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *publisher) results() ([]published, []error, map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ok), slices.Clone(p.errs), p.attempts
}

// okCount returns how many events pubs have published.
func okCount(pubs ...*publisher) int {
	n := 0
	for _, p := range pubs {
		p.mu.Lock()
		n += len(p.ok)
		p.mu.Unlock()
	}
	return n
}

// positions returns the newest Seq of each topic: where streams opened now
// start.
func positions(t *testing.T, s sse.Store, topics ...string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, topic := range topics {
		n, err := s.Newest(context.Background(), topic)
		if err != nil {
			t.Fatalf("Newest(%s): %v", topic, err)
		}
		m[topic] = n
	}
	return m
}

// history returns the data of what s holds of each topic after from.
func history(t *testing.T, s sse.Store, from map[string]uint64) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for topic, pos := range from {
		for {
			entries, err := s.After(context.Background(), []string{topic}, []uint64{pos}, 1000)
			if err != nil {
				t.Fatalf("reading the history of %s: %v", topic, err)
			}
			for _, e := range entries {
				if !isProbe(string(e.Event.Data)) {
					out[topic] = append(out[topic], string(e.Event.Data))
				}
				pos = e.Seq
			}
			if len(entries) < 1000 {
				break
			}
		}
	}
	return out
}

// checkPublished checks the history against what publishers were told:
// every event they published is in it, and nothing they did not try is.
func checkPublished(t *testing.T, hist map[string][]string, pubs ...*publisher) {
	t.Helper()
	in := map[string]bool{}
	for _, list := range hist {
		for _, d := range list {
			in[d] = true
		}
	}
	tried := map[string]bool{}
	for _, p := range pubs {
		ok, _, attempts := p.results()
		for _, e := range ok {
			if !in[e.data] {
				t.Errorf("publisher %s was told %q was published (id %s); the history does not hold it", p.name, e.data, e.id)
			}
		}
		for d := range attempts {
			tried[d] = true
		}
	}
	for d := range in {
		if !tried[d] && !isProbe(d) {
			t.Errorf("the history holds %q, which nobody published", d)
		}
	}
}

// waitFor waits until r has received the whole history of its topics, or
// fails the test after 30s.
func waitFor(t *testing.T, what string, got func() []ssetest.Event, hist map[string][]string, topics ...string) {
	t.Helper()
	want := 0
	for _, topic := range topics {
		want += len(hist[topic])
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		for _, ev := range got() {
			if ev.Type == "message" && !isProbe(ev.Data) {
				n++
			}
		}
		if n >= want {
			time.Sleep(50 * time.Millisecond) // anything more would be a duplicate
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d events after 30s", what, n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expectExactly checks that a client of topics received exactly the
// history of each, in order, and nothing else.
func expectExactly(t *testing.T, what string, evs []ssetest.Event, hist map[string][]string, topics ...string) {
	t.Helper()
	got := byTopic(evs)
	if resets := got[""]; len(resets) > 0 {
		t.Errorf("%s: unexpected %v", what, resets)
	}
	for _, topic := range topics {
		if !slices.Equal(got[topic], hist[topic]) {
			t.Errorf("%s, topic %s: %s", what, topic, diff(got[topic], hist[topic]))
		}
		delete(got, topic)
	}
	delete(got, "")
	for topic, list := range got {
		t.Errorf("%s: %d events of topic %s, which it does not follow", what, len(list), topic)
	}
}

// diff describes how got differs from want.
func diff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return fmt.Sprintf("got %d events, want %d: the first missing is %q", len(got), len(want), want[i])
		case i >= len(want):
			return fmt.Sprintf("got %d events, want %d: the first extra is %q", len(got), len(want), got[i])
		case got[i] != want[i]:
			return fmt.Sprintf("event %d is %q, want %q (got %d events, want %d)", i, got[i], want[i], len(got), len(want))
		}
	}
	return "equal"
}

// probe publishes on topic through hub until st receives one of them, so
// that the process serving st is known to deliver topic live; it returns
// what st received.
func probe(t *testing.T, hub *sse.Hub, st *ssetest.Stream, topic string) []ssetest.Event {
	t.Helper()
	got := make(chan ssetest.Event, 1024)
	errc := make(chan error, 1)
	go func() {
		for {
			ev, err := st.Next()
			if err != nil {
				errc <- err
				return
			}
			got <- ev
			if ev.Type == "message" && isProbe(ev.Data) {
				errc <- nil
				return
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		if _, err := hub.Publish(context.Background(), topic, sse.Event{Data: []byte(eventData(topic, "probe", n))}); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("probe: %v", err)
		}
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("probe: the stream ended: %v", err)
			}
			close(got)
			var evs []ssetest.Event
			for ev := range got {
				evs = append(evs, ev)
			}
			return evs
		case <-deadline:
			t.Fatalf("probe: nothing published on %s reached the stream in 30s", topic)
		case <-tick.C:
		}
	}
}

// recorder is an sse.Listener that records what a store hands over.
type recorder struct {
	mu      sync.Mutex
	entries []sse.Entry
	lost    []string
	epochs  int           // NewEpoch calls
	block   chan struct{} // Deliver waits on it while it is set
}

func (r *recorder) Deliver(e sse.Entry) {
	r.mu.Lock()
	b := r.block
	r.mu.Unlock()
	if b != nil {
		<-b
	}
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
}

func (r *recorder) State(error) {}

func (r *recorder) Lost(topic string) {
	r.mu.Lock()
	r.lost = append(r.lost, topic)
	r.mu.Unlock()
}

func (r *recorder) NewEpoch() {
	r.mu.Lock()
	r.epochs++
	r.mu.Unlock()
}

func (r *recorder) Signal([]byte) {}

func (r *recorder) list() []sse.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.entries)
}

// listen runs s.Listen with r until the end of t.
func listen(t *testing.T, s sse.Broadcaster, r *recorder) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, r) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Listen returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Listen did not return within 10s of its context's end")
		}
	})
}

// eventually waits up to 30s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
