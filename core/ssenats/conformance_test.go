package ssenats_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
	"github.com/ssekit/ssekit/core/ssetest"
)

// TestConformance runs the conformance kit with hubs whose Store is an
// ssenats.Store, each check on a stream of its own. (The kit's check of
// evicted IDs uses its own small MemoryStore; TestOutageLongerThanHistory
// and TestEvicted cover NATS.)
//
// The checks share one NATS connection: the kit counts goroutines, and
// each connection has its own.
func TestConformance(t *testing.T) {
	env := newEnv(t)
	nc := env.conn("")
	ssetest.RunWith(t, func(t *testing.T, hub *sse.Hub, route ssetest.Route) string {
		if _, ok := hub.Store().(*ssenats.Store); !ok && t.Name() != "TestConformance/Reset" {
			t.Fatalf("the kit's hub stores in %T, not in NATS", hub.Store())
		}
		var h http.Handler = hub.Handler(route.Options)
		if route.Middleware != nil {
			h = sse.AuthMiddleware(hub, route.Middleware)(h)
		}
		mux := http.NewServeMux()
		mux.Handle("/events", h)
		if route.Stream != nil {
			mux.HandleFunc("/events/stream", func(w http.ResponseWriter, r *http.Request) { _ = hub.Stream(w, r, route.Stream) })
		}
		mux.HandleFunc("POST /events/publish/{topic}", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			id, err := hub.Publish(r.Context(), r.PathValue("topic"), sse.Event{Data: body})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, id)
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv.URL + "/events"
	}, ssetest.Config{
		NewStore: func(t *testing.T) sse.Store {
			return newEnv(t).store(nc, ssenats.Options{})
		},
	})
}
