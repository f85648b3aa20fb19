// Command tokens streams a model's answer, token by token, to the one
// client that asked: a POST with a JSON body answered by a per-request
// event stream of "token" events and a final "done" event. The same
// endpoint is served by each router that ssekit supports (-router), and a
// page reads it in the browser with fetch and a ReadableStream.
//
//	go run ./examples/tokens -router gin      # nethttp, chi, gin, echo, echo5, fiber, fiber2
//	curl -N -H 'Content-Type: application/json' -d '{"prompt":"hello there"}' http://127.0.0.1:8080/tokens
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
	"strings"
	"syscall"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	router := flag.String("router", "nethttp", "router to serve with: "+strings.Join(routerNames(), ", "))
	delay := flag.Duration("delay", 150*time.Millisecond, "how long the model takes for each token")
	flag.Parse()
	if _, ok := routers[*router]; !ok {
		log.Fatalf("unknown -router %q: want one of %s", *router, strings.Join(routerNames(), ", "))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("%s: open http://%s/\n", *router, ln.Addr())
	if err := run(ctx, ln, *router, &Model{Delay: *delay}); err != nil {
		log.Fatal(err)
	}
}

// run serves the page and the token stream on ln with the named router
// until ctx is done, then shuts down gracefully: the hub ends the streams
// that are still open, which stops their generations.
func run(ctx context.Context, ln net.Listener, router string, m *Model) error {
	newServer, ok := routers[router]
	if !ok {
		return fmt.Errorf("unknown router %q", router)
	}
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		return err
	}
	srv := newServer(hub, m)
	served := make(chan error, 1)
	go func() { served <- srv.serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The hub first: it ends the streams, which the server would wait for.
	err = errors.Join(hub.Shutdown(sctx), srv.shutdown(sctx))
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
