package fibersse_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/compress"
	"github.com/gofiber/fiber/v3/middleware/logger"
	"github.com/gofiber/fiber/v3/middleware/recover"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	fibersse "github.com/ssekit/ssekit/fibersse/fiber3"
	"github.com/ssekit/ssekit/internal/testkit"
)

// listen serves app on a 127.0.0.1 listener, and returns its base URL and
// a channel that gets app.Listener's result.
func listen(t *testing.T, app *fiber.App) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	t.Cleanup(func() { _ = ln.Close() })
	return "http://" + ln.Addr().String(), served
}

// TestDetachedStreams: behind logger, recover and compress (which reads
// whole bodies, so it skips the stream route, as it must attached), every
// stream is handed over to the hub, and neither a fasthttp goroutine nor
// one of the adapter's stays with it. The logger logs each request at the
// hand-over.
func TestDetachedStreams(t *testing.T) {
	hub := newHub(t, sse.Options{})
	var logs syncBuffer
	app := newApp(true)
	app.Use(logger.New(logger.Config{Stream: &logs, Format: "${status} ${path}\n"}), recover.New(),
		compress.New(compress.Config{Next: isStreamRoute}))
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t"), fibersse.Detach()))
	url := start(t, hub, app) + "/events"

	// Warm up: the hub's workers and poller start with the first stream.
	first := connect(t, url, "")
	testkit.Eventually(t, "the first stream to be detached", func() bool { return hub.Stats().Detached == 1 })
	before := runtime.NumGoroutine()
	const n = 50
	sts := []*ssetest.Stream{first}
	for range n - 1 {
		sts = append(sts, connect(t, url, ""))
	}
	testkit.Eventually(t, "every stream to be detached", func() bool { return hub.Stats().Detached == n })
	// The client's goroutines: one per connection (its read loop) and a
	// write loop; attached, the server would add two per stream.
	if grew := runtime.NumGoroutine() - before; grew > 2*(n-1)+8 {
		t.Errorf("%d streams started %d goroutines", n-1, grew)
	}
	if ce := sts[0].Response.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding %q on a detached stream", ce)
	}
	testkit.Eventually(t, "the logger's lines", func() bool { return strings.Count(logs.String(), "200 /events") == n })
	for _, data := range []string{"one", strings.Repeat("x", 100_000)} {
		id := testkit.Publish(t, hub, "t", data)
		for i, st := range sts {
			if ev := ssetest.NextWithin(t, st, 10*time.Second); ev.LastEventID != id || ev.Data != data {
				t.Fatalf("stream %d: got %q with %d bytes, want %s", i, ev.LastEventID, len(ev.Data), id)
			}
		}
	}
	for _, st := range sts[:n/2] {
		st.Close()
	}
	testkit.Eventually(t, "the closed streams to end", func() bool { s := hub.Stats(); return s.Streams == n-n/2 && s.Detached == n-n/2 })
}

// TestDetachedHeaders: the detached stream's head carries what middleware
// set and the hub's CORS headers, as an attached one does.
func TestDetachedHeaders(t *testing.T) {
	hub := newHub(t, sse.Options{})
	app := newApp(true)
	app.Use(func(c fiber.Ctx) error {
		c.Set("X-Request-Id", "abc")
		return c.Next()
	})
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t"), fibersse.Detach(),
		fibersse.WithCORS(&sse.CORS{AllowedOrigins: []string{"https://app.example"}})))
	url := start(t, hub, app) + "/events"
	st, err := tryConnect(t, &http.Client{Transport: originTransport("https://app.example")}, url, "")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the stream to be detached", func() bool { return hub.Stats().Detached == 1 })
	h := st.Response.Header
	if h.Get("X-Request-Id") != "abc" || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" ||
		len(st.Response.TransferEncoding) != 1 || st.Response.TransferEncoding[0] != "chunked" || !st.Response.Close {
		t.Errorf("head: %v, transfer encoding %v, close %v", h, st.Response.TransferEncoding, st.Response.Close)
	}
}

type originTransport string

func (o originTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Origin", string(o))
	return http.DefaultTransport.RoundTrip(r)
}

