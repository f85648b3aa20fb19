// Command ssekit serves the bench contract with ssekit's Hub on net/http,
// with default options (in-memory replay store of 4096 events, queues of
// 1024 events / 4 MiB, slow consumers disconnected, 10 s write timeout).
package main

import (
	"context"
	"log"

	"github.com/ssekit/ssekit/bench/serverkit"
	"github.com/ssekit/ssekit/core/sse"
)

func main() {
	hub, err := sse.NewHub(sse.Options{})
	if err != nil {
		log.Fatal(err)
	}
	events := hub.Handler(sse.HandlerOptions{Topics: sse.Topics("bench")})
	send := func(data []byte) error {
		_, err := hub.Publish(context.Background(), "bench", sse.Event{Data: data})
		return err
	}
	info := serverkit.Info{
		Name: "ssekit", Delivers: true, Resume: true,
		Notes: "core/sse Hub, default options (replay store always on)",
	}
	log.Fatal(serverkit.NetHTTP(info, events, send))
}
