package ginsse_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

	gzip "github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/ginsse"
)

// mount serves the kit's route: the stream handlers h on /events for GET
// and OPTIONS (CORS preflights), behind mw and, when the kit asks for it,
// the Auth middleware; and the publishing route.
func mount(t *testing.T, hub *sse.Hub, route ssetest.Route, h gin.HandlerFunc, mw ...gin.HandlerFunc) string {
	r := gin.New()
	r.Use(mw...)
	chain := []gin.HandlerFunc{h}
	if route.Middleware != nil {
		chain = append([]gin.HandlerFunc{ginsse.Auth(hub, route.Middleware)}, chain...)
	}
	r.Match([]string{http.MethodGet, http.MethodOptions}, "/events", chain...)
	r.POST("/events/publish/:topic", func(c *gin.Context) {
		body, _ := io.ReadAll(c.Request.Body)
		id, err := hub.Publish(c.Request.Context(), c.Param("topic"), sse.Event{Data: body})
		if err != nil {
			c.String(http.StatusBadRequest, err.Error())
			return
		}
		c.String(http.StatusOK, id)
	})
	return serve(t, r) + "/events"
}

// TestConformance runs the conformance kit against a gin router, with the
// kit's options mapped to ginsse options: Topics to TopicsFunc, Auth to
// WithAuth, CORS to WithCORS.
func TestConformance(t *testing.T) {
	ssetest.Run(t, optionsServer())
}

// TestConformanceDetached runs the kit of TestConformance and of
// TestConformanceWithMiddleware again with Detach: gin's writer hijacks,
// so every stream is served on a detached connection.
func TestConformanceDetached(t *testing.T) {
	t.Run("Options", func(t *testing.T) { ssetest.RunWith(t, optionsServer(ginsse.Detach()), ssetest.Config{Detached: true}) })
	t.Run("Middleware", func(t *testing.T) {
		ssetest.RunWith(t, middlewareServer(ginsse.Detach()), ssetest.Config{Detached: true})
	})
}

// optionsServer maps the kit's options to ginsse options, with extra.
func optionsServer(extra ...ginsse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		o := []ginsse.Option{ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) { return opts.Topics(c.Request) })}
		if opts.Auth != nil {
			o = append(o, ginsse.WithAuth(opts.Auth))
		}
		if opts.CORS != nil {
			o = append(o, ginsse.WithCORS(opts.CORS))
		}
		return mount(t, hub, route, ginsse.Handler(hub, append(o, extra...)...))
	}
}

// TestConformanceWithMiddleware runs the kit behind gin.Logger and
// gin.Recovery, with the options passed as base options. TopicsFunc
// insists on finding the principal where the auth middleware left it.
func TestConformanceWithMiddleware(t *testing.T) {
	ssetest.Run(t, middlewareServer())
}

// middlewareServer serves the kit behind gin.Logger and gin.Recovery, with
// extra options.
func middlewareServer(extra ...ginsse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		h := ginsse.Handler(hub, append([]ginsse.Option{
			ginsse.WithHandlerOptions(opts),
			ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) {
				if _, ok := ginsse.Principal(c); route.Middleware != nil && !ok {
					return nil, errors.New("the Auth middleware left no principal")
				}
				return opts.Topics(c.Request)
			})}, extra...)...)
		return mount(t, hub, route, h, gin.LoggerWithConfig(gin.LoggerConfig{Output: io.Discard}), gin.Recovery())
	}
}

// TestConformanceGzipExcluded runs the kit with gin-contrib/gzip in front,
// configured as README.md says: the stream route excluded. (The kit's
// client accepts gzip, so without the exclusion every stream would get 500:
// see TestGzipIsDetected.)
func TestConformanceGzipExcluded(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		return mount(t, hub, route, ginsse.Handler(hub, ginsse.WithHandlerOptions(route.Options)),
			gin.Recovery(), gzip.Gzip(gzip.DefaultCompression, gzip.WithExcludedPaths([]string{"/events"})))
	})
}

// TestConformanceUnwrappingCompressor runs the kit behind a compressor that
// flushes and unwraps: streams are compressed (the kit's client decodes
// them) and keep their write deadlines.
func TestConformanceUnwrappingCompressor(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		return mount(t, hub, route, ginsse.Handler(hub, ginsse.WithHandlerOptions(route.Options)), unwrappingGzip())
	})
}
