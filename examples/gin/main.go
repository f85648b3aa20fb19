// Command gin serves ssekit event streams from a Gin router: one
// stream per room, for signed-in users.
//
//	go run ./examples/gin
//	curl -N -b session=demo-session http://127.0.0.1:8080/rooms/lobby/events
//	curl -b session=demo-session -d hello http://127.0.0.1:8080/rooms/lobby/messages
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/ginsse"
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
	fmt.Printf("listening on http://%s/rooms/lobby/events\n", ln.Addr())
	if err := run(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// sessions stands for the application's session store.
var sessions = map[string]string{"demo-session": "ann"}

// run serves on ln until ctx is done, then shuts down gracefully.
func run(ctx context.Context, ln net.Listener) error {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		return err
	}
	auth := &sse.Auth{
		CookieName: "session", // EventSource sends the page's cookies
		Authenticate: func(_ context.Context, token string) (sse.Principal, error) {
			user, ok := sessions[token]
			if !ok {
				return sse.Principal{}, errors.New("unknown session")
			}
			return sse.Principal{ID: user}, nil
		},
	}

	r := gin.Default() // Logger and Recovery: both fine for streams
	r.GET("/rooms/:room/events", ginsse.Handler(hub, ginsse.TopicsFromParam("room"), ginsse.WithAuth(auth)))
	r.POST("/rooms/:room/messages", ginsse.Auth(hub, auth), func(c *gin.Context) {
		text, err := io.ReadAll(io.LimitReader(c.Request.Body, 4096))
		if err != nil {
			c.String(http.StatusBadRequest, "%v\n", err)
			return
		}
		id, err := hub.Publish(c.Request.Context(), c.Param("room"), sse.Event{Data: text})
		if err != nil {
			c.String(http.StatusBadRequest, "%v\n", err)
			return
		}
		c.String(http.StatusOK, "%s\n", id)
	})

	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
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
