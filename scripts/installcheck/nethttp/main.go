// Command nethttp serves a stream route with net/http's ServeMux.
package main

import (
	"net/http"
	"time"

	"github.com/ssekit/ssekit/core/sse"

	"example.com/installcheck/check"
)

func main() {
	hub := check.NewHub()
	mux := http.NewServeMux()
	mux.Handle("/rooms/{room}/events", hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromPathValue("room")}))
	ln := check.Listen()
	go (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	check.Stream("net/http", hub, ln.Addr().String())
}
