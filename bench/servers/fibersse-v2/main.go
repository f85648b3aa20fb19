// Command fibersse-v2 serves the bench contract with ssekit's Fiber adapter
// (fibersse.Handler) on a Fiber v2 app, that is on fasthttp: the same Hub,
// with the same default options, as the ssekit server. Fiber is not
// net/http, so the publish and debug routes call serverkit's ParsePublish,
// Publish and Goroutines directly.
package main

import (
	"context"
	"log"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ssekit/ssekit/bench/serverkit"
	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/fibersse"
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
	info := serverkit.Info{
		Name: "fibersse-v2", Delivers: true, Resume: true,
		Notes: "ssekit's Fiber v2 adapter (fibersse) on Fiber v2.52.15 / fasthttp (no middleware), Hub with default options",
	}
	// IdleTimeout as the adapter's README advises; it never ends a stream.
	app := fiber.New(fiber.Config{IdleTimeout: time.Minute, DisableStartupMessage: true})
	app.Get("/events", fibersse.Handler(hub, fibersse.Topics("bench")))
	app.Post("/publish", func(c *fiber.Ctx) error {
		req, err := serverkit.ParsePublish(func(k string) string { return c.Query(k) })
		if err != nil {
			return c.Status(fiber.StatusBadRequest).SendString(err.Error())
		}
		return c.JSON(serverkit.Publish(req, send))
	})
	app.Get("/debug/goroutines", func(c *fiber.Ctx) error {
		return c.SendString(serverkit.Goroutines())
	})
	app.Get("/debug/info", func(c *fiber.Ctx) error { return c.JSON(info) })
	log.Fatal(app.Listen(serverkit.Addr()))
}
