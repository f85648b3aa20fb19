package chisse_test

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/internal/testkit"
)

// prompt bounds how long a published event may take to reach the client.
const prompt = 2 * time.Second

// live reads a stream in the background, so that a test can wait for its
// opening comment and for each event with a bound, while the stream stays
// open.
type live struct {
	comments chan string
	events   chan ssetest.Event
	err      chan error
}

func readLive(p *ssetest.Parser) *live {
	l := &live{comments: make(chan string, 64), events: make(chan ssetest.Event, 64), err: make(chan error, 1)}
	p.OnComment = func(c string) {
		select {
		case l.comments <- c:
		default:
		}
	}
	go func() {
		for {
			ev, err := p.Next()
			if err != nil {
				l.err <- err
				return
			}
			l.events <- ev
		}
	}()
	return l
}

// opened waits for the opening comment, sent before any event.
func (l *live) opened(t *testing.T) {
	t.Helper()
	select {
	case c := <-l.comments:
		if c != " ok" {
			t.Fatalf("first comment %q, want \" ok\"", c)
		}
	case err := <-l.err:
		t.Fatalf("the stream ended before its opening comment: %v", err)
	case <-time.After(prompt):
		t.Fatal("the opening comment did not arrive at once: something buffers the stream")
	}
}

// event waits for the next event.
func (l *live) event(t *testing.T) ssetest.Event {
	t.Helper()
	select {
	case ev := <-l.events:
		return ev
	case err := <-l.err:
		t.Fatalf("the stream ended: %v", err)
	case <-time.After(prompt):
		t.Fatalf("no event within %v: something buffers the stream", prompt)
	}
	return ssetest.Event{}
}

// checkFlows checks that a stream that is open on hub (and on nothing
// else) gets its opening comment at once and each event as it is published,
// while the stream stays open.
func checkFlows(t *testing.T, hub *sse.Hub, l *live) {
	t.Helper()
	l.opened(t)
	for i := range 3 {
		id := testkit.Publish(t, hub, "t", "event "+strconv.Itoa(i))
		if ev := l.event(t); ev.LastEventID != id || ev.Data != "event "+strconv.Itoa(i) {
			t.Fatalf("got %+v, want event %d with id %s", ev, i, id)
		}
		if n := hub.Stats().Streams; n != 1 {
			t.Fatalf("%d open streams after event %d, want the stream still open", n, i)
		}
	}
}

func discardLogger() func(http.Handler) http.Handler {
	return middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(io.Discard, "", 0), NoColor: true})
}

// TestMiddlewareStreaming: chi's Logger, Recoverer and Compress (with its
// default types) pass the stream through as it is written, uncompressed.
func TestMiddlewareStreaming(t *testing.T) {
	for _, c := range []struct {
		name string
		mw   []func(http.Handler) http.Handler
	}{
		{"Logger", []func(http.Handler) http.Handler{discardLogger()}},
		{"Recoverer", []func(http.Handler) http.Handler{middleware.Recoverer}},
		{"Compress", []func(http.Handler) http.Handler{middleware.Compress(5)}},
		{"All", []func(http.Handler) http.Handler{discardLogger(), middleware.Recoverer, middleware.Compress(5)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			hub := ssetest.NewHub(t, sse.Options{})
			r := chi.NewRouter()
			r.Use(c.mw...)
			r.Get("/events", chisse.Handler(hub, chisse.Topics("t")))
			srv := serve(t, r)
			st := ssetest.Open(t, srv.URL+"/events", "", http.Header{"Accept-Encoding": {"gzip, deflate"}})
			h := st.Response.Header
			if h.Get("Content-Type") != "text/event-stream" || h.Get("Content-Encoding") != "" || st.Response.ContentLength != -1 {
				t.Errorf("head: %v, want an uncompressed event stream without a length", h)
			}
			checkFlows(t, hub, readLive(st.Parser()))
			st.Close()
			testkit.WaitStreams(t, hub, 0)
		})
	}
}

