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

// route registers h for GET and OPTIONS (CORS preflight) on /events.
func route(r *gin.Engine, h ...gin.HandlerFunc) {
	r.Match([]string{http.MethodGet, http.MethodOptions}, "/events", h...)
}

// TestConformance runs the conformance kit against a gin router, with the
// kit's options mapped to ginsse options: Topics to TopicsFunc, Auth to
// WithAuth, CORS to WithCORS.
func TestConformance(t *testing.T) {
	ssetest.Run(t, plainServer())
}

// TestConformanceDetached runs the kit of TestConformance and of
// TestConformanceWithMiddleware again with Detach: gin's writer hijacks,
// so every stream is served on a detached connection.
func TestConformanceDetached(t *testing.T) {
	t.Run("Options", func(t *testing.T) { ssetest.RunWith(t, plainServer(ginsse.Detach()), ssetest.Config{Detached: true}) })
	t.Run("Middleware", func(t *testing.T) {
		ssetest.RunWith(t, middlewareServer(ginsse.Detach()), ssetest.Config{Detached: true})
	})
}

// plainServer maps the kit's options to ginsse options, with extra.
func plainServer(extra ...ginsse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		r := gin.New()
		route(r, ginsse.Handler(hub, append([]ginsse.Option{
			ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) { return opts.Topics(c.Request) }),
			ginsse.WithAuth(opts.Auth),
			ginsse.WithCORS(opts.CORS)}, extra...)...))
		return serve(t, r) + "/events"
	}
}

// TestConformanceWithMiddleware runs the kit behind gin.Logger, gin.Recovery
// and, for the auth check, the Auth middleware: the handler has no WithAuth
// and authorizes the topics with the middleware's Auth. TopicsFunc insists
// on finding the principal there.
func TestConformanceWithMiddleware(t *testing.T) {
	ssetest.Run(t, middlewareServer())
}

// middlewareServer serves the kit behind gin.Logger, gin.Recovery and the
// Auth middleware, with extra options.
func middlewareServer(extra ...ginsse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		r := gin.New()
		r.Use(gin.LoggerWithConfig(gin.LoggerConfig{Output: io.Discard}), gin.Recovery())
		if opts.Auth != nil {
			r.Use(ginsse.Auth(hub, opts.Auth))
		}
		route(r, ginsse.Handler(hub, append([]ginsse.Option{
			ginsse.WithHandlerOptions(sse.HandlerOptions{CORS: opts.CORS}),
			ginsse.TopicsFunc(func(c *gin.Context) ([]string, error) {
				if _, ok := ginsse.Principal(c); opts.Auth != nil && !ok {
					return nil, errors.New("the Auth middleware left no principal")
				}
				return opts.Topics(c.Request)
			})}, extra...)...))
		return serve(t, r) + "/events"
	}
}

// TestConformanceGzipExcluded runs the kit with gin-contrib/gzip in front,
// configured as README.md says: the stream route excluded. (The kit's
// client accepts gzip, so without the exclusion every stream would get 500:
// see TestGzipIsDetected.)
func TestConformanceGzipExcluded(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		r := gin.New()
		r.Use(gin.Recovery(), gzip.Gzip(gzip.DefaultCompression, gzip.WithExcludedPaths([]string{"/events"})))
		route(r, ginsse.Handler(hub, ginsse.WithHandlerOptions(opts)))
		return serve(t, r) + "/events"
	})
}

// TestConformanceUnwrappingCompressor runs the kit behind a compressor that
// flushes and unwraps: streams are compressed (the kit's client decodes
// them) and keep their write deadlines.
func TestConformanceUnwrappingCompressor(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		r := gin.New()
		r.Use(unwrappingGzip())
		route(r, ginsse.Handler(hub, ginsse.WithHandlerOptions(opts)))
		return serve(t, r) + "/events"
	})
}
