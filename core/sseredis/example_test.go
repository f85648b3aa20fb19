package sseredis_test

import (
	"context"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/sseredis"
)

// Every instance of the app runs this: events published on any instance
// reach the clients of all, and any instance resumes any client.
func Example() {
	ctx := context.Background()
	store, err := sseredis.New(ctx, sseredis.Options{
		Client: redis.NewClient(&redis.Options{Addr: "redis:6379"}),
		Prefix: "myapp:events",
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
		log.Print(err) // Redis did not confirm it
	}
}

// Topics spread over three Redis servers: each topic lives on one, so
// publishing scales with them. Every instance lists the same servers in
// the same order.
func Example_shards() {
	ctx := context.Background()
	store, err := sseredis.New(ctx, sseredis.Options{
		Shards: []redis.UniversalClient{
			redis.NewClient(&redis.Options{Addr: "redis-0:6379"}),
			redis.NewClient(&redis.Options{Addr: "redis-1:6379"}),
			redis.NewClient(&redis.Options{Addr: "redis-2:6379"}),
		},
		Prefix: "myapp:events",
	})
	if err != nil {
		log.Fatal(err)
	}
	hub, err := sse.NewHub(sse.Options{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("GET /events", hub.Handler(sse.HandlerOptions{Topics: sse.TopicsFromQuery("topic")}))
}
