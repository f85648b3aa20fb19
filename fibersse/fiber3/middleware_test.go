package fibersse_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/cache"
	"github.com/gofiber/fiber/v3/middleware/compress"
	"github.com/gofiber/fiber/v3/middleware/etag"
	"github.com/gofiber/fiber/v3/middleware/logger"
	"github.com/gofiber/fiber/v3/middleware/recover"
	"github.com/gofiber/fiber/v3/middleware/timeout"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	fibersse "github.com/ssekit/ssekit/fibersse/fiber3"
	"github.com/ssekit/ssekit/internal/testkit"
)

// TestMiddlewareTable: Fiber v3's own middleware in front of a stream
// route. Each either works (the head and the opening comment arrive at
// once, every event as it is published, while the stream stays open, and
// the whole conformance kit passes behind it) or is refused: 500 with an
// explanation, and a log line that says what to do, with the stream's
// place under the caps given back. Detached streams get the same verdict:
// a middleware that reads the whole body of the hand-over response (which
// is never sent) is refused the same way, rather than act on an empty
// body (cache would serve it to the next clients).
func TestMiddlewareTable(t *testing.T) {
	for _, c := range []struct {
		name  string
		mw    func(log *syncBuffer) []fiber.Handler
		wrap  func(fiber.Handler) fiber.Handler // wraps the stream handler
		works bool
		gzip  bool // the stream arrives compressed
	}{
		{"logger", func(log *syncBuffer) []fiber.Handler { return []fiber.Handler{logger.New(logger.Config{Stream: log})} }, nil, true, false},
		{"recover", func(*syncBuffer) []fiber.Handler { return []fiber.Handler{recover.New()} }, nil, true, false},
		// Fiber v3's compress reads the whole body.
		{"compress", func(*syncBuffer) []fiber.Handler { return []fiber.Handler{compress.New()} }, nil, false, false},
		{"compress skipping streams", func(*syncBuffer) []fiber.Handler {
			return []fiber.Handler{compress.New(compress.Config{Next: isStreamRoute})}
		}, nil, true, false},
		{"timeout", nil, func(h fiber.Handler) fiber.Handler {
			return timeout.New(h, timeout.Config{Timeout: 50 * time.Millisecond})
		}, true, false},
		{"etag", func(*syncBuffer) []fiber.Handler { return []fiber.Handler{etag.New()} }, nil, false, false},
		{"etag skipping streams", func(*syncBuffer) []fiber.Handler { return []fiber.Handler{etag.New(etag.Config{Next: isStreamRoute})} }, nil, true, false},
		// Fiber v3's cache honours the stream's Cache-Control: no-cache.
		{"cache", func(*syncBuffer) []fiber.Handler { return []fiber.Handler{cache.New()} }, nil, true, false},
		{"cache skipping streams", func(*syncBuffer) []fiber.Handler {
			return []fiber.Handler{cache.New(cache.Config{Next: isStreamRoute})}
		}, nil, true, false},
		{"logger with resBody", func(log *syncBuffer) []fiber.Handler {
			return []fiber.Handler{logger.New(logger.Config{Format: "${status} ${resBody}\n", Stream: log})}
		}, nil, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			mw := func(log *syncBuffer) []fiber.Handler {
				if c.mw == nil {
					return nil
				}
				return c.mw(log)
			}
			wrap := func(h fiber.Handler) fiber.Handler {
				if c.wrap == nil {
					return h
				}
				return c.wrap(h)
			}
			if c.works {
				t.Run("Kit", func(t *testing.T) { ssetest.Run(t, middlewareKitServer(mw(&syncBuffer{}), wrap, false)) })
				t.Run("KitDetached", func(t *testing.T) {
					ssetest.RunWith(t, middlewareKitServer(mw(&syncBuffer{}), wrap, true), ssetest.Config{Detached: true})
				})
			} else {
				t.Run("RefusedDetached", func(t *testing.T) {
					logs := captureLog(t)
					hub := newHub(t, sse.Options{MaxStreams: 1})
					app := newApp(true)
					h := fibersse.Handler(hub, fibersse.Topics("t"), fibersse.Detach())
					getBehind(app, "/events", mw(&syncBuffer{}), wrap(h))
					app.Get("/plain", h)
					checkRefused(t, hub, start(t, hub, app), logs)
				})
			}
			logs := captureLog(t)
			hub := newHub(t, sse.Options{MaxStreams: 1})
			app := fiber.New()
			log := &syncBuffer{}
			h := fibersse.Handler(hub, fibersse.Topics("t"))
			getBehind(app, "/events", mw(log), wrap(h))
			app.Get("/plain", h)
			base := start(t, hub, app)
			if !c.works {
				checkRefused(t, hub, base, logs)
				return
			}
			st := connect(t, base+"/events", "")
			// Go's client decodes gzip itself, and then says so.
			compressed := st.Response.Header.Get("Content-Encoding") != "" || st.Response.Uncompressed
			if ct := st.Response.Header.Get("Content-Type"); ct != "text/event-stream" || compressed != c.gzip {
				t.Errorf("Content-Type %q, compressed %v; want %v", ct, compressed, c.gzip)
			}
			time.Sleep(100 * time.Millisecond) // past the timeout middleware's limit
			for _, data := range []string{"one", "two", "three"} {
				id := testkit.Publish(t, hub, "t", data)
				if ev := ssetest.NextWithin(t, st, 2*time.Second); ev.Data != data || ev.LastEventID != id {
					t.Fatalf("got %+v, want %s", ev, data)
				}
			}
			if c.name == "logger" {
				// The logger logs when the handler chain returns: while the
				// stream is still open.
				if l := log.String(); !strings.Contains(l, "200") || !strings.Contains(l, "/events") {
					t.Errorf("logger wrote %q while the stream is open, want its line with 200", l)
				}
			}
		})
	}
}

