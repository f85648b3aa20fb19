package echosse_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/echosse"
)

// serve starts e on a test server, closed when t ends, and returns its URL.
func serve(t *testing.T, e *echo.Echo) string {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newEcho returns an Echo that logs nowhere.
func newEcho() *echo.Echo {
	e := echo.New()
	e.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return e
}

// getAndOptions registers h for GET and OPTIONS (CORS preflights).
var getAndOptions = []string{http.MethodGet, http.MethodOptions}

// TestConformance runs the conformance kit against the adapter: all
// options in sse.HandlerOptions (WithHandlerOptions), each option on its
// own, and behind Echo's usual middleware.
func TestConformance(t *testing.T) {
	t.Run("HandlerOptions", func(t *testing.T) { ssetest.Run(t, handlerOptionsServer(false)) })
	t.Run("OptionsAndAuthMiddleware", func(t *testing.T) { ssetest.Run(t, optionsServer()) })
	// Every check again through RequestLogger, Recover and Gzip. The kit's
	// client asks for gzip and decodes it on the fly, as browsers do.
	t.Run("Middleware", func(t *testing.T) { ssetest.Run(t, middlewareServer()) })
}

// TestConformanceDetached runs the same kits with detached streams:
// HandlerOptions.Detach through WithHandlerOptions, and the Detach option.
// Echo's Response hijacks, so every stream is detached; behind Gzip it is
// then sent uncompressed.
func TestConformanceDetached(t *testing.T) {
	t.Run("HandlerOptions", func(t *testing.T) { ssetest.RunWith(t, handlerOptionsServer(true), ssetest.Config{Detached: true}) })
	t.Run("OptionsAndAuthMiddleware", func(t *testing.T) {
		ssetest.RunWith(t, optionsServer(echosse.Detach()), ssetest.Config{Detached: true})
	})
	t.Run("Middleware", func(t *testing.T) {
		ssetest.RunWith(t, middlewareServer(echosse.Detach()), ssetest.Config{Detached: true})
	})
}

func handlerOptionsServer(detach bool) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		opts.Detach = detach
		return mount(t, hub, route, echosse.Handler(hub, echosse.WithHandlerOptions(opts)))
	}
}

func optionsServer(extra ...echosse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		o := []echosse.Option{echosse.TopicsFunc(func(c *echo.Context) ([]string, error) { return opts.Topics(c.Request()) })}
		if opts.Auth != nil {
			o = append(o, echosse.WithAuth(opts.Auth))
		}
		if opts.CORS != nil {
			o = append(o, echosse.WithCORS(opts.CORS))
		}
		return mount(t, hub, route, echosse.Handler(hub, append(o, extra...)...))
	}
}

func middlewareServer(extra ...echosse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		h := echosse.Handler(hub, append([]echosse.Option{echosse.WithHandlerOptions(route.Options)}, extra...)...)
		return mount(t, hub, route, h, middleware.RequestLogger(), middleware.Recover(),
			middleware.GzipWithConfig(middleware.GzipConfig{MinLength: 1024}))
	}
}

// mount serves the kit's route: h on /events for GET and OPTIONS, behind
// mw and, when the kit asks for it, the Auth middleware; and the
// publishing route.
func mount(t *testing.T, hub *sse.Hub, route ssetest.Route, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) string {
	e := newEcho()
	e.Use(mw...)
	var routeMW []echo.MiddlewareFunc
	if route.Middleware != nil {
		routeMW = append(routeMW, echosse.Auth(hub, route.Middleware))
	}
	e.Match(getAndOptions, "/events", h, routeMW...)
	e.POST("/events/publish/:topic", func(c *echo.Context) error {
		body, _ := io.ReadAll(c.Request().Body)
		id, err := hub.Publish(c.Request().Context(), c.Param("topic"), sse.Event{Data: body})
		if err != nil {
			return c.String(http.StatusBadRequest, err.Error())
		}
		return c.String(http.StatusOK, id)
	})
	return serve(t, e) + "/events"
}
