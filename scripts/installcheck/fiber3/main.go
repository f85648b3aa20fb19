// Command fiber3 serves a stream route with Fiber v3: the fiber2 program
// with another import path for fibersse, as the adapter promises.
package main

import (
	"github.com/gofiber/fiber/v3"
	fibersse "github.com/ssekit/ssekit/fibersse/fiber3"

	"example.com/installcheck/check"
)

func main() {
	hub := check.NewHub()
	app := fiber.New()
	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room")))
	ln := check.Listen()
	go app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true})
	check.Stream("fiber v3", hub, ln.Addr().String())
}
