// Command nethttp serves ssekit event streams with net/http alone.
//
//	go run ./examples/nethttp
//	curl -N 'http://127.0.0.1:8080/events?topic=news'          # a tick every second
//	curl -X POST 'http://127.0.0.1:8080/publish?topic=news&data=hello'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("listening on http://%s/events?topic=news\n", ln.Addr())
	if err := run(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// run serves on ln until ctx is done, then shuts down gracefully.
func run(ctx context.Context, ln net.Listener) error {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}))
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		id, err := hub.Publish(r.Context(), q.Get("topic"), sse.Event{Data: []byte(q.Get("data"))})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, id)
	})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				_, _ = hub.Publish(ctx, "news", sse.Event{Data: []byte(now.Format(time.TimeOnly))})
			}
		}
	}()

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The hub first: it ends the streams, which srv.Shutdown would wait for.
	return errors.Join(hub.Shutdown(sctx), srv.Shutdown(sctx))
}