// TestDetachedShutdown: hub.Shutdown ends detached streams with a retry
// hint, and app.ShutdownWithTimeout, which no longer sees their
// connections, returns at once, in the documented order and in the other.
// Shut down first, the app leaves detached streams open: hub.Shutdown ends
// them.
func TestDetachedShutdown(t *testing.T) {
	for _, hubFirst := range []bool{true, false} {
		name := "HubFirst"
		if !hubFirst {
			name = "AppFirst"
		}
		t.Run(name, func(t *testing.T) {
			hub, err := sse.NewHub(sse.Options{CloseRetry: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			app := newApp(true)
			app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t"), fibersse.Detach()))
			base, served := listen(t, app)
			var sts []*ssetest.Stream
			for range 3 {
				sts = append(sts, connect(t, base+"/events", ""))
			}
			testkit.Eventually(t, "every stream to be detached", func() bool { return hub.Stats().Detached == 3 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			shutApp := func() {
				http.DefaultClient.CloseIdleConnections()
				start := time.Now()
				if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
					t.Fatalf("app ShutdownWithTimeout: %v", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("app ShutdownWithTimeout took %v", d)
				}
				select {
				case <-served:
				case <-time.After(5 * time.Second):
					t.Fatal("app.Listener did not return")
				}
			}
			if !hubFirst {
				shutApp()
				id := testkit.Publish(t, hub, "t", "after the app")
				for i, st := range sts {
					if ev := ssetest.NextWithin(t, st, 5*time.Second); ev.LastEventID != id {
						t.Fatalf("stream %d: got %+v", i, ev)
					}
				}
			}
			if err := hub.Shutdown(ctx); err != nil {
				t.Fatalf("hub Shutdown: %v", err)
			}
			if hubFirst {
				shutApp()
			}
			for i, st := range sts {
				p := st.Parser()
				if _, err := p.Next(); !errors.Is(err, io.EOF) {
					t.Errorf("stream %d: %v, want a clean end", i, err)
				}
				if d, ok := p.Retry(); !ok || d < 50*time.Millisecond {
					t.Errorf("stream %d: retry hint %v (%v)", i, d, ok)
				}
			}
			if s := hub.Stats(); s.Streams != 0 {
				t.Errorf("Stats %+v after Shutdown", s)
			}
		})
	}
}

// TestDetachNeedsKeepHijackedConns: without KeepHijackedConns, fasthttp
// would close the connection as soon as the hub has it; streams are served
// attached instead, and the first one logs why.
func TestDetachNeedsKeepHijackedConns(t *testing.T) {
	logs := captureLog(t)
	hub := newHub(t, sse.Options{})
	app := newApp(false)
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t"), fibersse.Detach()))
	url := start(t, hub, app) + "/events"
	sts := []*ssetest.Stream{connect(t, url, ""), connect(t, url, "")}
	testkit.Eventually(t, "the streams to open", func() bool { return hub.Stats().Streams == 2 })
	if s := hub.Stats(); s.Detached != 0 {
		t.Fatalf("Stats %+v, want attached streams", s)
	}
	id := testkit.Publish(t, hub, "t", "x")
	for i, st := range sts {
		if ev := ssetest.NextWithin(t, st, 5*time.Second); ev.LastEventID != id {
			t.Fatalf("stream %d: got %+v", i, ev)
		}
	}
	if l := logs.String(); strings.Count(l, "KeepHijackedConns") != 1 {
		t.Errorf("log %q, want one warning naming KeepHijackedConns", l)
	}
}

// TestDetachTLSStaysAttached: over TLS the hub cannot write to the socket
// itself, so the stream is served attached.
func TestDetachTLSStaysAttached(t *testing.T) {
	donor := httptest.NewUnstartedServer(nil)
	donor.StartTLS()
	cert, client := donor.TLS.Certificates, donor.Client()
	donor.Close()

	hub := newHub(t, sse.Options{})
	app := newApp(true)
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t"), fibersse.Detach()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = app.Listener(tls.NewListener(ln, &tls.Config{Certificates: cert}), fiber.ListenConfig{DisableStartupMessage: true})
	}()
	t.Cleanup(func() {
		_ = hub.Shutdown(t.Context())
		client.CloseIdleConnections()
		_ = app.ShutdownWithTimeout(5 * time.Second)
	})
	st, err := tryConnect(t, client, "https://"+ln.Addr().String()+"/events", "")
	if err != nil {
		t.Fatal(err)
	}
	id := testkit.Publish(t, hub, "t", "secret")
	if ev := ssetest.NextWithin(t, st, 5*time.Second); ev.LastEventID != id {
		t.Fatalf("got %+v", ev)
	}
	if s := hub.Stats(); s.Streams != 1 || s.Detached != 0 {
		t.Fatalf("Stats %+v, want one attached stream", s)
	}
}
