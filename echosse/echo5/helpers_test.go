package echosse_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// logs is a concurrency-safe buffer for log output.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// loggedEcho returns an Echo whose logger writes to the returned logs.
func loggedEcho() (*echo.Echo, *logs) {
	l := &logs{}
	e := echo.New()
	e.Logger = slog.New(slog.NewTextHandler(l, nil))
	return e, l
}

// serveLogged starts e on a test server whose own error log (where
// net/http reports handler panics) goes to the returned logs.
func serveLogged(t *testing.T, h http.Handler) (string, *logs) {
	t.Helper()
	l := &logs{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(l, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, l
}

// open sends GET url with hdr and returns the response; the request ends
// when t does, or after 20 s.
func open(t *testing.T, url string, hdr http.Header) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// get sends GET url with hdr and returns the status and the body.
func get(t *testing.T, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	resp := open(t, url, hdr)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp, string(body)
}

// connect opens an event stream at url, with Last-Event-ID lastID when
// not empty; it is closed when t ends.
func connect(t *testing.T, url, lastID string, hdr http.Header) *ssetest.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	client := http.DefaultClient
	if hdr != nil {
		client = &http.Client{Transport: headerTransport(hdr)}
	}
	st, err := ssetest.Connect(ctx, client, url, lastID)
	if err != nil {
		t.Fatalf("Connect %s: %v", url, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type headerTransport http.Header

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header[k] = v
	}
	return http.DefaultTransport.RoundTrip(r)
}

// next returns the next event of p, failing t if none arrives within 5 s.
// The stream must not end.
func next(t *testing.T, p *ssetest.Parser) ssetest.Event {
	t.Helper()
	type result struct {
		ev  ssetest.Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := p.Next()
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		panic("unreachable")
	}
}

// streams returns a condition: hub has n open streams.
func streams(hub *sse.Hub, n int) func() bool {
	return func() bool { return hub.Stats().Streams == n }
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
