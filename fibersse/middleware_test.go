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
	"github.com/ssekit/ssekit/fibersse"
)

// isStream is the Next function the README recommends for middleware that
// reads whole bodies: EventSource asks for text/event-stream.
func isStream(c fiber.Ctx) bool { return c.Get("Accept") == "text/event-stream" }

// TestMiddlewareStreams: through each of these, the head and the opening
// comment arrive at once (Connect returns with nothing published) and every
// event arrives as it is published, while the stream stays open.
func TestMiddlewareStreams(t *testing.T) {
	for _, c := range []struct {
		name  string
		mount func(app *fiber.App, h fiber.Handler, log *syncBuffer)
	}{
		{"logger", func(app *fiber.App, h fiber.Handler, log *syncBuffer) {
			app.Use(logger.New(logger.Config{Stream: log}))
			app.Get("/events", h)
		}},
		{"recover", func(app *fiber.App, h fiber.Handler, _ *syncBuffer) {
			app.Use(recover.New())
			app.Get("/events", h)
		}},
		{"compress skipping streams", func(app *fiber.App, h fiber.Handler, _ *syncBuffer) {
			app.Use(compress.New(compress.Config{Next: isStream}))
			app.Get("/events", h)
		}},
		{"cache", func(app *fiber.App, h fiber.Handler, _ *syncBuffer) {
			// It honours the stream's Cache-Control: no-cache.
			app.Use(cache.New())
			app.Get("/events", h)
		}},
		{"timeout", func(app *fiber.App, h fiber.Handler, _ *syncBuffer) {
			app.Get("/events", timeout.New(h, timeout.Config{Timeout: 50 * time.Millisecond}))
		}},
		{"all of them", func(app *fiber.App, h fiber.Handler, log *syncBuffer) {
			app.Use(recover.New(), logger.New(logger.Config{Stream: log}), compress.New(compress.Config{Next: isStream}), cache.New())
			app.Get("/events", timeout.New(h, timeout.Config{Timeout: 50 * time.Millisecond}))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hub := newHub(t, sse.Options{})
			app := fiber.New()
			log := &syncBuffer{}
			c.mount(app, fibersse.Handler(hub, fibersse.Topics("t")), log)
			st := connect(t, start(t, hub, app)+"/events", "")
			if ct, ce := st.Response.Header.Get("Content-Type"), st.Response.Header.Get("Content-Encoding"); ct != "text/event-stream" || ce != "" {
				t.Errorf("Content-Type %q, Content-Encoding %q", ct, ce)
			}
			time.Sleep(100 * time.Millisecond) // past the timeout middleware's limit
			for _, data := range []string{"one", "two", "three"} {
				id := ssetest.Publish(t, hub, "t", data)
				if ev := ssetest.NextWithin(t, st, 2*time.Second); ev.Data != data || ev.LastEventID != id {
					t.Fatalf("got %+v, want %s", ev, data)
				}
			}
			if strings.Contains(c.name, "logger") || c.name == "all of them" {
				// The logger logs when the handler chain returns: while the
				// stream is still open.
				if l := log.String(); !strings.Contains(l, "200") || !strings.Contains(l, "/events") {
					t.Errorf("logger wrote %q while the stream is open, want its line with 200", l)
				}
			}
		})
	}
}

// TestMiddlewareBuffering: middleware that reads the whole response body
// would wait forever on a stream. The adapter detects it, answers 500 and
// logs what to do; the admitted stream is released.
func TestMiddlewareBuffering(t *testing.T) {
	for _, c := range []struct {
		name string
		mw   fiber.Handler
	}{
		{"compress", compress.New()},
		{"etag", etag.New()},
		{"logger with resBody", logger.New(logger.Config{Format: "${status} ${resBody}\n", Stream: &syncBuffer{}})},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := captureLog(t)
			hub := newHub(t, sse.Options{MaxStreams: 1})
			app := fiber.New()
			h := fibersse.Handler(hub, fibersse.Topics("t"))
			app.Get("/buffered", c.mw, h)
			app.Get("/events", h)
			base := start(t, hub, app)
			resp, body := ssetest.Request(t, "GET", base+"/buffered", http.Header{"Accept": {"text/event-stream"}})
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" ||
				!strings.Contains(body, "cannot stream events") {
				t.Errorf("got %d %q (%s), want 500 with an explanation", resp.StatusCode, body, resp.Header.Get("Content-Type"))
			}
			if l := log.String(); !strings.Contains(l, "read the whole response body") || !strings.Contains(l, "Next") || !strings.Contains(l, "/buffered") {
				t.Errorf("log %q does not say what to do", l)
			}
			// MaxStreams is 1: the refused request gave its place back.
			st := connect(t, base+"/events", "")
			id := ssetest.Publish(t, hub, "t", "x")
			if ev := ssetest.NextWithin(t, st, 2*time.Second); ev.LastEventID != id {
				t.Errorf("got %+v", ev)
			}
		})
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
	if resp, _ := ssetest.Request(t, "GET", base+"/panic", nil); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	connect(t, base+"/events", "")
}
