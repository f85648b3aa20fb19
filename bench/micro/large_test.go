package micro

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// Large events over loopback: the benchmark behind the "batch copy" fix
// (docs/benchmarks.md, "Before and after").
const (
	largeSize  = 64 << 10 // data bytes per event
	largeSubs  = 4        // subscribers
	largeBurst = 32       // events published back to back before waiting: 2 MiB, half of ssekit's queue bound
)

// BenchmarkLargeEvents streams 64 KiB events over loopback TCP (an
// httptest server on 127.0.0.1) to 4 subscribers that read and discard
// them. Events are published back to back in bursts of 32, and each burst
// waits until every subscriber has read all of it: streams fall behind
// within a burst, so ssekit writes batches of several events, which is
// where it used to copy whole batches into its buffer. An op is one event
// published, so ns/op, B/op and allocs/op are per event and 4 deliveries;
// ns/delivery is ns/op / 4. The clients run in the same process: their
// reading (and counting) is in every number, equally for both servers.
//
//   - ssekit: Hub.Handler on net/http, default options (heartbeats off).
//   - naive: the bench's naive server: the publisher encodes each event
//     once (sse.AppendEvent, with an ID) and writes and flushes it to every
//     subscriber in turn, under one lock: no queue, no copy.
func BenchmarkLargeEvents(b *testing.B) {
	for _, srv := range largeServers {
		b.Run(srv.name, func(b *testing.B) {
			l := newLarge(b, srv.setup)
			defer l.close()
			b.SetBytes(largeSize * largeSubs)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += largeBurst {
				if err := l.burst(min(largeBurst, b.N-i)); err != nil {
					b.Fatal(err)
				}
			}
			reportDeliveries(b, largeSubs)
		})
	}
}

// largeServers are the servers of BenchmarkLargeEvents: each returns its
// handler, its publish function and its cleanup.
var largeServers = []struct {
	name  string
	setup func(testing.TB) (http.Handler, func([]byte) error, func())
}{
	{"ssekit", ssekitLarge},
	{"naive", naiveLarge},
}

func ssekitLarge(tb testing.TB) (http.Handler, func([]byte) error, func()) {
	hub, err := sse.NewHub(sse.Options{HeartbeatInterval: time.Hour, Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	publish := func(data []byte) error {
		_, err := hub.Publish(context.Background(), "bench", sse.Event{Data: data})
		return err
	}
	return hub.Handler(sse.HandlerOptions{Topics: sse.Topics("bench")}), publish,
		func() { _ = hub.Shutdown(context.Background()) }
}

// naive is servers/naive with ssekit's encoder.
type naive struct {
	mu      sync.Mutex
	seq     uint64
	clients map[http.ResponseWriter]http.Flusher
}

func naiveLarge(testing.TB) (http.Handler, func([]byte) error, func()) {
	n := &naive{clients: make(map[http.ResponseWriter]http.Flusher)}
	return n, n.publish, func() {}
}

func (n *naive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "cannot flush", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	n.mu.Lock()
	w.WriteHeader(http.StatusOK)
	f.Flush()
	n.clients[w] = f
	n.mu.Unlock()
	<-r.Context().Done()
	n.mu.Lock()
	delete(n.clients, w)
	n.mu.Unlock()
}

func (n *naive) publish(data []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	frame, err := sse.AppendEvent(make([]byte, 0, len(data)+32), sse.Event{ID: strconv.FormatUint(n.seq, 10), Data: data})
	if err != nil {
		return err
	}
	for w, f := range n.clients {
		_, _ = w.Write(frame)
		f.Flush()
	}
	return nil
}

// large is a server with largeSubs subscribers reading over loopback.
type large struct {
	srv     *httptest.Server
	publish func([]byte) error
	cleanup func()
	conns   []net.Conn
	d       *deliveries
	data    []byte
	readers sync.WaitGroup
}

func newLarge(tb testing.TB, setup func(testing.TB) (http.Handler, func([]byte) error, func())) *large {
	h, publish, cleanup := setup(tb)
	l := &large{srv: httptest.NewServer(h), publish: publish, cleanup: cleanup, d: newDeliveries(),
		data: bytes.Repeat([]byte{'x'}, largeSize)}
	var opened sync.WaitGroup
	for range largeSubs {
		c, err := net.Dial("tcp", l.srv.Listener.Addr().String())
		if err != nil {
			l.close()
			tb.Fatal(err)
		}
		l.conns = append(l.conns, c)
		if _, err := fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
			l.close()
			tb.Fatal(err)
		}
		opened.Add(1)
		l.readers.Add(1)
		go l.read(c, &opened)
	}
	// Both servers send their first bytes after the stream has subscribed.
	opened.Wait()
	return l
}

// read reads a stream until it ends and counts its events: the data
// lines, found across reads by keeping the last bytes of each. The first
// read tells opened.
func (l *large) read(c net.Conn, opened *sync.WaitGroup) {
	defer l.readers.Done()
	const keep = len("\ndata:") - 1
	buf := make([]byte, keep+32<<10)
	carry, first := 0, true
	for {
		n, err := c.Read(buf[carry:])
		if n > 0 && first {
			first = false
			opened.Done()
		}
		end := carry + n
		l.d.got(int64(bytes.Count(buf[:end], dataField)))
		carry = copy(buf, buf[max(0, end-keep):end])
		if err != nil {
			if first {
				opened.Done()
			}
			return
		}
	}
}

// burst publishes k events and waits until every subscriber has them.
func (l *large) burst(k int) error {
	l.d.expect(k * largeSubs)
	for range k {
		if err := l.publish(l.data); err != nil {
			return err
		}
	}
	return l.d.wait()
}

func (l *large) close() {
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.readers.Wait()
	l.srv.CloseClientConnections()
	l.cleanup()
	l.srv.Close()
}

// TestLargeEventsDeliver checks the harness of BenchmarkLargeEvents: both
// servers get every event of three bursts to every subscriber, and no more.
func TestLargeEventsDeliver(t *testing.T) {
	for _, srv := range largeServers {
		t.Run(srv.name, func(t *testing.T) {
			l := newLarge(t, srv.setup)
			defer l.close()
			for range 3 {
				if err := l.burst(largeBurst); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(50 * time.Millisecond)
			if left := l.d.left.Load(); left != 0 {
				t.Errorf("%d deliveries after the last burst's (want 0)", -left)
			}
		})
	}
}
