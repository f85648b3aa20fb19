package micro

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseadapter"
)

// publishSubs are the subscriber counts of BenchmarkPublish.
var publishSubs = []int{1, 100, 1000, 10000}

// BenchmarkPublish publishes one event (the ~90-byte benchData, type
// "update") to N subscribers of one topic, and each op waits until every
// subscriber has received it, so that nothing queues up between ops and
// both libraries are timed to the last delivery. Nothing goes over a
// network: each subscriber's writes are discarded. The event value is
// built once and published again each op, by both.
//
//   - ssekit: Hub.Publish with N open streams (Hub.Accept + Session.Serve,
//     the public API the Fiber adapter uses, with a StreamWriter that
//     discards). Per publish: validate, append to the memory store (IDs,
//     replay), encode the frame once, and append it to N queues under the
//     hub lock, waking each stream; Publish returns then. Each stream's
//     own goroutine takes its queue and calls StreamWriter.Write with the
//     frame (no copy for a lone frame). The N writes run in N goroutines,
//     on every core the process has.
//   - gosse: go-sse v0.12.0's Joe provider with FiniteReplayer(4096, auto
//     IDs), the bench server's setup; N goroutines blocked in
//     Joe.Subscribe, as go-sse's ServeHTTP leaves them. Per publish: hand
//     the message over a channel to Joe's single goroutine; it clones it to
//     set the ID and stores it (Replayer.Put), lets Publish return, then
//     walks its map of subscribers and, for each, checks the topics and
//     calls Client.Send and Client.Flush, one subscriber after the other,
//     in that one goroutine. The client here is go-sse's own work minus
//     the socket: Send encodes the message with Message.WriteTo (what
//     go-sse's Session.Send does, into the response) to io.Discard, so
//     go-sse encodes N times where ssekit encodes once.
//   - gosse-noencode: the same, but Send only counts: Joe's dispatch alone,
//     a lower bound for any go-sse client.
//
// Both count a delivery in the subscriber's write (ssekit) or Send (go-sse),
// with the same atomic counter. Run it with -cpu 1,2: with one core,
// ssekit's N stream goroutines cannot run beside the publisher.
func BenchmarkPublish(b *testing.B) {
	for _, n := range publishSubs {
		for _, lib := range publishLibs {
			b.Run(fmt.Sprintf("%s/N=%d", lib.name, n), func(b *testing.B) { runFanOut(b, n, lib.setup) })
		}
	}
}

var publishLibs = []struct {
	name  string
	setup func(testing.TB, int) fanOut
}{
	{"ssekit", ssekitFanOut},
	{"gosse", func(tb testing.TB, n int) fanOut { return goSSEFanOut(tb, n, true) }},
	{"gosse-noencode", func(tb testing.TB, n int) fanOut { return goSSEFanOut(tb, n, false) }},
}

// deliveries counts down the deliveries an op waits for.
type deliveries struct {
	left atomic.Int64
	done chan struct{}
}

func newDeliveries() *deliveries { return &deliveries{done: make(chan struct{}, 1)} }

// expect arms the counter for n deliveries; call it before publishing.
func (d *deliveries) expect(n int) { d.left.Store(int64(n)) }

// got counts k deliveries, and signals the op when they were the last.
func (d *deliveries) got(k int64) {
	if k > 0 && d.left.Add(-k) == 0 {
		d.done <- struct{}{}
	}
}

// wait waits for the deliveries of the op, or fails after a while.
func (d *deliveries) wait() error {
	select {
	case <-d.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%d deliveries missing after 30s", d.left.Load())
	}
}

// fanOut is a library set up with n subscribers: publish publishes one
// event and returns when every subscriber has received it.
type fanOut struct {
	publish func() error
	close   func()
	left    func() int64 // deliveries still expected: 0 between ops
}

// runFanOut times publishes of one event to n subscribers.
func runFanOut(b *testing.B, n int, setup func(testing.TB, int) fanOut) {
	f := setup(b, n)
	defer f.close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := f.publish(); err != nil {
			b.Fatal(err)
		}
	}
	reportDeliveries(b, n)
}

// reportDeliveries adds ns per delivery to an op of n deliveries.
func reportDeliveries(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
}

var dataField = []byte("\ndata:")

// discardStream is an sseadapter.StreamWriter that discards what it is given and
// counts the events in it. Its first write is the stream's opening frame,
// written once the stream has subscribed.
type discardStream struct {
	d       *deliveries
	opened  *sync.WaitGroup
	started bool
}

func (s *discardStream) Start() error { return nil }

