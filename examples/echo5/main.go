// Command echo5 serves ssekit event streams from an Echo v5 router: one
// stream per room, for signed-in users.
//
//	go run ./examples/echo5
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

	"github.com/labstack/echo/v5"
	"github.com/ssekit/ssekit/core/sse"
	echosse "github.com/ssekit/ssekit/echosse/echo5"
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

	e := echo.New()
	e.GET("/rooms/:room/events", echosse.Handler(hub, echosse.TopicsFromParam("room"), echosse.WithAuth(auth)))
	e.POST("/rooms/:room/messages", func(c *echo.Context) error {
		text, err := io.ReadAll(io.LimitReader(c.Request().Body, 4096))
		if err != nil {
			return err
		}
		id, err := hub.Publish(c.Request().Context(), c.Param("room"), sse.Event{Data: text})
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		return c.String(http.StatusOK, id+"\n")
	}, echosse.Auth(hub, auth))

	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
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
