package sse_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/internal/testkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

var detachedT = sse.HandlerOptions{Topics: sse.Topics("t"), Detach: true}

// rawStream is a stream read over a plain TCP connection, with no
// goroutine of its own, so that tests can count the server's goroutines.
type rawStream struct {
	conn net.Conn
	resp *http.Response
	p    *ssetest.Parser
}

func openRaw(t *testing.T, srvURL, lastID string) *rawStream {
	t.Helper()
	addr := strings.TrimPrefix(srvURL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return &rawStream{conn: conn, resp: resp, p: ssetest.NewParser(resp.Body)}
}

func (s *rawStream) next(t *testing.T) ssetest.Event {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	ev, err := s.p.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

// TestDetachedStreams: detached streams are served by a few shared
// goroutines, get every event, look like attached ones on the wire, and
// are reported to the Observer when they end.
func TestDetachedStreams(t *testing.T) {
	testkit.CheckGoroutines(t)
	var mu sync.Mutex
	closed := map[sse.EndReason]int{}
	sent := 0
	hub := ssetest.NewHub(t, sse.Options{Observer: sse.Observer{
		StreamClosed: func(_ sse.StreamInfo, reason sse.EndReason, n int) {
			mu.Lock()
			closed[reason]++
			sent += n
			mu.Unlock()
		},
	}})
	srv := serve(t, hub, detachedT)

	before := runtime.NumGoroutine()
	const n = 50
	streams := make([]*rawStream, n)
	for i := range streams {
		streams[i] = openRaw(t, srv.URL, "")
	}
	// A stream counts as open once subscribed, and as detached once its
	// handler has handed it over, just after.
	testkit.Eventually(t, "every stream to be detached", func() bool { return hub.Stats().Detached == n })
	// Attached, every stream would hold a goroutine or two; detached, the
	// hub runs a worker per CPU and a poller.
	if grew := runtime.NumGoroutine() - before; grew > runtime.GOMAXPROCS(0)+3 {
		t.Errorf("%d streams started %d goroutines", n, grew)
	}
	resp := streams[0].resp
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Accel-Buffering") != "no" ||
		len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || !resp.Close {
		t.Errorf("response head: %d %v, transfer encoding %v, close %v", resp.StatusCode, resp.Header, resp.TransferEncoding, resp.Close)
	}

	var ids []string
	for i := range 20 {
		ids = append(ids, testkit.Publish(t, hub, "t", strings.Repeat("x", i*1000)))
	}
	for i, st := range streams {
		for j, id := range ids {
			if ev := st.next(t); ev.LastEventID != id || len(ev.Data) != j*1000 {
				t.Fatalf("stream %d, event %d: id %q with %d bytes, want %q with %d", i, j, ev.LastEventID, len(ev.Data), id, j*1000)
			}
		}
	}
	for _, st := range streams {
		st.conn.Close()
	}
	testkit.WaitStreams(t, hub, 0)
	mu.Lock()
	defer mu.Unlock()
	if closed[sse.EndClientGone] != n || sent != n*len(ids) {
		t.Errorf("Observer saw ends %v and %d events sent, want %d client-gone ends and %d events", closed, sent, n, n*len(ids))
	}
}

// TestDetachedNoticesDepartedClient: on Linux the poller notices a peer's
// close at once, long before a heartbeat could.
func TestDetachedNoticesDepartedClient(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("elsewhere a departed client is noticed by a failing heartbeat (checked by the conformance kit)")
	}
	testkit.CheckGoroutines(t)
	hub := ssetest.NewHub(t, sse.Options{HeartbeatInterval: time.Hour})
	srv := serve(t, hub, detachedT)
	st := openRaw(t, srv.URL, "")
	testkit.WaitStreams(t, hub, 1)
	start := time.Now()
	st.conn.Close()
	testkit.WaitStreams(t, hub, 0)
	t.Logf("released %v after the client closed", time.Since(start))
}

// TestHalfCloseEndsStream: a client that shuts down its sending side
// (shutdown(SHUT_WR)) and would still read is taken as gone, attached or
// detached: EventSource never half-closes. Attached, net/http's
// background read sees EOF and cancels the request's context; detached,
// the Linux poller sees EPOLLRDHUP. (Elsewhere a detached stream does not
// notice; its heartbeats still go through.)
func TestHalfCloseEndsStream(t *testing.T) {
	for _, detach := range []bool{false, true} {
		name := map[bool]string{false: "attached", true: "detached"}[detach]
		t.Run(name, func(t *testing.T) {
			if detach && runtime.GOOS != "linux" {
				t.Skip("only the Linux poller notices a half-close")
			}
			testkit.CheckGoroutines(t)
			ends := make(chan sse.EndReason, 1)
			hub := ssetest.NewHub(t, sse.Options{HeartbeatInterval: time.Hour, Observer: sse.Observer{
				StreamClosed: func(_ sse.StreamInfo, reason sse.EndReason, _ int) { ends <- reason },
			}})
			opts := detachedT
			opts.Detach = detach
			srv := serve(t, hub, opts)
			st := openRaw(t, srv.URL, "")
			testkit.WaitStreams(t, hub, 1)
			if err := st.conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			select {
			case reason := <-ends:
				if reason != sse.EndClientGone {
					t.Errorf("the stream ended with %v, want %v", reason, sse.EndClientGone)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a half-closed stream did not end")
			}
		})
	}
}

// TestDetachedResumeAndLargeEvents: replay happens before the hand-over,
// and events larger than a chunk reach a slow reader intact.
func TestDetachedResumeAndLargeEvents(t *testing.T) {
	testkit.CheckGoroutines(t)
	hub := ssetest.NewHub(t, sse.Options{MaxEventBytes: 2 << 20})
	srv := serve(t, hub, detachedT)
	first := testkit.Publish(t, hub, "t", "one")
	var want []string
	big := strings.Repeat("y", 1<<20)
	for range 3 {
		want = append(want, testkit.Publish(t, hub, "t", big))
	}
	st := openRaw(t, srv.URL, first)
	for range 3 {
		want = append(want, testkit.Publish(t, hub, "t", big))
	}
	for i, id := range want {
		time.Sleep(20 * time.Millisecond) // let the socket fill
		if ev := st.next(t); ev.LastEventID != id || ev.Data != big {
			t.Fatalf("event %d: id %q, %d bytes; want %q, %d bytes", i, ev.LastEventID, len(ev.Data), id, len(big))
		}
	}
}

// TestDetachedFallsBack: requests whose connection cannot be taken over
// (TLS, HTTP/2) are served attached, and behave the same.
func TestDetachedFallsBack(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "https"
		if h2 {
			name = "http2"
		}
		t.Run(name, func(t *testing.T) {
			hub := ssetest.NewHub(t, sse.Options{})
			srv := httptest.NewUnstartedServer(hub.Handler(detachedT))
			srv.EnableHTTP2 = h2
			srv.StartTLS()
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := ssetest.Connect(ctx, srv.Client(), srv.URL, "")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got := st.Response.ProtoMajor == 2; got != h2 {
				t.Fatalf("protocol %s", st.Response.Proto)
			}
			id := testkit.Publish(t, hub, "t", "hello")
			if ev := next(t, st); ev.LastEventID != id {
				t.Fatalf("got %+v", ev)
			}
			if s := hub.Stats(); s.Streams != 1 || s.Detached != 0 {
				t.Fatalf("Stats: %+v, want one attached stream", s)
			}
		})
	}
}

// TestDetachedShutdownClosesStalled: Shutdown closes detached connections
// that a stalled client keeps open, which http.Server.Shutdown cannot see.
func TestDetachedShutdownClosesStalled(t *testing.T) {
	testkit.CheckGoroutines(t)
	hub, err := sse.NewHub(sse.Options{MaxQueueBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, hub, detachedT)
	stalled := openRaw(t, srv.URL, "")
	_ = stalled.conn.(*net.TCPConn).SetReadBuffer(4096)
	testkit.WaitStreams(t, hub, 1)
	payload := strings.Repeat("z", 64<<10)
	for range 100 { // 6.4 MiB: more than the socket buffers hold
		testkit.Publish(t, hub, "t", payload)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := hub.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want it to give up on the stalled stream", err)
	}
	testkit.WaitStreams(t, hub, 0)
	_ = stalled.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stalled.conn); err != nil && !isReset(err) {
		t.Fatalf("reading the rest: %v, want the connection closed", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// TestDetachedCycles: many connections opened and closed leave no
// goroutine and no file descriptor behind.
func TestDetachedCycles(t *testing.T) {
	testkit.CheckGoroutines(t)
	cycles := 10000
	if testing.Short() {
		cycles = 1000
	}
	hub := ssetest.NewHub(t, sse.Options{})
	srv := serve(t, hub, detachedT)
	addr := strings.TrimPrefix(srv.URL, "http://")
	// One stream stays open through the first cycles, so that the hub's
	// engine keeps running; in the last ones, the engine stops and starts
	// with every connection.
	keep := openRaw(t, srv.URL, "")
	testkit.WaitStreams(t, hub, 1)
	fds := openFDs()
	runCycles(t, addr, cycles, 4)
	testkit.WaitStreams(t, hub, 1)
	keep.conn.Close()
	testkit.WaitStreams(t, hub, 0)
	runCycles(t, addr, cycles/20, 1)
	testkit.WaitStreams(t, hub, 0)
	if fds >= 0 {
		testkit.Eventually(t, "file descriptors to return to their number before the cycles", func() bool {
			return openFDs() <= fds-1 // keep is closed
		})
	}
}

// runCycles runs cycles connect/disconnect cycles from workers goroutines.
func runCycles(t *testing.T, addr string, cycles, workers int) {
	t.Helper()
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < cycles; i += workers {
				if err := cycle(addr); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d cycles failed", n, cycles)
	}
}

// cycle opens a stream, reads its head and opening frame, and closes it.
func cycle(addr string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	var b [3]byte
	if _, err := io.ReadFull(resp.Body, b[:]); err != nil || string(b[:]) != ": o" {
		return errors.New("no opening frame")
	}
	return nil
}

// openFDs returns the number of the process's open file descriptors, or
// -1 where /proc does not tell.
func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// wrappedListener hands out connections that hide their file descriptor,
// as some listener wrappers (PROXY protocol, say) do.
type wrappedListener struct{ net.Listener }

type wrappedConn struct{ net.Conn }

func (l wrappedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c}, nil
}

// TestDetachedWithoutFD: a hijacked connection without a file descriptor
// is served from its handler goroutine, with the same behaviour.
func TestDetachedWithoutFD(t *testing.T) {
	testkit.CheckGoroutines(t)
	hub := ssetest.NewHub(t, sse.Options{HeartbeatInterval: 50 * time.Millisecond})
	srv := httptest.NewUnstartedServer(hub.Handler(detachedT))
	srv.Listener = wrappedListener{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	st := openRaw(t, srv.URL, "")
	testkit.WaitStreams(t, hub, 1)
	if s := hub.Stats(); s.Detached != 0 {
		t.Fatalf("Stats: %+v, want the stream served attached", s)
	}
	id := testkit.Publish(t, hub, "t", "hello")
	if ev := st.next(t); ev.LastEventID != id || ev.Data != "hello" {
		t.Fatalf("got %+v", ev)
	}
	st.conn.Close()
	testkit.WaitStreams(t, hub, 0) // noticed by a failing heartbeat
}

// panickyWriter's Hijack panics, as gin's does when the writer it wraps
// cannot hijack.
type panickyWriter struct{ http.ResponseWriter }

func (w panickyWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { panic("cannot hijack") }
func (w panickyWriter) Unwrap() http.ResponseWriter                  { return w.ResponseWriter }

// TestDetachedHijackPanics: a writer whose Hijack panics is served
// attached, and its session is not leaked.
func TestDetachedHijackPanics(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{MaxStreams: 1})
	h := hub.Handler(detachedT)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(panickyWriter{w}, r)
	}))
	t.Cleanup(srv.Close)
	for range 3 { // MaxStreams 1: a leaked session would refuse the next
		st := connect(t, srv.URL, "")
		id := testkit.Publish(t, hub, "t", "x")
		if ev := next(t, st); ev.LastEventID != id {
			t.Fatalf("got %+v", ev)
		}
		if s := hub.Stats(); s.Detached != 0 {
			t.Fatalf("Stats: %+v, want the stream attached", s)
		}
		st.Close()
		testkit.WaitStreams(t, hub, 0)
	}
}
