// Command ssekit-detached serves the bench contract with ssekit's Hub on
// net/http, as the ssekit server does, with HandlerOptions.Detach: each
// stream's connection is taken over from net/http after its head, and a
// worker per CPU writes to every stream.
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
	events := hub.Handler(sse.HandlerOptions{Topics: sse.Topics("bench"), Detach: true})
	send := func(data []byte) error {
		_, err := hub.Publish(context.Background(), "bench", sse.Event{Data: data})
		return err
	}
	info := serverkit.Info{
		Name: "ssekit-detached", Delivers: true, Resume: true,
		Notes: "core/sse Hub, default options, HandlerOptions.Detach",
	}
	log.Fatal(serverkit.NetHTTP(info, events, send))
}
