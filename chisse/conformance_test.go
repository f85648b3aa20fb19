package chisse_test

import (
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestConformance runs the conformance kit against a chi route built with
// the handler's own options.
func TestConformance(t *testing.T) {
	ssetest.Run(t, optionsServer())
}

// TestConformanceAuthMiddleware runs the kit again with authentication done
// by the Auth middleware, on a sub-router, and the rest of the options
// passed as base options. The handler gets no WithAuth: it authorizes the
// topics with the middleware's sse.Auth.
func TestConformanceAuthMiddleware(t *testing.T) {
	ssetest.Run(t, authMiddlewareServer(false))
}

// TestConformanceDetached runs both kits again with detached streams: the
// Detach option, and HandlerOptions.Detach through WithHandlerOptions.
func TestConformanceDetached(t *testing.T) {
	t.Run("Options", func(t *testing.T) { ssetest.RunWith(t, optionsServer(chisse.Detach()), ssetest.Config{Detached: true}) })
	t.Run("AuthMiddleware", func(t *testing.T) { ssetest.RunWith(t, authMiddlewareServer(true), ssetest.Config{Detached: true}) })
}

func optionsServer(extra ...chisse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		var o []chisse.Option
		if opts.Topics != nil {
			o = append(o, chisse.TopicsFunc(opts.Topics))
		}
		if opts.Auth != nil {
			o = append(o, chisse.WithAuth(opts.Auth))
		}
		if opts.CORS != nil {
			o = append(o, chisse.WithCORS(opts.CORS))
		}
		o = append(o, extra...)
		r := chi.NewRouter()
		r.Get("/events", chisse.Handler(hub, o...))
		r.Options("/events", chisse.Handler(hub, o...))
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		return srv.URL + "/events"
	}
}

func authMiddlewareServer(detach bool) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, opts sse.HandlerOptions) string {
		auth := opts.Auth
		opts.Auth = nil
		opts.Detach = detach
		r := chi.NewRouter()
		r.Route("/api", func(r chi.Router) {
			if auth != nil {
				r.Use(chisse.Auth(hub, auth))
			}
			h := chisse.Handler(hub, chisse.WithHandlerOptions(opts))
			r.Get("/events", h)
			r.Options("/events", h)
		})
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		return srv.URL + "/api/events"
	}
}
