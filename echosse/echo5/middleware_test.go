package echosse_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	echosse "github.com/ssekit/ssekit/echosse/echo5"
	"github.com/ssekit/ssekit/internal/testkit"
)

// liveStream reads a stream: the opening comment arrives on opened, events
// on events, the end of the stream (its error) on ended.
type liveStream struct {
	p      *ssetest.Parser
	opened chan struct{}
	events chan ssetest.Event
	ended  chan error
}

func readLive(r io.Reader) *liveStream {
	ls := &liveStream{p: ssetest.NewParser(r), opened: make(chan struct{}), events: make(chan ssetest.Event, 16), ended: make(chan error, 1)}
	ls.p.OnComment = func(c string) {
		if c == " ok" {
			close(ls.opened)
		}
	}
	go func() {
		for {
			ev, err := ls.p.Next()
			if err != nil {
				ls.ended <- err
				return
			}
			ls.events <- ev
		}
	}()
	return ls
}

func (ls *liveStream) waitOpen(t *testing.T) {
	t.Helper()
	select {
	case <-ls.opened:
	case err := <-ls.ended:
		t.Fatalf("the stream ended before its opening comment: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the opening comment was not flushed at once")
	}
}

func (ls *liveStream) next(t *testing.T) ssetest.Event {
	t.Helper()
	select {
	case ev := <-ls.events:
		return ev
	case err := <-ls.ended:
		t.Fatalf("the stream ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the event did not arrive within 5s")
	}
	panic("unreachable")
}

func (ls *liveStream) end(t *testing.T) error {
	t.Helper()
	select {
	case ev := <-ls.events:
		t.Fatalf("got %+v, want the end of the stream", ev)
	case err := <-ls.ended:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end within 5s")
	}
	panic("unreachable")
}

// streamThrough checks that events pass the live stream one by one, while
// the handler is still running (the hub counts the stream as open).
func streamThrough(t *testing.T, hub *sse.Hub, ls *liveStream) {
	t.Helper()
	ls.waitOpen(t)
	for _, data := range []string{"one", "two", "three"} {
		id := testkit.Publish(t, hub, "t", data)
		if ev := ls.next(t); ev.Data != data || ev.LastEventID != id {
			t.Fatalf("got %+v, want %s with id %s", ev, data, id)
		}
		if n := hub.Stats().Streams; n != 1 {
			t.Fatalf("%d open streams while reading, want 1", n)
		}
	}
}

// RequestLogger and Recover pass the stream through; the request is logged
// when the stream ends.
func TestRequestLoggerAndRecover(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	e, logs := loggedEcho()
	e.Use(middleware.RequestLogger(), middleware.Recover())
	e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))
	url, srvLog := serveLogged(t, e)

	st := connect(t, url+"/events", "", nil)
	streamThrough(t, hub, readLive(st.Response.Body))
	if strings.Contains(logs.String(), "REQUEST") {
		t.Errorf("the request was logged before the stream ended: %s", logs)
	}
	st.Close()
	testkit.Eventually(t, "the stream to close", streams(hub, 0))
	testkit.Eventually(t, "the request log line", func() bool { return contains(logs.String(), "REQUEST", "uri=/events", "status=200") })
	if s := srvLog.String(); s != "" {
		t.Errorf("server log: %s", s)
	}
}

// Gzip compresses the stream and flushes each event at once, also with a
// MinLength larger than the events: every flush forces compression.
func TestGzip(t *testing.T) {
	for _, minLength := range []int{0, 4096} {
		t.Run("MinLength"+strconv.Itoa(minLength), func(t *testing.T) {
			hub := ssetest.NewHub(t, sse.Options{})
			e := newEcho()
			e.Use(middleware.GzipWithConfig(middleware.GzipConfig{MinLength: minLength}))
			e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))
			// Setting Accept-Encoding keeps the transport from decoding.
			resp := open(t, serve(t, e)+"/events", http.Header{"Accept-Encoding": {"gzip"}})
			h := resp.Header
			if resp.StatusCode != 200 || h.Get("Content-Encoding") != "gzip" || h.Get("Content-Type") != "text/event-stream" ||
				h.Get("Content-Length") != "" {
				t.Fatalf("got %d %v, want 200, a gzip event stream without Content-Length", resp.StatusCode, h)
			}
			zr, err := gzip.NewReader(resp.Body) // reads the gzip header: flushed at once
			if err != nil {
				t.Fatal(err)
			}
			streamThrough(t, hub, readLive(zr))
		})
	}
}

