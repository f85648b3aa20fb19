package fibersse_test

import (
	"testing"

	"github.com/gofiber/fiber/v3"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/fibersse"
)

var streamMethods = []string{fiber.MethodGet, fiber.MethodOptions}

// TestConformance runs the conformance kit against a Fiber app, with
// authentication inside the stream handler (WithAuth).
func TestConformance(t *testing.T) {
	ssetest.Run(t, optionsServer(false))
}

// TestConformanceAuthMiddleware runs the kit again with the Auth
// middleware in front of the handler wherever the kit asks for auth.
func TestConformanceAuthMiddleware(t *testing.T) {
	ssetest.Run(t, authMiddlewareServer())
}

// TestConformanceDetached runs both kits again with detached streams, on
// an app that keeps hijacked connections: HandlerOptions.Detach through
// WithHandlerOptions, and the Detach option.
func TestConformanceDetached(t *testing.T) {
	t.Run("HandlerOptions", func(t *testing.T) { ssetest.RunWith(t, optionsServer(true), ssetest.Config{Detached: true}) })
	t.Run("AuthMiddleware", func(t *testing.T) {
		ssetest.RunWith(t, authMiddlewareServer(fibersse.Detach()), ssetest.Config{Detached: true})
	})
}

// newApp returns a Fiber app; keep sets KeepHijackedConns, as Detach needs.
func newApp(keep bool) *fiber.App {
	app := fiber.New()
	app.Server().KeepHijackedConns = keep
	return app
}

func optionsServer(detach bool) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		opts.Detach = detach
		app := newApp(detach)
		app.Add(streamMethods, "/events", fibersse.Handler(hub, fibersse.WithHandlerOptions(opts)))
		return start(t, hub, app) + "/events"
	}
}

func authMiddlewareServer(extra ...fibersse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		app := newApp(len(extra) > 0)
		h := []any{fibersse.Handler(hub, append([]fibersse.Option{fibersse.WithHandlerOptions(opts)}, extra...)...)}
		if opts.Auth != nil {
			h = append([]any{fibersse.Auth(hub, opts.Auth)}, h...)
		}
		app.Add(streamMethods, "/events", h[0], h[1:]...)
		return start(t, hub, app) + "/events"
	}
}
