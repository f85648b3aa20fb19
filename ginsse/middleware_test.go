package ginsse_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gingzip "github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/ginsse"
	"github.com/ssekit/ssekit/internal/testkit"
)

// TestLoggerAndRecoveryDoNotBuffer: behind gin.Logger and gin.Recovery the
// head is flushed at once and each event arrives while the handler is
// still running (Logger logs when the handler returns, and has not yet).
func TestLoggerAndRecoveryDoNotBuffer(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	var logs syncBuffer
	r := gin.New()
	r.Use(gin.LoggerWithConfig(gin.LoggerConfig{Output: &logs}), gin.Recovery())
	r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t")))
	url := serve(t, r) + "/events"

	st := ssetest.Open(t, url, "", nil) // returns on the head, with nothing published
	for i := range 3 {
		id := testkit.Publish(t, hub, "t", fmt.Sprint(i))
		if ev := next(t, st); ev.LastEventID != id || ev.Data != fmt.Sprint(i) {
			t.Fatalf("got %+v, want event %d with id %s", ev, i, id)
		}
		if n := hub.Stats().Streams; n != 1 || strings.Contains(logs.String(), "/events") {
			t.Fatalf("after event %d: %d streams, log %q: the event came after the handler ended", i, n, logs.String())
		}
	}
	st.Close()
	testkit.Eventually(t, "the stream to be released", func() bool { return hub.Stats().Streams == 0 })
	testkit.Eventually(t, "Logger's line", func() bool { return strings.Contains(logs.String(), "/events") })
	if !strings.Contains(logs.String(), "200") {
		t.Errorf("Logger logged %q, want status 200", logs.String())
	}
}

// TestRecoveryCatchesPanicInTopicsFunc: a panic before the stream starts
// becomes gin.Recovery's 500, and the next stream works.
func TestRecoveryCatchesPanicInTopicsFunc(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := gin.New()
	r.Use(gin.RecoveryWithWriter(&syncBuffer{}))
	r.GET("/events", ginsse.Handler(hub, ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) {
		if c.Query("boom") != "" {
			panic("boom")
		}
		return []string{"t"}, nil
	})))
	url := serve(t, r) + "/events"
	if resp, _ := testkit.Request(t, "GET", url+"?boom=1", nil); resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("panic: status %d, want 500", resp.StatusCode)
	}
	st := ssetest.Open(t, url, "", nil)
	id := testkit.Publish(t, hub, "t", "x")
	if ev := next(t, st); ev.LastEventID != id {
		t.Fatalf("got %+v after the panic", ev)
	}
}

// TestGzipIsDetected: gin-contrib/gzip wraps gin's writer without Unwrap,
// which hides the connection's write deadline; the hub refuses such a
// stream with 500 and a log line saying to serve it outside compression. Clients
// that do not accept gzip, and an excluded route, stream normally.
func TestGzipIsDetected(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	logs := captureLog(t)
	r := gin.New()
	r.Use(gingzip.Gzip(gingzip.DefaultCompression, gingzip.WithExcludedPaths([]string{"/excluded"})))
	h := ginsse.Handler(hub, ginsse.Topics("t"))
	r.GET("/events", h)
	r.GET("/excluded/events", h)
	base := serve(t, r)

	resp, body := testkit.Request(t, "GET", base+"/events", http.Header{"Accept-Encoding": {"gzip"}})
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" ||
		!strings.Contains(body, "cannot stream") {
		t.Errorf("gzip: got %d %q (%s), want 500 with an explanation", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if l := logs.String(); !strings.Contains(l, "does not reach the connection") || !strings.Contains(l, "compression middleware") {
		t.Errorf("log %q does not say how to fix it", l)
	}
	if n := hub.Stats().Streams; n != 0 {
		t.Errorf("%d streams after the refusal", n)
	}

	for _, c := range []struct {
		name, path, enc string
	}{
		{"no gzip asked", "/events", "identity"},
		{"excluded route", "/excluded/events", "gzip"},
	} {
		st := ssetest.Open(t, base+c.path, "", http.Header{"Accept-Encoding": {c.enc}})
		if ce := st.Response.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("%s: Content-Encoding %q", c.name, ce)
		}
		id := testkit.Publish(t, hub, "t", c.name)
		if ev := next(t, st); ev.LastEventID != id || ev.Data != c.name {
			t.Errorf("%s: got %+v", c.name, ev)
		}
		st.Close()
		testkit.Eventually(t, "the stream to be released", func() bool { return hub.Stats().Streams == 0 })
	}
}

// TestCompressorThatUnwrapsStreams: a compressor whose writer flushes and
// unwraps (unwrappingGzip) is accepted, and every event is flushed through
// it: decoded from the live compressed stream while the stream is open.
func TestCompressorThatUnwrapsStreams(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	r := gin.New()
	r.Use(unwrappingGzip())
	r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t")))
	url := serve(t, r) + "/events"

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept-Encoding", "gzip") // set by hand: the transport then does not decode
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body) // reads the gzip header, sent with the opening frame
	if err != nil {
		t.Fatal(err)
	}
	p := ssetest.NewParser(zr)
	for i := range 3 {
		id := testkit.Publish(t, hub, "t", fmt.Sprint(i))
		start := time.Now()
		ev, err := p.Next()
		if err != nil || ev.LastEventID != id {
			t.Fatalf("event %d: %+v %v", i, ev, err)
		}
		if d := time.Since(start); d > 2*time.Second || hub.Stats().Streams != 1 {
			t.Fatalf("event %d took %v (streams %d): buffered", i, d, hub.Stats().Streams)
		}
	}
}

