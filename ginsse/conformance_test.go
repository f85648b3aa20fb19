package ginsse_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/ginsse"
	"github.com/ssekit/ssekit/internal/testkit"
)

// mount serves the kit's route: the stream handler h on /events for GET
// and OPTIONS (CORS preflights), behind mw and, when the kit asks for it,
// the Auth middleware; the publishing route, which reads the topic and the
// body with gin's own accessors; and the per-request stream route.
func mount(t *testing.T, hub *sse.Hub, route ssetest.Route, h gin.HandlerFunc, mw ...gin.HandlerFunc) string {
	r := gin.New()
	r.Use(mw...)
	chain := []gin.HandlerFunc{h}
	if route.Middleware != nil {
		chain = append([]gin.HandlerFunc{ginsse.Auth(hub, route.Middleware)}, chain...)
	}
	r.Match([]string{http.MethodGet, http.MethodOptions}, "/events", chain...)
	if route.Publish {
		r.POST("/events/publish/:topic", func(c *gin.Context) {
			body, err := c.GetRawData()
			if err != nil {
				c.String(http.StatusBadRequest, err.Error())
				return
			}
			id, err := hub.Publish(c.Request.Context(), c.Param("topic"), sse.Event{Data: body})
			if err != nil {
				c.String(http.StatusBadRequest, err.Error())
				return
			}
			c.String(http.StatusOK, id)
		})
	}
	if route.Stream != nil {
		stream := func(c *gin.Context) { _ = ginsse.Stream(hub, c, route.Stream) }
		r.GET("/events/stream", stream)
		r.POST("/events/stream", stream)
	}
	return serve(t, r) + "/events"
}

// kitServer maps the kit's route to ginsse's own options (Topics to
// TopicsFunc, Auth to WithAuth, CORS to WithCORS, Middleware to Auth),
// with extra options, behind mw.
func kitServer(mw []gin.HandlerFunc, extra ...ginsse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		var o []ginsse.Option
		if opts.Topics != nil {
			o = append(o, ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) {
				if _, ok := ginsse.Principal(c); route.Middleware != nil && !ok {
					return nil, errors.New("the Auth middleware left no principal")
				}
				return opts.Topics(c.Request)
			}))
		}
		if opts.Auth != nil {
			o = append(o, ginsse.WithAuth(opts.Auth))
		}
		if opts.CORS != nil {
			o = append(o, ginsse.WithCORS(opts.CORS))
		}
		return mount(t, hub, route, ginsse.Handler(hub, append(o, extra...)...), mw...)
	}
}

// baseOptionsServer passes the kit's options as base options
// (WithHandlerOptions), with extra options, behind mw.
func baseOptionsServer(mw []gin.HandlerFunc, extra ...ginsse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		o := append([]ginsse.Option{ginsse.WithHandlerOptions(route.Options)}, extra...)
		return mount(t, hub, route, ginsse.Handler(hub, o...), mw...)
	}
}

// TestConformance runs the conformance kit against gin routes, with the
// kit's options mapped to ginsse's options, and passed as base options.
func TestConformance(t *testing.T) {
	testkit.CheckGoroutines(t)
	t.Run("Options", func(t *testing.T) { ssetest.Run(t, kitServer(nil)) })
	t.Run("BaseOptions", func(t *testing.T) { ssetest.Run(t, baseOptionsServer(nil)) })
}

// TestConformanceDetached runs the kits of TestConformance with Detach:
// gin's writer hijacks, so every stream is served on a detached
// connection.
func TestConformanceDetached(t *testing.T) {
	testkit.CheckGoroutines(t)
	detached := ssetest.Config{Detached: true}
	t.Run("Options", func(t *testing.T) { ssetest.RunWith(t, kitServer(nil, ginsse.Detach()), detached) })
	t.Run("BaseOptions", func(t *testing.T) { ssetest.RunWith(t, baseOptionsServer(nil, ginsse.Detach()), detached) })
}

// TestConformanceUnwrappingCompressor runs the kit behind a compressor that
// flushes and unwraps: streams are compressed (the kit's client decodes
// them) and keep their write deadlines.
func TestConformanceUnwrappingCompressor(t *testing.T) {
	ssetest.Run(t, baseOptionsServer([]gin.HandlerFunc{unwrappingGzip()}))
}
