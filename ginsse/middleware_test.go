package ginsse_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	gingzip "github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/ginsse"
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
		id := ssetest.Publish(t, hub, "t", fmt.Sprint(i))
		if ev := next(t, st); ev.LastEventID != id || ev.Data != fmt.Sprint(i) {
			t.Fatalf("got %+v, want event %d with id %s", ev, i, id)
		}
		if n := hub.Stats().Streams; n != 1 || strings.Contains(logs.String(), "/events") {
			t.Fatalf("after event %d: %d streams, log %q: the event came after the handler ended", i, n, logs.String())
		}
	}
	st.Close()
	ssetest.Eventually(t, "the stream to be released", func() bool { return hub.Stats().Streams == 0 })
	ssetest.Eventually(t, "Logger's line", func() bool { return strings.Contains(logs.String(), "/events") })
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
	if resp, _ := ssetest.Request(t, "GET", url+"?boom=1", nil); resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("panic: status %d, want 500", resp.StatusCode)
	}
	st := ssetest.Open(t, url, "", nil)
	id := ssetest.Publish(t, hub, "t", "x")
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

	resp, body := ssetest.Request(t, "GET", base+"/events", http.Header{"Accept-Encoding": {"gzip"}})
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
		id := ssetest.Publish(t, hub, "t", c.name)
		if ev := next(t, st); ev.LastEventID != id || ev.Data != c.name {
			t.Errorf("%s: got %+v", c.name, ev)
		}
		st.Close()
		ssetest.Eventually(t, "the stream to be released", func() bool { return hub.Stats().Streams == 0 })
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
		id := ssetest.Publish(t, hub, "t", fmt.Sprint(i))
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
	resp, body := ssetest.Request(t, "GET", url, nil)
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
	ssetest.Eventually(t, "Logger's line", func() bool { return strings.Contains(logs.String(), "/events") })
	if l := logs.String(); strings.Contains(l, ticket) || !strings.Contains(l, "ticket=REDACTED") {
		t.Errorf("log %q", l)
	}
}
