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
// own with the Auth middleware, and behind Echo's usual middleware.
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
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		opts.Detach = detach
		e := newEcho()
		e.Match(getAndOptions, "/events", echosse.Handler(hub, echosse.WithHandlerOptions(opts)))
		return serve(t, e) + "/events"
	}
}

func optionsServer(extra ...echosse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		e := newEcho()
		var mw []echo.MiddlewareFunc
		if opts.Auth != nil {
			mw = append(mw, echosse.Auth(hub, opts.Auth))
		}
		e.Match(getAndOptions, "/events", echosse.Handler(hub, append([]echosse.Option{
			echosse.TopicsFunc(func(c *echo.Context) ([]string, error) { return opts.Topics(c.Request()) }),
			echosse.WithAuth(opts.Auth),
			echosse.WithCORS(opts.CORS),
		}, extra...)...), mw...)
		return serve(t, e) + "/events"
	}
}

func middlewareServer(extra ...echosse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		e := newEcho()
		e.Use(middleware.RequestLogger(), middleware.Recover(),
			middleware.GzipWithConfig(middleware.GzipConfig{MinLength: 1024}))
		e.Match(getAndOptions, "/events", echosse.Handler(hub, append([]echosse.Option{echosse.WithHandlerOptions(opts)}, extra...)...))
		return serve(t, e) + "/events"
	}
}