// Through Gzip, as a browser sees it (the transport asks for gzip and
// decodes): a dropped client resumes and gets every event once, and the
// hub and the goroutines are back where they were when it leaves.
func TestGzipResume(t *testing.T) {
	base := runtime.NumGoroutine()
	hub := ssetest.NewHub(t, sse.Options{})
	e := newEcho()
	e.Use(middleware.Gzip())
	e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))
	url := serve(t, e) + "/events"

	st := connect(t, url, "", nil)
	if !st.Response.Uncompressed {
		t.Fatal("the response was not compressed")
	}
	first := testkit.Publish(t, hub, "t", "first")
	if ev := next(t, st.Parser()); ev.LastEventID != first {
		t.Fatalf("got %+v", ev)
	}
	st.Close()
	testkit.Eventually(t, "the stream to close", streams(hub, 0))
	var ids []string
	for i := range 5 {
		ids = append(ids, testkit.Publish(t, hub, "t", strings.Repeat("missed ", i*100)))
	}
	st = connect(t, url, first, nil)
	ids = append(ids, testkit.Publish(t, hub, "t", "live"))
	for _, want := range ids {
		if ev := next(t, st.Parser()); ev.LastEventID != want {
			t.Fatalf("got %+v, want id %s", ev, want)
		}
	}
	st.Close()
	testkit.Eventually(t, "the stream to close", streams(hub, 0))
	http.DefaultClient.CloseIdleConnections()
	testkit.Eventually(t, "the goroutines to return to their number before the test", func() bool {
		return runtime.NumGoroutine() <= base+4
	})
}

// ContextTimeout ends the stream cleanly at its deadline: no panic, no
// error response written over the stream, a warning in the log; the
// client resumes without losing an event.
func TestContextTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	hub := ssetest.NewHub(t, sse.Options{})
	e, logs := loggedEcho()
	e.Use(middleware.RequestLogger(), middleware.Recover(), middleware.ContextTimeout(timeout))
	e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))
	url, srvLog := serveLogged(t, e)

	var raw bytes.Buffer
	start := time.Now()
	resp := open(t, url+"/events", nil)
	ls := readLive(io.TeeReader(resp.Body, &raw))
	ls.waitOpen(t)
	id := testkit.Publish(t, hub, "t", "before the deadline")
	if ev := ls.next(t); ev.LastEventID != id {
		t.Fatalf("got %+v, want the event %s", ev, id)
	}
	if err := ls.end(t); !errors.Is(err, io.EOF) {
		t.Fatalf("the stream ended with %v, want a clean end", err)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("the stream ended after %v, before the deadline", d)
	}
	if s := raw.String(); strings.Contains(s, "{") || strings.Contains(s, "Unavailable") {
		t.Errorf("something was written over the stream: %q", s)
	}

	// The client resumes, as an EventSource does, and misses nothing.
	missed := testkit.Publish(t, hub, "t", "after the deadline")
	st := connect(t, url+"/events", ls.p.LastEventID(), nil)
	if ev := next(t, st.Parser()); ev.LastEventID != missed {
		t.Fatalf("after resuming got %+v, want the event %s", ev, missed)
	}
	st.Close()
	testkit.Eventually(t, "the streams to close", streams(hub, 0))
	if n := strings.Count(logs.String(), "ContextTimeout"); n != 1 {
		t.Errorf("%d warnings about the deadline, want 1: %s", n, logs)
	}
	if s := srvLog.String(); s != "" {
		t.Errorf("server log: %s", s)
	}
}

