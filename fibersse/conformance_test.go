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
	ssetest.Run(t, func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		app := fiber.New()
		app.Add(streamMethods, "/events", fibersse.Handler(hub, fibersse.WithHandlerOptions(opts)))
		return start(t, hub, app) + "/events"
	})
}

// TestConformanceAuthMiddleware runs the kit again with the Auth
// middleware in front of the handler wherever the kit asks for auth.
func TestConformanceAuthMiddleware(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		app := fiber.New()
		h := []any{fibersse.Handler(hub, fibersse.WithHandlerOptions(opts))}
		if opts.Auth != nil {
			h = append([]any{fibersse.Auth(hub, opts.Auth)}, h...)
		}
		app.Add(streamMethods, "/events", h[0], h[1:]...)
		return start(t, hub, app) + "/events"
	})
}