// isStreamRoute is the Next function that excludes the stream route from
// a middleware, by its path (the README's other choice, the Accept header,
// is what EventSource sends, but not every request of the kit).
func isStreamRoute(c fiber.Ctx) bool { return c.Path() == "/events" }

// getBehind mounts h behind mw on GET path.
func getBehind(app *fiber.App, path string, mw []fiber.Handler, h fiber.Handler) {
	chain := make([]any, 0, len(mw)+1)
	for _, m := range mw {
		chain = append(chain, m)
	}
	chain = append(chain, h)
	app.Get(path, chain[0], chain[1:]...)
}

// middlewareKitServer serves the conformance kit's stream route behind the
// middleware mw, with the stream handler wrapped by wrap; detach serves
// it detached.
func middlewareKitServer(mw []fiber.Handler, wrap func(fiber.Handler) fiber.Handler, detach bool) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		opts.Detach = detach
		return mount(t, hub, route, newApp(detach), wrap(fibersse.Handler(hub, fibersse.WithHandlerOptions(opts))), mw...)
	}
}

// checkRefused checks that the stream route of base answers 500 with an
// explanation and logs what to do, and that the refused request gave its
// place under MaxStreams 1 back.
func checkRefused(t *testing.T, hub *sse.Hub, base string, logs *syncBuffer) {
	t.Helper()
	resp, body := testkit.Request(t, "GET", base+"/events", http.Header{"Accept": {"text/event-stream"}})
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" ||
		!strings.Contains(body, "cannot stream events") {
		t.Errorf("got %d %q (%s), want 500 with an explanation", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if l := logs.String(); !strings.Contains(l, "read the whole response body") || !strings.Contains(l, "Next") || !strings.Contains(l, "/events") {
		t.Errorf("log %q does not say what to do", l)
	}
	st := connect(t, base+"/plain", "")
	id := testkit.Publish(t, hub, "t", "x")
	if ev := ssetest.NextWithin(t, st, 2*time.Second); ev.LastEventID != id {
		t.Errorf("got %+v", ev)
	}
}

// TestRecoverPanickingTopics: a TopicsFunc that panics is turned into a 500
// by the recover middleware, and no stream is left admitted.
func TestRecoverPanickingTopics(t *testing.T) {
	hub := newHub(t, sse.Options{MaxStreams: 1})
	app := fiber.New()
	app.Use(recover.New())
	app.Get("/panic", fibersse.Handler(hub, fibersse.TopicsFunc(func(fiber.Ctx) ([]string, error) { panic("boom") })))
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("t")))
	base := start(t, hub, app)
	if resp, _ := testkit.Request(t, "GET", base+"/panic", nil); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	connect(t, base+"/events", "")
}
