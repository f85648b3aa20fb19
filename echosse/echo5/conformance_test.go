package echosse_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	echosse "github.com/ssekit/ssekit/echosse/echo5"
	"github.com/ssekit/ssekit/internal/testkit"
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

// TestConformance runs the conformance kit against Echo routes, with the
// kit's options mapped to the adapter's own options, and passed as base
// options (WithHandlerOptions).
func TestConformance(t *testing.T) {
	testkit.CheckGoroutines(t)
	t.Run("Options", func(t *testing.T) { ssetest.Run(t, kitServer(nil)) })
	t.Run("BaseOptions", func(t *testing.T) { ssetest.Run(t, baseOptionsServer(nil)) })
}

// TestConformanceDetached runs the kits of TestConformance with Detach:
// Echo's Response hijacks, so every stream is served on a detached
// connection.
func TestConformanceDetached(t *testing.T) {
	testkit.CheckGoroutines(t)
	detached := ssetest.Config{Detached: true}
	t.Run("Options", func(t *testing.T) { ssetest.RunWith(t, kitServer(nil, echosse.Detach()), detached) })
	t.Run("BaseOptions", func(t *testing.T) { ssetest.RunWith(t, baseOptionsServer(nil, echosse.Detach()), detached) })
}

// kitServer maps the kit's route to the adapter's own options (Topics to
// TopicsFunc, Auth to WithAuth, CORS to WithCORS, Middleware to Auth),
// with extra options, behind mw.
func kitServer(mw []echo.MiddlewareFunc, extra ...echosse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		var o []echosse.Option
		if opts.Topics != nil {
			o = append(o, echosse.TopicsFunc(func(c *echo.Context) ([]string, error) {
				if _, ok := echosse.Principal(c); route.Middleware != nil && !ok {
					return nil, errors.New("the Auth middleware left no principal")
				}
				return opts.Topics(c.Request())
			}))
		}
		if opts.Auth != nil {
			o = append(o, echosse.WithAuth(opts.Auth))
		}
		if opts.CORS != nil {
			o = append(o, echosse.WithCORS(opts.CORS))
		}
		return mount(t, hub, route, echosse.Handler(hub, append(o, extra...)...), mw...)
	}
}

// baseOptionsServer passes the kit's options as base options, with extra
// options, behind mw.
func baseOptionsServer(mw []echo.MiddlewareFunc, extra ...echosse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		o := append([]echosse.Option{echosse.WithHandlerOptions(route.Options)}, extra...)
		return mount(t, hub, route, echosse.Handler(hub, o...), mw...)
	}
}

// mount serves the kit's route: h on /events for GET and OPTIONS, behind
// mw and, when the kit asks for it, the Auth middleware; and the
// publishing route, which reads the topic with c.Param and the body from
// c.Request(); and the per-request stream route.
func mount(t *testing.T, hub *sse.Hub, route ssetest.Route, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) string {
	e := newEcho()
	e.Use(mw...)
	var routeMW []echo.MiddlewareFunc
	if route.Middleware != nil {
		routeMW = append(routeMW, echosse.Auth(hub, route.Middleware))
	}
	e.Match(getAndOptions, "/events", h, routeMW...)
	if route.Publish {
		e.POST("/events/publish/:topic", func(c *echo.Context) error {
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return c.String(http.StatusBadRequest, err.Error())
			}
			id, err := hub.Publish(c.Request().Context(), c.Param("topic"), sse.Event{Data: body})
			if err != nil {
				return c.String(http.StatusBadRequest, err.Error())
			}
			return c.String(http.StatusOK, id)
		})
	}
	if route.Stream != nil {
		stream := func(c *echo.Context) error { return echosse.Stream(hub, c, route.Stream) }
		e.GET("/events/stream", stream)
		e.POST("/events/stream", stream)
	}
	return serve(t, e) + "/events"
}