// TestLoggerLogsAtStreamEnd: middleware.Logger writes its line when the
// request ends, so a stream is logged when it closes, with its duration.
func TestLoggerLogsAtStreamEnd(t *testing.T) {
	var logs logBuffer
	hub := ssetest.NewHub(t, sse.Options{})
	r := chi.NewRouter()
	r.Use(middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(&logs, "", 0), NoColor: true}))
	r.Get("/events", chisse.Handler(hub, chisse.Topics("t")))
	srv := serve(t, r)
	st := ssetest.Open(t, srv.URL+"/events", "", nil)
	testkit.Publish(t, hub, "t", "x")
	next(t, st)
	if logs.String() != "" {
		t.Errorf("logged while the stream is open: %q", logs.String())
	}
	st.Close()
	testkit.Eventually(t, "the access log line", func() bool { return strings.Contains(logs.String(), "/events") })
	if !strings.Contains(logs.String(), " 200 ") {
		t.Errorf("log line %q, want status 200", logs.String())
	}
}

// TestCompressOptIn: listing text/event-stream (or text/*) in Compress's
// types compresses the stream, and every event is still flushed at once
// through gzip or deflate, decoded on the live stream.
func TestCompressOptIn(t *testing.T) {
	for _, c := range []struct {
		name, types, encoding string
	}{
		{"gzip", "text/event-stream", "gzip"},
		{"deflate", "text/event-stream", "deflate"},
		{"wildcard", "text/*", "gzip"},
	} {
		t.Run(c.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			hub := ssetest.NewHub(t, sse.Options{})
			r := chi.NewRouter()
			r.Use(middleware.Compress(5, c.types))
			r.Get("/events", chisse.Handler(hub, chisse.Topics("t")))
			srv := serve(t, r)
			// Ask for the encoding explicitly: the transport then leaves
			// the body compressed and the test decodes it as it arrives.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
			req.Header.Set("Accept-Encoding", c.encoding)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != c.encoding {
				t.Fatalf("Content-Encoding %q, want %q", got, c.encoding)
			}
			var body io.Reader
			if c.encoding == "gzip" {
				// NewReader reads the gzip header: it arrives with the
				// opening comment, before anything is published.
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			} else {
				body = flate.NewReader(resp.Body) // chi's "deflate" is raw DEFLATE
			}
			checkFlows(t, hub, readLive(ssetest.NewParser(body)))
			resp.Body.Close()
			testkit.WaitStreams(t, hub, 0)
		})
	}
}

// TestCompressTransparent: a client that lets its transport ask for gzip
// (Go's, and browsers) gets a compressed stream decoded as it arrives.
func TestCompressTransparent(t *testing.T) {
	testkit.CheckGoroutines(t)
	hub := ssetest.NewHub(t, sse.Options{})
	r := chi.NewRouter()
	r.Use(middleware.Compress(5, "text/event-stream"))
	r.Get("/events", chisse.Handler(hub, chisse.Topics("t")))
	srv := serve(t, r)
	st := ssetest.Open(t, srv.URL+"/events", "", nil)
	if !st.Response.Uncompressed {
		t.Fatal("the response was not compressed")
	}
	checkFlows(t, hub, readLive(st.Parser()))
	st.Close()
	testkit.WaitStreams(t, hub, 0)
}

