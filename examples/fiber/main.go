// Command fiber serves ssekit event streams from a Fiber (v3) app.
//
//	go run ./examples/fiber
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
	"os"
	"os/signal"
	"strings"
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
	// An IdleTimeout keeps app.Shutdown from waiting on idle connections.
	app := fiber.New(fiber.Config{IdleTimeout: time.Minute})
	app.Get("/events", fibersse.Handler(hub, fibersse.TopicsFromQuery("topic")))
	app.Post("/publish", func(c fiber.Ctx) error {
		// Fiber reuses its buffers: copy the topic, which the hub keeps.
		id, err := hub.Publish(c.Context(), strings.Clone(c.Query("topic")), sse.Event{Data: []byte(c.Query("data"))})
		if err != nil {
			return c.Status(fiber.StatusBadRequest).SendString(err.Error() + "\n")
		}
		return c.SendString(id + "\n")
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
