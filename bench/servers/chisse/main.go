// Command chisse serves the bench contract with ssekit's chi adapter
// (chisse.Handler) on a chi v5 router: the same Hub, with the same default
// options, as the ssekit server.
package main

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ssekit/ssekit/bench/serverkit"
	"github.com/ssekit/ssekit/chisse"
	"github.com/ssekit/ssekit/core/sse"
)

func main() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		log.Fatal(err)
	}
	send := func(data []byte) error {
		_, err := hub.Publish(context.Background(), "bench", sse.Event{Data: data})
		return err
	}
	r := chi.NewRouter()
	r.Get("/events", chisse.Handler(hub, chisse.Topics("bench")))
	r.Method(http.MethodPost, "/publish", serverkit.PublishHandler(send))
	r.Method(http.MethodGet, "/debug/goroutines", serverkit.GoroutinesHandler())
	r.Method(http.MethodGet, "/debug/info", serverkit.InfoHandler(serverkit.Info{
		Name: "chisse", Delivers: true, Resume: true,
		Notes: "ssekit's chi adapter on chi v5.5.0 (no middleware), Hub with default options",
	}))
	srv := &http.Server{Addr: serverkit.Addr(), Handler: r, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
