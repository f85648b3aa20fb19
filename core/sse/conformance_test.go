package sse_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestConformance runs the conformance kit against the plain net/http
// handler; every router adapter runs the same kit.
func TestConformance(t *testing.T) {
	ssetest.Run(t, kitServer(false))
}

// TestConformanceDetached runs the kit against the handler with Detach
// set: the same behaviour over connections taken over from net/http,
// with the platform's poller and with the portable one.
func TestConformanceDetached(t *testing.T) {
	for _, portable := range []bool{false, true} {
		name := "default-poller"
		if portable {
			name = "portable-poller"
		}
		t.Run(name, func(t *testing.T) {
			if portable {
				t.Cleanup(sse.UsePortablePoller())
			}
			ssetest.RunWith(t, kitServer(true), ssetest.Config{Detached: true})
		})
	}
}

// kitServer mounts the kit's route on a net/http ServeMux: the stream
// route at /events (behind AuthMiddleware when the kit asks for it) and
// the publishing route with a path pattern.
func kitServer(detach bool) ssetest.Server {
	return func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		route.Options.Detach = detach
		var h http.Handler = hub.Handler(route.Options)
		if route.Middleware != nil {
			h = sse.AuthMiddleware(hub, route.Middleware)(h)
		}
		mux := http.NewServeMux()
		mux.Handle("/events", h)
		if route.Stream != nil {
			mux.HandleFunc("/events/stream", func(w http.ResponseWriter, r *http.Request) {
				_ = hub.Stream(w, r, route.Stream)
			})
		}
		if route.Publish {
			mux.HandleFunc("POST /events/publish/{topic}", func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				id, err := hub.Publish(context.Background(), r.PathValue("topic"), sse.Event{Data: body})
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				_, _ = io.WriteString(w, id)
			})
		}
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv.URL + "/events"
	}
}