// TestTimeoutHandlerIsDetected: gin's writer claims to flush even over
// http.TimeoutHandler's buffer; Handler sees that the connection is out of
// reach and refuses with 500 instead of streaming into the buffer.
func TestTimeoutHandlerIsDetected(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	logs := captureLog(t)
	r := gin.New()
	r.GET("/events", ginsse.Handler(hub, ginsse.Topics("t")))
	url := serve(t, http.TimeoutHandler(r, 5*time.Second, "timeout")) + "/events"
	resp, body := testkit.Request(t, "GET", url, nil)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "cannot stream") {
		t.Errorf("got %d %q, want 500 with an explanation", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "http.TimeoutHandler") {
		t.Errorf("log %q does not name the cause", logs.String())
	}
}

// TestLoggerCanRedactTickets: gin.Logger prints the query string; with
// tickets in the query (Auth.QueryParam), the README's formatter keeps them
// out of the log.
func TestLoggerCanRedactTickets(t *testing.T) {
	hub := ssetest.NewHub(t, sse.Options{})
	tickets, err := sse.NewTickets([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	r := gin.New()
	r.Use(gin.LoggerWithConfig(gin.LoggerConfig{Output: &logs, Formatter: func(p gin.LogFormatterParams) string {
		return fmt.Sprintf("%d %s %s\n", p.StatusCode, p.Method, sse.RedactQuery(p.Request.URL, "ticket"))
	}}))
	auth := &sse.Auth{QueryParam: "ticket", Authenticate: tickets.Authenticate}
	r.GET("/events", ginsse.Auth(hub, auth), ginsse.Handler(hub, ginsse.Topics("t")))
	ticket, err := tickets.Issue("ann", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	st := ssetest.Open(t, serve(t, r)+"/events?ticket="+ticket, "", nil)
	st.Close()
	testkit.Eventually(t, "Logger's line", func() bool { return strings.Contains(logs.String(), "/events") })
	if l := logs.String(); strings.Contains(l, ticket) || !strings.Contains(l, "ticket=REDACTED") {
		t.Errorf("log %q", l)
	}
}

// TestMiddlewareTable runs each of gin's usual middleware in front of the
// stream route. An entry that works passes the whole conformance kit
// through it, attached and detached; an entry that cannot carry a stream
// is refused, attached and detached, with 500, an explanation and a log
// line of the hub's, which the test prints (go test -v).
//
// gin-contrib/timeout is not in the table: the module proxy does not
// serve it. http.TimeoutHandler, which it builds on, is.
func TestMiddlewareTable(t *testing.T) {
	testkit.CheckGoroutines(t)
	quiet := gin.LoggerWithConfig(gin.LoggerConfig{Output: io.Discard})
	for _, c := range []struct {
		name         string
		mw           []gin.HandlerFunc
		wrap         func(http.Handler) http.Handler // net/http middleware around the engine
		refused      string                          // "": works; else what the hub's log line says
		attachedOnly bool                            // refused attached only: see the entry
	}{
		{name: "Logger", mw: []gin.HandlerFunc{quiet}},
		{name: "Recovery", mw: []gin.HandlerFunc{gin.RecoveryWithWriter(io.Discard)}},
		// Detached, the hub takes the connection past gzip's writer and
		// streams uncompressed, but gzip then writes its footer to the
		// hijacked connection, which net/http logs for every stream: the
		// route must be excluded either way (README.md).
		{name: "Gzip", mw: []gin.HandlerFunc{gingzip.Gzip(gingzip.DefaultCompression)}, refused: "compression middleware", attachedOnly: true},
		{name: "GzipExcluded", mw: []gin.HandlerFunc{gingzip.Gzip(gingzip.DefaultCompression, gingzip.WithExcludedPaths([]string{"/events"}))}},
		{name: "TimeoutHandler", wrap: func(h http.Handler) http.Handler { return http.TimeoutHandler(h, time.Minute, "timeout") }, refused: "http.TimeoutHandler"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.refused == "" {
				t.Run("Attached", func(t *testing.T) { ssetest.Run(t, kitServer(c.mw)) })
				t.Run("Detached", func(t *testing.T) {
					ssetest.RunWith(t, kitServer(c.mw, ginsse.Detach()), ssetest.Config{Detached: true})
				})
				return
			}
			for _, m := range []struct {
				name string
				opts []ginsse.Option
			}{{"Attached", nil}, {"Detached", []ginsse.Option{ginsse.Detach()}}} {
				if m.opts != nil && c.attachedOnly {
					continue
				}
				t.Run(m.name, func(t *testing.T) {
					testkit.CheckGoroutines(t)
					var logs syncBuffer
					hub := ssetest.NewHub(t, sse.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
					r := gin.New()
					r.Use(c.mw...)
					r.GET("/events", ginsse.Handler(hub, append([]ginsse.Option{ginsse.Topics("t")}, m.opts...)...))
					var h http.Handler = r
					if c.wrap != nil {
						h = c.wrap(h)
					}
					srv := httptest.NewServer(h)
					t.Cleanup(srv.Close)
					resp, body := testkit.Request(t, "GET", srv.URL+"/events", http.Header{"Accept-Encoding": {"gzip"}})
					if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" ||
						!strings.Contains(body, "cannot stream") {
						t.Errorf("got %d %q (%s), want 500 saying the server cannot stream", resp.StatusCode, body, resp.Header.Get("Content-Type"))
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