// TestMiddlewareTable runs each of chi's usual middleware in front of the
// stream route. An entry that works passes the whole conformance kit
// through it, attached and detached; an entry that cannot carry a stream
// is refused, attached and detached, with 500, an explanation and a log
// line of the hub's, which the test prints (go test -v). Go's client asks for gzip and decodes it,
// as browsers do, so CompressEventStream streams compressed events.
// Timeout passes the kit with a deadline longer than the kit's checks; at
// the deadline it ends the stream (TestTimeoutMiddleware).
func TestMiddlewareTable(t *testing.T) {
	testkit.CheckGoroutines(t)
	for _, c := range []struct {
		name         string
		mw           []mwFunc
		refused      string // "": works; else what the hub's log line says
		attachedOnly bool   // refused attached only: see the entry
	}{
		{name: "Logger", mw: []mwFunc{discardLogger()}},
		{name: "Recoverer", mw: []mwFunc{middleware.Recoverer}},
		{name: "Compress", mw: []mwFunc{middleware.Compress(5)}},
		{name: "CompressEventStream", mw: []mwFunc{middleware.Compress(5, "text/event-stream")}},
		{name: "Timeout", mw: []mwFunc{middleware.Timeout(time.Minute)}},
		{name: "TimeoutHandler", mw: []mwFunc{func(h http.Handler) http.Handler { return http.TimeoutHandler(h, time.Minute, "timeout") }},
			refused: "http.TimeoutHandler"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.refused == "" {
				t.Run("Attached", func(t *testing.T) { ssetest.Run(t, kitServer(c.mw)) })
				t.Run("Detached", func(t *testing.T) {
					ssetest.RunWith(t, kitServer(c.mw, chisse.Detach()), ssetest.Config{Detached: true})
				})
				return
			}
			for _, m := range []struct {
				name string
				opts []chisse.Option
			}{{"Attached", nil}, {"Detached", []chisse.Option{chisse.Detach()}}} {
				if m.opts != nil && c.attachedOnly {
					continue
				}
				t.Run(m.name, func(t *testing.T) {
					testkit.CheckGoroutines(t)
					var logs logBuffer
					hub := ssetest.NewHub(t, sse.Options{Logger: logs.slog()})
					r := chi.NewRouter()
					r.Use(c.mw...)
					r.Get("/events", chisse.Handler(hub, append([]chisse.Option{chisse.Topics("t")}, m.opts...)...))
					srv := serve(t, r)
					resp, body := testkit.Request(t, "GET", srv.URL+"/events", nil)
					if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" ||
						!strings.Contains(body, "cannot stream") {
						t.Errorf("got %d %q, want 500 saying the server cannot stream", resp.StatusCode, body)
					}
					if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, c.refused) {
						t.Errorf("log %q does not name %q", l, c.refused)
					}
					if n := hub.Stats().Streams; n != 0 {
						t.Errorf("%d streams after the refusal", n)
					}
					t.Logf("refused: %d %q; log: %s", resp.StatusCode, strings.TrimSpace(body), strings.TrimSpace(logs.String()))
				})
			}
		})
	}
}

// panicEntries is a chi LogFormatter whose entries record panics, so that
// Recoverer reports to the test instead of printing a stack.
type panicEntries chan any

func (p panicEntries) NewLogEntry(*http.Request) middleware.LogEntry   { return p }
func (p panicEntries) Write(int, int, http.Header, time.Duration, any) {}
func (p panicEntries) Panic(v any, _ []byte)                           { p <- v }

// TestRecovererPanicInTopics: a panic in TopicsFunc happens before any
// stream byte, so Recoverer's 500 reaches the client, and the hub holds
// nothing for the request.
func TestRecovererPanicInTopics(t *testing.T) {
	testkit.CheckGoroutines(t)
	hub := ssetest.NewHub(t, sse.Options{})
	panics := make(panicEntries, 1)
	r := chi.NewRouter()
	r.Use(middleware.RequestLogger(panics), middleware.Recoverer)
	r.Get("/events", chisse.Handler(hub, chisse.TopicsFunc(func(r *http.Request) ([]string, error) {
		if r.URL.Query().Has("boom") {
			panic("boom")
		}
		return []string{"t"}, nil
	})))
	srv := serve(t, r)
	if resp, _ := testkit.Request(t, "GET", srv.URL+"/events?boom", nil); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want Recoverer's 500", resp.StatusCode)
	}
	if v := <-panics; v != "boom" {
		t.Errorf("Recoverer saw %v", v)
	}
	if s := hub.Stats(); s.Streams != 0 {
		t.Errorf("%d streams after the panic", s.Streams)
	}
	st := ssetest.Open(t, srv.URL+"/events", "", nil)
	checkFlows(t, hub, readLive(st.Parser()))
}

