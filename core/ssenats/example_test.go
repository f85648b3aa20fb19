package ssenats_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/nats-io/nats.go"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssenats"
)

// Every instance of the app runs this: events published on any instance
// reach the clients of all, and any instance resumes any client.
func Example() {
	ctx := context.Background()
	nc, err := nats.Connect("nats://nats:4222") // keep reconnection on: the store rides out outages
	if err != nil {
		log.Fatal(err)
	}
	store, err := ssenats.New(ctx, ssenats.Options{
		Conn:   nc,
		Stream: "MYAPP_EVENTS", // every instance uses the same stream and prefix
		Prefix: "myapp.events",
	})
	if err != nil {
		log.Fatal(err)
	}
	hub, err := sse.NewHub(sse.Options{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("GET /events", hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}))

	// Anywhere in the app, on any instance:
	if _, err := hub.Publish(ctx, "orders", sse.Event{Type: "shipped", Data: []byte(`{"id":42}`)}); err != nil {
		log.Print(err) // JetStream did not confirm it
	}
}

// A topic's events are stored on a subject of their own.
func ExampleSubject() {
	fmt.Println(ssenats.Subject("ssekit", "orders"))
	fmt.Println(ssenats.Subject("ssekit", "user:42"))
	fmt.Println(ssenats.Subject("ssekit", "café.menu"))
	// Output:
	// ssekit.t.orders
	// ssekit.t.user~3A42
	// ssekit.t.caf~C3~A9~2Emenu
}