// The stream route skipped by ContextTimeout's Skipper outlives the
// timeout, as the README recommends.
func TestContextTimeoutSkipper(t *testing.T) {
	const timeout = 100 * time.Millisecond
	hub := ssetest.NewHub(t, sse.Options{})
	e, logs := loggedEcho()
	e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{
		Timeout: timeout,
		Skipper: func(c *echo.Context) bool { return c.Path() == "/events" },
	}))
	e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))
	st := connect(t, serve(t, e)+"/events", "", nil)
	time.Sleep(3 * timeout)
	id := testkit.Publish(t, hub, "t", "after the timeout")
	if ev := next(t, st.Parser()); ev.LastEventID != id {
		t.Fatalf("got %+v, want %s", ev, id)
	}
	if s := logs.String(); s != "" {
		t.Errorf("log: %s", s)
	}
}

// Echo behind http.TimeoutHandler (what v4's Timeout middleware does):
// *echo.Response.Flush would panic. The handler
// refuses with 500 and says why in the log instead.
func TestTimeoutHandlerRefused(t *testing.T) {
	for _, recover := range []bool{false, true} {
		name := "NoRecover"
		if recover {
			name = "Recover"
		}
		t.Run(name, func(t *testing.T) {
			logs := &logs{}
			hub := ssetest.NewHub(t, sse.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			e, _ := loggedEcho()
			if recover {
				e.Use(middleware.Recover())
			}
			e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))
			url, srvLog := serveLogged(t, http.TimeoutHandler(e, 5*time.Second, "timeout"))
			resp, body := get(t, url+"/events", nil)
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" ||
				!strings.Contains(body, "cannot stream") {
				t.Errorf("got %d %q (%s), want 500 explaining the server cannot stream", resp.StatusCode, body, resp.Header.Get("Content-Type"))
			}
			if !contains(logs.String(), "does not reach the connection", "http.TimeoutHandler", "level=ERROR") {
				t.Errorf("log: %s", logs)
			}
			if s := srvLog.String(); s != "" {
				t.Errorf("server log: %s", s)
			}
			if n := hub.Stats().Streams; n != 0 {
				t.Errorf("%d streams open", n)
			}
		})
	}
}

// Echo's HTTPErrorHandler does not write over a stream that has started,
// when middleware returns an error after it: the response is committed.
func TestErrorHandlerLeavesStreamAlone(t *testing.T) {
	for _, gz := range []bool{false, true} {
		name := "Plain"
		if gz {
			name = "Gzip"
		}
		t.Run(name, func(t *testing.T) {
			hub := ssetest.NewHub(t, sse.Options{CloseRetry: 10 * time.Millisecond})
			e := newEcho()
			handled := make(chan error, 1)
			e.HTTPErrorHandler = func(c *echo.Context, err error) {
				handled <- err
				echo.DefaultHTTPErrorHandler(true)(c, err)
			}
			if gz {
				e.Use(middleware.Gzip())
			}
			e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
				return func(c *echo.Context) error {
					_ = next(c)
					return errors.New("failed after the stream")
				}
			})
			e.GET("/events", echosse.Handler(hub, echosse.Topics("t")))
			// The transport decodes gzip.
			resp := open(t, serve(t, e)+"/events", nil)
			var raw bytes.Buffer
			ls := readLive(io.TeeReader(resp.Body, &raw))
			ls.waitOpen(t)
			id := testkit.Publish(t, hub, "t", "x")
			if ev := ls.next(t); ev.LastEventID != id {
				t.Fatalf("got %+v", ev)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := hub.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := ls.end(t); !errors.Is(err, io.EOF) {
				t.Fatalf("the stream ended with %v, want a clean end", err)
			}
			select {
			case <-handled:
			case <-time.After(5 * time.Second):
				t.Fatal("the error handler did not run")
			}
			if s := raw.String(); strings.Contains(s, "failed") || strings.Contains(s, "{") {
				t.Errorf("the error handler wrote over the stream: %q", s)
			}
		})
	}
}

