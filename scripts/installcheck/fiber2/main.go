// Command fiber2 serves a stream route with Fiber v2.
package main

import (
	"github.com/gofiber/fiber/v2"
	"github.com/ssekit/ssekit/fibersse"

	"example.com/installcheck/check"
)

func main() {
	hub := check.NewHub()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room")))
	ln := check.Listen()
	go app.Listener(ln)
	check.Stream("fiber v2", hub, ln.Addr().String())
}
