package fibersse_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	fibersse "github.com/ssekit/ssekit/fibersse/fiber3"
)

// One route serves the event streams; Publish sends to every subscriber.
func Example() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	app := fiber.New()
	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room")))
	// Shutting the app down ends the streams first, with a retry hint.
	app.Hooks().OnPreShutdown(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hub.Shutdown(ctx)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0") // in a program: app.Listen(":8080")
	if err != nil {
		panic(err)
	}
	go func() { _ = app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	defer func() { _ = app.ShutdownWithTimeout(5 * time.Second) }()

	st, err := ssetest.Connect(context.Background(), nil, "http://"+ln.Addr().String()+"/rooms/lobby/events", "")
	if err != nil {
		panic(err)
	}
	defer st.Close()

	_, _ = hub.Publish(context.Background(), "lobby", sse.Event{Type: "chat", Data: []byte("hello, lobby")})
	ev, _ := st.Next()
	fmt.Println(ev.Type, ev.Data)
	// Output: chat hello, lobby
}