// A panic in a TopicsFunc, before the stream starts, is Echo's to handle:
// Recover turns it into a 500 and nothing is left open in the hub.
func TestRecoverBeforeStream(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	e := newEcho()
	e.Use(middleware.Recover())
	e.GET("/events", echosse.Handler(hub, echosse.TopicsFunc(func(*echo.Context) ([]string, error) { panic("topics") })))
	resp, _ := get(t, serve(t, e)+"/events", nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	if s := hub.Stats(); s.Streams != 0 {
		t.Errorf("stats after the panic: %+v", s)
	}
}

// TestMiddlewareTable runs each of Echo's usual middleware in front of the
// stream route. An entry that works passes the whole conformance kit
// through it, attached and detached; an entry that cannot carry a stream
// is refused, attached and detached, with 500, an explanation and a log
// line of the hub's, which the test prints (go test -v). The kit's client asks for gzip and decodes
// it, as browsers do. ContextTimeout passes the kit with a deadline longer
// than the kit's checks; at the deadline it ends the stream
// (TestContextTimeout). Echo v5 has no Timeout middleware: the table has
// http.TimeoutHandler around Echo instead, which v4's Timeout used.
func TestMiddlewareTable(t *testing.T) {
	testkit.CheckGoroutines(t)
	for _, c := range []struct {
		name         string
		mw           []echo.MiddlewareFunc
		wrap         func(http.Handler) http.Handler // net/http middleware around Echo
		refused      string                          // "": works; else what the hub's log line says
		attachedOnly bool                            // refused attached only: see the entry
	}{
		{name: "RequestLogger", mw: []echo.MiddlewareFunc{middleware.RequestLogger()}},
		{name: "Recover", mw: []echo.MiddlewareFunc{middleware.Recover()}},
		{name: "Gzip", mw: []echo.MiddlewareFunc{middleware.GzipWithConfig(middleware.GzipConfig{MinLength: 1024})}},
		{name: "ContextTimeout", mw: []echo.MiddlewareFunc{middleware.ContextTimeout(time.Minute)}},
		{name: "TimeoutHandler", wrap: func(h http.Handler) http.Handler { return http.TimeoutHandler(h, time.Minute, "timeout") },
			refused: "http.TimeoutHandler"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.refused == "" {
				t.Run("Attached", func(t *testing.T) { ssetest.Run(t, kitServer(c.mw)) })
				t.Run("Detached", func(t *testing.T) {
					ssetest.RunWith(t, kitServer(c.mw, echosse.Detach()), ssetest.Config{Detached: true})
				})
				return
			}
			for _, m := range []struct {
				name string
				opts []echosse.Option
			}{{"Attached", nil}, {"Detached", []echosse.Option{echosse.Detach()}}} {
				if m.opts != nil && c.attachedOnly {
					continue
				}
				t.Run(m.name, func(t *testing.T) {
					testkit.CheckGoroutines(t)
					logs := &logs{}
					hub := ssetest.NewHub(t, sse.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
					e := newEcho()
					e.Use(c.mw...)
					e.GET("/events", echosse.Handler(hub, append([]echosse.Option{echosse.Topics("t")}, m.opts...)...))
					var h http.Handler = e
					if c.wrap != nil {
						h = c.wrap(h)
					}
					url, srvLog := serveLogged(t, h)
					resp, body := get(t, url+"/events", http.Header{"Accept-Encoding": {"gzip"}})
					if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" ||
						!strings.Contains(body, "cannot stream") {
						t.Errorf("got %d %q, want 500 saying the server cannot stream", resp.StatusCode, body)
					}
					if !contains(logs.String(), "level=ERROR", c.refused) {
						t.Errorf("log %q does not name %q", logs, c.refused)
					}
					if s := srvLog.String(); s != "" {
						t.Errorf("server log: %s", s)
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
