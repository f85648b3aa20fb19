// Command chi serves a stream route with chi.
package main

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/ssekit/ssekit/chisse"

	"example.com/installcheck/check"
)

func main() {
	hub := check.NewHub()
	r := chi.NewRouter()
	r.Get("/rooms/{room}/events", chisse.Handler(hub, chisse.TopicsFromParam("room")))
	ln := check.Listen()
	go (&http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	check.Stream("chi", hub, ln.Addr().String())
}
