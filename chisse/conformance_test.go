package chisse_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/internal/testkit"
)

// TestConformance runs the conformance kit against chi routes built with
// the handler's own options, and with the options passed as base options
// (WithHandlerOptions); where the kit asks for the auth middleware, it
// sits on a sub-router in front of the stream route.
func TestConformance(t *testing.T) {
	testkit.CheckGoroutines(t)
	t.Run("Options", func(t *testing.T) { ssetest.Run(t, kitServer(nil)) })
	t.Run("BaseOptions", func(t *testing.T) { ssetest.Run(t, baseOptionsServer(nil)) })
}

// TestConformanceDetached runs both kits again with detached streams: the
// Detach option, and HandlerOptions.Detach through WithHandlerOptions.
func TestConformanceDetached(t *testing.T) {
	testkit.CheckGoroutines(t)
	detached := ssetest.Config{Detached: true}
	t.Run("Options", func(t *testing.T) { ssetest.RunWith(t, kitServer(nil, chisse.Detach()), detached) })
	t.Run("BaseOptions", func(t *testing.T) { ssetest.RunWith(t, baseOptionsServer(nil, chisse.Detach()), detached) })
}

type mwFunc = func(http.Handler) http.Handler

// kitServer maps the kit's route to chisse's own options (Topics to
// TopicsFunc, Auth to WithAuth, CORS to WithCORS, Middleware to Auth),
// with extra options, behind mw.
func kitServer(mw []mwFunc, extra ...chisse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		var o []chisse.Option
		if opts.Topics != nil {
			o = append(o, chisse.TopicsFunc(func(r *http.Request) ([]string, error) {
				if _, ok := chisse.Principal(r); route.Middleware != nil && !ok {
					return nil, errors.New("the Auth middleware left no principal")
				}
				return opts.Topics(r)
			}))
		}
		if opts.Auth != nil {
			o = append(o, chisse.WithAuth(opts.Auth))
		}
		if opts.CORS != nil {
			o = append(o, chisse.WithCORS(opts.CORS))
		}
		return mount(t, hub, route, chisse.Handler(hub, append(o, extra...)...), mw...)
	}
}

// baseOptionsServer passes the kit's options as base options, with extra
// options, behind mw.
func baseOptionsServer(mw []mwFunc, extra ...chisse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		o := append([]chisse.Option{chisse.WithHandlerOptions(route.Options)}, extra...)
		return mount(t, hub, route, chisse.Handler(hub, o...), mw...)
	}
}

// mount serves the kit's route with h on /api/events, behind mw and the
// Auth middleware when the kit asks for it, the publishing route, which
// reads the topic with chi.URLParam and the body from the request, and the
// per-request stream route (hub.Stream: chi's handlers are net/http's).
func mount(t *testing.T, hub *sse.Hub, route ssetest.Route, h http.HandlerFunc, mw ...mwFunc) string {
	r := chi.NewRouter()
	r.Use(mw...)
	r.Route("/api", func(r chi.Router) {
		r.Group(func(r chi.Router) {
			if route.Middleware != nil {
				r.Use(chisse.Auth(hub, route.Middleware))
			}
			r.Get("/events", h)
			r.Options("/events", h)
		})
		if route.Publish {
			r.Post("/events/publish/{topic}", func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				id, err := hub.Publish(r.Context(), chi.URLParam(r, "topic"), sse.Event{Data: body})
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				_, _ = io.WriteString(w, id)
			})
		}
		if route.Stream != nil {
			stream := func(w http.ResponseWriter, r *http.Request) { _ = hub.Stream(w, r, route.Stream) }
			r.Get("/events/stream", stream)
			r.Post("/events/stream", stream)
		}
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/events"
}
