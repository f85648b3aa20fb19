package chisse_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestConformance runs the conformance kit against chi routes built with
// the handler's own options; where the kit asks for the auth middleware,
// it sits on a sub-router in front of the stream route.
func TestConformance(t *testing.T) {
	ssetest.Run(t, kitServer())
}

// TestConformanceBaseOptions runs the kit again with the options passed
// as base options (WithHandlerOptions).
func TestConformanceBaseOptions(t *testing.T) {
	ssetest.Run(t, baseOptionsServer(false))
}

// TestConformanceDetached runs both kits again with detached streams: the
// Detach option, and HandlerOptions.Detach through WithHandlerOptions.
func TestConformanceDetached(t *testing.T) {
	t.Run("Options", func(t *testing.T) { ssetest.RunWith(t, kitServer(chisse.Detach()), ssetest.Config{Detached: true}) })
	t.Run("BaseOptions", func(t *testing.T) { ssetest.RunWith(t, baseOptionsServer(true), ssetest.Config{Detached: true}) })
}

func kitServer(extra ...chisse.Option) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
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
		return mount(t, hub, route, chisse.Handler(hub, append(o, extra...)...))
	}
}

func baseOptionsServer(detach bool) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		opts := route.Options
		opts.Detach = detach
		return mount(t, hub, route, chisse.Handler(hub, chisse.WithHandlerOptions(opts)))
	}
}

// mount serves the kit's route with h on /api/events, behind mw and the
// Auth middleware when the kit asks for it, and the publishing route.
func mount(t *testing.T, hub *sse.Hub, route ssetest.Route, h http.HandlerFunc, mw ...func(http.Handler) http.Handler) string {
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
		r.Post("/events/publish/{topic}", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			id, err := hub.Publish(r.Context(), chi.URLParam(r, "topic"), sse.Event{Data: body})
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_, _ = io.WriteString(w, id)
		})
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/events"
}