func (s *discardStream) Write(p []byte, _ time.Duration) error {
	if !s.started {
		s.started = true
		s.opened.Done()
		return nil
	}
	s.d.got(int64(bytes.Count(p, dataField)))
	return nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ssekitFanOut(b testing.TB, n int) fanOut {
	hub, err := sse.NewHub(sse.Options{HeartbeatInterval: time.Hour, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	d := newDeliveries()
	ctx, cancel := context.WithCancel(context.Background())
	var opened, ended sync.WaitGroup
	opts := sse.HandlerOptions{Topics: sse.Topics("bench")}
	for range n {
		sess := sseadapter.Accept(hub, httptest.NewRecorder(), httptest.NewRequest("GET", "/events", nil), opts)
		if sess == nil {
			b.Fatal("stream refused")
		}
		opened.Add(1)
		ended.Add(1)
		sw := &discardStream{d: d, opened: &opened}
		go func() {
			defer ended.Done()
			sess.Serve(ctx, sw)
		}()
	}
	opened.Wait()
	ev := sse.Event{Type: benchType, Data: []byte(benchData)}
	return fanOut{
		publish: func() error {
			d.expect(n)
			if _, err := hub.Publish(ctx, "bench", ev); err != nil {
				return err
			}
			return d.wait()
		},
		close: func() {
			cancel()
			ended.Wait()
			_ = hub.Shutdown(context.Background())
		},
		left: d.left.Load,
	}
}

// discardClient is a go-sse MessageWriter. Messages of type "sync" are the
// barrier's; the others are counted. With encode, Send encodes the message
// as go-sse's Session.Send does, into io.Discard.
type discardClient struct {
	d      *deliveries
	encode bool
	seen   bool
	synced *atomic.Int64
}

var syncType = gosse.Type("sync")

func (c *discardClient) Send(m *gosse.Message) error {
	if m.Type == syncType {
		if !c.seen {
			c.seen = true
			c.synced.Add(1)
		}
		return nil
	}
	if c.encode {
		if _, err := m.WriteTo(io.Discard); err != nil {
			return err
		}
	}
	c.d.got(1)
	return nil
}

func (c *discardClient) Flush() error { return nil }

func goSSEFanOut(b testing.TB, n int, encode bool) fanOut {
	replayer, err := gosse.NewFiniteReplayer(4096, true)
	if err != nil {
		b.Fatal(err)
	}
	joe := &gosse.Joe{Replayer: replayer}
	d := newDeliveries()
	var synced atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var ended sync.WaitGroup
	topics := []string{"bench"}
	for range n {
		ended.Add(1)
		c := &discardClient{d: d, encode: encode, synced: &synced}
		go func() {
			defer ended.Done()
			_ = joe.Subscribe(ctx, gosse.Subscription{Client: c, Topics: topics})
		}()
	}
	stop := func() {
		cancel()
		ended.Wait()
		_ = joe.Shutdown(context.Background())
	}
	// Barrier: Joe subscribes asynchronously, so publish "sync" messages
	// until every subscriber has had one. Joe delivers in order, so the
	// measured messages reach every subscriber after them.
	syncMsg := &gosse.Message{Type: syncType}
	syncMsg.AppendData("sync")
	deadline := time.Now().Add(30 * time.Second)
	for synced.Load() < int64(n) {
		if time.Now().After(deadline) {
			stop()
			b.Fatalf("barrier: %d of %d subscribed", synced.Load(), n)
		}
		if err := joe.Publish(syncMsg, topics); err != nil {
			stop()
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	msg := &gosse.Message{Type: gosse.Type(benchType)}
	msg.AppendData(benchData)
	return fanOut{
		publish: func() error {
			d.expect(n)
			if err := joe.Publish(msg, topics); err != nil {
				return err
			}
			return d.wait()
		},
		close: stop,
		left:  d.left.Load,
	}
}

// TestPublishDelivers checks the harness of BenchmarkPublish: with each
// library, 50 subscribers receive each of 20 events, and no delivery is
// left over or missing (a missing one times out; one too many would
// end the next publish early, and shows at the end as a negative count).
func TestPublishDelivers(t *testing.T) {
	for _, lib := range publishLibs {
		t.Run(lib.name, func(t *testing.T) {
			f := lib.setup(t, 50)
			defer f.close()
			for i := range 20 {
				if err := f.publish(); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
			}
			time.Sleep(50 * time.Millisecond)
			if left := f.left(); left != 0 {
				t.Errorf("%d deliveries after the last event's (want 0)", -left)
			}
		})
	}
}
