package fibersse_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
	"github.com/ssekit/ssekit/fibersse"
)

// One route serves the event streams; Publish sends to every subscriber.
func Example() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		panic(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/rooms/:room/events", fibersse.Handler(hub, fibersse.TopicsFromParam("room")))

	ln, err := net.Listen("tcp", "127.0.0.1:0") // in a program: app.Listen(":8080")
	if err != nil {
		panic(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() {
		// End the streams first, with a retry hint; then the app.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		_ = app.ShutdownWithTimeout(5 * time.Second)
	}()

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