// TestTimeoutMiddleware documents what middleware.Timeout does to a
// stream: at the deadline the request context is cancelled, and the hub
// ends the stream cleanly with a retry hint of CloseRetry to twice that
// (EndDeadline). Then Timeout calls WriteHeader(504) on the answered
// response, which net/http logs as superfluous. The client comes back after
// the hint with Last-Event-ID and misses nothing.
func TestTimeoutMiddleware(t *testing.T) {
	testkit.CheckGoroutines(t)
	const timeout = 150 * time.Millisecond
	ends := make(chan sse.EndReason, 1024) // never full: a blocked Observer would block the hub
	hub := ssetest.NewHub(t, sse.Options{CloseRetry: 20 * time.Millisecond, Observer: sse.Observer{StreamClosed: func(_ sse.StreamInfo, reason sse.EndReason, _ int) {
		ends <- reason
	}}})
	r := chi.NewRouter()
	r.Use(middleware.Timeout(timeout))
	r.Get("/events", chisse.Handler(hub, chisse.Topics("t")))
	var errorLog logBuffer
	srv := httptest.NewUnstartedServer(r)
	srv.Config.ErrorLog = log.New(&errorLog, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)

	// Subscribed before the first publish, so that the client misses
	// nothing. The deadline starts when the server reads the request,
	// after the client starts opening: measured from before Open, a stream
	// can only seem to last longer than it did, never shorter.
	opened := time.Now()
	st := ssetest.Open(t, srv.URL+"/events", "", nil)
	stop := make(chan struct{})
	published := make(chan []string, 1)
	go func() {
		var ids []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				published <- ids
				return
			case <-time.After(3 * time.Millisecond):
			}
			id, err := hub.Publish(context.Background(), "t", sse.Event{Data: []byte(strconv.Itoa(i))})
			if err != nil {
				t.Error(err)
			}
			ids = append(ids, id)
		}
	}()
	var got []string
	ended := 0
	for deadline := time.Now().Add(20 * time.Second); ended < 3 && time.Now().Before(deadline); {
		ev, err := st.Next()
		if err == nil {
			got = append(got, ev.LastEventID)
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the stream did not end cleanly: %v", err)
		}
		if d := time.Since(opened); d < timeout {
			t.Errorf("the stream ended after %v, before the timeout", d)
		}
		if r, ok := st.Parser().Retry(); !ok || r < 20*time.Millisecond || r > 40*time.Millisecond {
			t.Errorf("the stream ended with the retry hint %v (%v), want CloseRetry to twice that", r, ok)
		}
		ended++
		opened = time.Now()
		st = ssetest.Open(t, srv.URL+"/events", st.LastEventID(), nil)
	}
	close(stop)
	ids := <-published
	if ended < 3 {
		t.Fatalf("%d timeouts before the deadline", ended)
	}
	for deadline := time.Now().Add(20 * time.Second); len(got) < len(ids) && time.Now().Before(deadline); {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) { // timed out again while draining: resume
			ended++
			st = ssetest.Open(t, srv.URL+"/events", st.LastEventID(), nil)
			continue
		}
		if err != nil {
			t.Fatalf("draining: %v", err)
		}
		got = append(got, ev.LastEventID)
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("across %d timeouts the client got %d events, want each of %d once, in order", ended, len(got), len(ids))
	}
	for range ended {
		if reason := <-ends; reason != sse.EndDeadline {
			t.Errorf("the hub saw the end as %v", reason)
		}
	}
	if !strings.Contains(errorLog.String(), "superfluous response.WriteHeader") {
		t.Errorf("server error log %q: Timeout no longer writes 504 after the stream: update the README", errorLog.String())
	}
}
