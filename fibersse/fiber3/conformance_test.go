package fibersse_test

import (
	"net/http"
	"testing"

	"github.com/gofiber/fiber/v3"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	fibersse "github.com/ssekit/ssekit/fibersse/fiber3"
)

var streamMethods = []string{fiber.MethodGet, fiber.MethodOptions}

// TestConformance runs the conformance kit against a Fiber app, with the
// kit's options as base options (WithHandlerOptions).
func TestConformance(t *testing.T) {
	ssetest.Run(t, kitServer(false))
}

// TestConformanceOptions runs the kit again with each option on its own.
func TestConformanceOptions(t *testing.T) {
	ssetest.Run(t, optionsServer())
}

// TestConformanceDetached runs both kits again with detached streams, on
// an app that keeps hijacked connections: HandlerOptions.Detach through
// WithHandlerOptions, and the Detach option.
func TestConformanceDetached(t *testing.T) {
	t.Run("HandlerOptions", func(t *testing.T) { ssetest.RunWith(t, kitServer(true), ssetest.Config{Detached: true}) })
	t.Run("Options", func(t *testing.T) {
		ssetest.RunWith(t, optionsServer(fibersse.Detach()), ssetest.Config{Detached: true})
	})
}

// newApp returns a Fiber app; keep sets KeepHijackedConns, as Detach needs.
func newApp(keep bool) *fiber.App {
	app := fiber.New()
	app.Server().KeepHijackedConns = keep
	return app
}

func kitServer(detach bool) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		opts.Detach = detach
		return mount(t, hub, route, newApp(detach), fibersse.Handler(hub, fibersse.WithHandlerOptions(opts)))
	}
}

func optionsServer(extra ...fibersse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		o := []fibersse.Option{fibersse.TopicsFunc(func(c fiber.Ctx) ([]string, error) {
			r, err := http.NewRequest(c.Method(), string(c.Request().RequestURI()), nil)
			if err != nil {
				return nil, err
			}
			return opts.Topics(r)
		})}
		if opts.Auth != nil {
			o = append(o, fibersse.WithAuth(opts.Auth))
		}
		if opts.CORS != nil {
			o = append(o, fibersse.WithCORS(opts.CORS))
		}
		return mount(t, hub, route, newApp(len(extra) > 0), fibersse.Handler(hub, append(o, extra...)...))
	}
}

// mount serves the kit's route on app: h on /events for GET and OPTIONS,
// behind mw and the Auth middleware when the kit asks for it; and the publishing
// route, which publishes Fiber's own body and parameter buffers, as an
// application would.
func mount(t *testing.T, hub *sse.Hub, route ssetest.Route, app *fiber.App, h fiber.Handler, mw ...fiber.Handler) string {
	var chain []any
	for _, m := range mw {
		chain = append(chain, m)
	}
	if route.Middleware != nil {
		chain = append(chain, fibersse.Auth(hub, route.Middleware))
	}
	chain = append(chain, h)
	app.Add(streamMethods, "/events", chain[0], chain[1:]...)
	app.Post("/events/publish/:topic", func(c fiber.Ctx) error {
		id, err := hub.Publish(c.Context(), c.Params("topic"), sse.Event{Data: c.Body()})
		if err != nil {
			return c.Status(http.StatusBadRequest).SendString(err.Error())
		}
		return c.SendString(id)
	})
	if route.Stream != nil {
		app.Add([]string{fiber.MethodGet, fiber.MethodPost}, "/events/stream", func(c fiber.Ctx) error {
			return fibersse.Stream(hub, c, route.Stream)
		})
	}
	return start(t, hub, app) + "/events"
}
