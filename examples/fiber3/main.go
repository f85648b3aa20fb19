// Command fiber3 serves ssekit event streams from a Fiber v3 app: one
// stream per room, for signed-in users.
//
//	go run ./examples/fiber3
//	curl -N -b session=demo-session http://127.0.0.1:8080/rooms/lobby/events
//	curl -b session=demo-session -d hello http://127.0.0.1:8080/rooms/lobby/messages
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/ssekit/ssekit/core/sse"
	fibersse "github.com/ssekit/ssekit/fibersse/fiber3"
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

	// An IdleTimeout keeps app.Shutdown from waiting on idle connections.
	app := fiber.New(fiber.Config{IdleTimeout: time.Minute})
	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room"), fibersse.WithAuth(auth)))
	app.Post("/rooms/:room/messages", fibersse.Auth(hub, auth), func(c fiber.Ctx) error {
		// The hub copies the topic and the data: Fiber may reuse both.
		id, err := hub.Publish(c.Context(), c.Params("room"), sse.Event{Data: c.Body()})
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		return c.SendString(id + "\n")
	})

	served := make(chan error, 1)
	go func() { served <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The hub first: it ends the streams, which app.Shutdown would wait for.
	err = errors.Join(hub.Shutdown(sctx), app.ShutdownWithContext(sctx))
	return errors.Join(err, <-served)
}
